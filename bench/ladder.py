"""Ladder benchmark (not run by CI): the pipeline vs one hand-written ffmpeg vs python-ffmpeg-video-streaming.

    .venv/bin/python bench/ladder.py [--duration 30] [--repeat 1] [--segment 4] [--keep DIR]

Targets (issue): pipeline / hand-written wall <= 1.05; baseline / pipeline wall >= 1.8.

One generated source (1080p30 testsrc2 + 440 Hz sine, H.264/AAC mp4, made once
with a fast preset, outside the timings) and one ladder, the one
`plan_ladder` gives for 1080p30 H.264 (1080/720/480/360, x264 veryfast,
high profile, the planned bitrates with maxrate 1.5x and bufsize 2x, GOP =
segment, no scene cuts, AAC 128k). Three variants, interleaved (the order
rotates each repeat):

pipeline  `core.services.transcode.AssetTranscode.run()` in this process on a
          fresh SQLite database (migrated with `cli.migrate.upgrade`) and a
          `LocalStorage` in a temp dir, the asset created through
          `core.services.assets.create_asset` after a probe (setup, untimed).
          Timed: everything the worker does (job claim, probe, plan, the one
          decode-once ffmpeg, init/segment inspection, storage publishing,
          every presentation.json rewrite, DB updates) plus rendering what the
          origin serves once: HLS multivariant + every media playlist + MPD.
hand      One hand-written ffmpeg argv (below, not built by project code):
          decode once, fps + split + scale per rung, the same encoder
          settings, FFmpeg's `dash` muxer with `-hls_playlist 1` -> one set of
          CMAF segments + MPD + HLS playlists.
baseline  python-ffmpeg-video-streaming 0.1.16: `.hls(Formats.h264())` with 4
          `Representation`s, then `.dash(Formats.h264())` — two encodes, as
          that package makes HLS and DASH. It runs `ffmpeg` from PATH: a temp
          dir with a symlink `ffmpeg` -> imageio-ffmpeg's binary is put first
          on PATH. It needs `ffprobe` only for auto-generated representations
          (`auto_generate_representations`, `probe()`); explicit
          Representations never probe, so no ffprobe shim is needed (the
          wheel ships none). Matched through its options: preset veryfast,
          profile high, bf 3 (x264 veryfast's default; the package forces 1),
          g/keyint_min = segment, sc_threshold 0, per-rung maxrate/bufsize,
          4 s segments, fMP4 HLS segments. Not matchable: it encodes AAC once
          per rung (4x audio), its HLS command opens the input once per rung
          (one decode, extra demuxing), no forced keyframes (no
          -force_key_frames option path), no fps filter / setsar, and HLS
          and DASH are two full encodes.

CPU seconds are getrusage(RUSAGE_CHILDREN) + getrusage(RUSAGE_SELF) deltas
(user + sys), so the pipeline's Python work is counted too. Each variant's
output is checked (segment counts) so nothing is a no-op. Prints a table and
one JSON line (prefix `JSON `). On a shared machine (look at the load column)
wall times swing with other work; CPU seconds and per-run paired ratios of
adjacent runs are the steadier numbers, so both are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import imageio_ffmpeg

from core.media.encode import X264_PARAMS
from core.media.ladder import plan_audio, plan_ladder

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
WIDTH, HEIGHT, RATE = 1920, 1080, 30
VARIANTS = ("pipeline", "hand", "baseline")


# -- the source -----------------------------------------------------------------------------------


def make_source(path: Path, duration: float) -> float:
    """1080p30 testsrc2 + sine as H.264/AAC mp4 (fast preset); returns seconds spent."""
    t = time.monotonic()
    subprocess.run([
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={RATE}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(duration), "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-g", str(2 * RATE), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "192k", "-ac", "2", "-movflags", "+faststart", str(path),
    ], check=True)  # fmt: skip
    return time.monotonic() - t


def the_ladder():
    ladder = plan_ladder(codec="h264", display_width=WIDTH, display_height=HEIGHT, frame_rate=Fraction(RATE))
    return ladder, plan_audio(2, 48_000)


# -- measuring ------------------------------------------------------------------------------------


def _cpu() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return c.ru_utime + c.ru_stime + s.ru_utime + s.ru_stime


def measure(fn, *args) -> dict:
    load = os.getloadavg()[0]
    cpu0, t0 = _cpu(), time.monotonic()
    detail = fn(*args)
    wall, cpu = time.monotonic() - t0, _cpu() - cpu0
    return {"wall": wall, "cpu": cpu, "load1_before": load, "load1_after": os.getloadavg()[0], **detail}


# -- (a) the project's pipeline -------------------------------------------------------------------


def run_pipeline(source: Path, work: Path, segment: float) -> dict:
    from sqlmodel import Session

    from cli.migrate import upgrade
    from core import layout
    from core.db.engine import make_engine
    from core.db.models import Asset
    from core.media.manifests.dash import render_mpd
    from core.media.manifests.hls import (
        is_hls_track,
        render_media_playlist,
        render_multivariant_playlist,
    )
    from core.media.model import Presentation
    from core.media.probe import probe
    from core.services.assets import AssetSettings, create_asset
    from core.services.transcode import AssetTranscode, PipelineConfig
    from core.storage import LocalStorage

    # Setup (untimed here; `measure` wraps only `timed` below).
    url = f"sqlite:///{work / 'abr.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    storage = LocalStorage(work / "storage")
    upload = work / "upload.mp4"
    os.link(source, upload) if source.stat().st_dev == work.stat().st_dev else shutil.copyfile(source, upload)
    with Session(engine) as s:
        asset = create_asset(s, storage, source=upload, info=probe(upload),
                             settings=AssetSettings(segment_duration=segment))
        asset_id = asset.id
    config = PipelineConfig(ffmpeg=FFMPEG, work_dir=work / "work")

    def timed() -> dict:
        AssetTranscode(engine, storage, config, asset_id).run()
        p = Presentation.from_dict(json.loads(storage.get_bytes(layout.presentation_key(asset_id))))
        manifests = [render_multivariant_playlist(p), render_mpd(p)]
        manifests += [render_media_playlist(t, ended=t.complete) for t in p.tracks if is_hls_track(t)]
        return {"presentation": p, "manifest_bytes": sum(len(m) for m in manifests)}

    out = measure(timed)
    p = out.pop("presentation")
    with Session(engine) as s:
        a = s.get(Asset, asset_id)
        status, error = a.status, a.error_message
    engine.dispose()
    if status != "ready":
        raise SystemExit(f"pipeline: asset {status}: {error}")
    out["segments"] = {t.id: len(t.segments) for t in p.tracks}
    return out


# -- (b) one hand-written ffmpeg ------------------------------------------------------------------


def hand_argv(source: Path, out: Path, segment: float) -> list[str]:
    ladder, audio = the_ladder()
    r = ladder.renditions
    gop = round(segment * RATE)
    graph = f"[0:v]fps={RATE},split={len(r)}" + "".join(f"[s{i}]" for i in range(len(r)))
    for i, x in enumerate(r):
        graph += f";[s{i}]scale={x.width}:{x.height}:flags=bicubic,setsar=1,format=yuv420p[v{i}]"
    argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(source),
            "-filter_complex", graph]
    for i in range(len(r)):
        argv += ["-map", f"[v{i}]"]
    argv += ["-map", "0:a:0",
             "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-x264-params", X264_PARAMS,
             "-sc_threshold", "0",
             "-g", str(gop), "-keyint_min", str(gop), "-force_key_frames", f"expr:gte(t,n_forced*{segment:g})"]
    for i, x in enumerate(r):
        argv += [f"-b:v:{i}", str(x.bitrate), f"-maxrate:v:{i}", str(x.max_bitrate), f"-bufsize:v:{i}", str(x.buffer_size)]
    argv += ["-c:a", "aac", "-b:a", str(audio.bitrate), "-ac", str(audio.channels), "-ar", str(audio.sample_rate),
             "-f", "dash", "-seg_duration", f"{segment:g}", "-use_template", "1", "-use_timeline", "1",
             "-dash_segment_type", "mp4", "-hls_playlist", "1",
             "-adaptation_sets", " ".join(f"id={i},streams={i}" for i in range(len(r) + 1)),
             str(out / "manifest.mpd")]
    return argv


def run_hand(source: Path, work: Path, segment: float) -> dict:
    argv = hand_argv(source, work, segment)

    def timed() -> dict:
        subprocess.run(argv, check=True)
        return {}

    out = measure(timed)
    segs: dict[str, int] = {}
    for f in work.glob("chunk-stream*-*.m4s"):
        key = f.name.split("-")[1]
        segs[key] = segs.get(key, 0) + 1
    if not (work / "manifest.mpd").exists() or not (work / "master.m3u8").exists() or len(segs) != 5:
        raise SystemExit(f"hand: missing outputs in {work}: {sorted(p.name for p in work.iterdir())[:20]}")
    out["segments"] = dict(sorted(segs.items()))
    return out


# -- (c) python-ffmpeg-video-streaming ------------------------------------------------------------


def _baseline_reps(index_options: bool):
    from ffmpeg_streaming import Bitrate, Representation, Size

    ladder, audio = the_ladder()
    reps = []
    for i, x in enumerate(ladder.renditions):
        # Bitrate() takes bits and writes round(bits/1024)k: pass kbps * 1024 to get the exact kbit/s.
        opts = ({f"maxrate:v:{i}": f"{x.max_bitrate // 1000}k", f"bufsize:v:{i}": f"{x.buffer_size // 1000}k"}
                if index_options else {"maxrate": f"{x.max_bitrate // 1000}k", "bufsize": f"{x.buffer_size // 1000}k"})
        reps.append(Representation(Size(x.width, x.height),
                                   Bitrate((x.bitrate // 1000) * 1024, (audio.bitrate // 1000) * 1024), **opts))
    return reps


def _baseline_format(segment: float):
    from ffmpeg_streaming import Formats

    gop = round(segment * RATE)
    return Formats.h264(preset="veryfast", **{"profile:v": "high", "x264-params": X264_PARAMS}, bf=3, g=gop,
                        keyint_min=gop, sc_threshold=0)


def run_baseline(source: Path, work: Path, segment: float) -> dict:
    import ffmpeg_streaming
    from ffmpeg_streaming._media import HLS

    bindir = work / "bin"
    bindir.mkdir()
    (bindir / "ffmpeg").symlink_to(FFMPEG)
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{bindir}{os.pathsep}{old_path}"
    HLS.MASTER_PLAYLIST_IS_SAVED = False  # class-level state: a second job in one process skips its master

    def timed() -> dict:
        hls = ffmpeg_streaming.input(str(source)).hls(_baseline_format(segment), hls_time=segment)
        hls.fragmented_mp4()
        hls.representations(*_baseline_reps(index_options=False))
        hls.output(str(work / "hls" / "index.m3u8"), async_run=False)
        dash = ffmpeg_streaming.input(str(source)).dash(_baseline_format(segment), seg_duration=segment)
        dash.representations(*_baseline_reps(index_options=True))
        dash.output(str(work / "dash" / "manifest.mpd"), async_run=False)
        return {}

    try:
        out = measure(timed)
    finally:
        os.environ["PATH"] = old_path
    hls_segs: dict[str, int] = {}
    for f in (work / "hls").glob("index_*p_*.m4s"):
        key = f.name.split("_")[1]
        hls_segs[key] = hls_segs.get(key, 0) + 1
    dash_segs: dict[str, int] = {}
    for f in (work / "dash").glob("manifest_chunk_*.m4s"):
        key = f.name.split("_")[2]
        dash_segs[key] = dash_segs.get(key, 0) + 1
    if len(hls_segs) != 4 or len(dash_segs) != 8 or not (work / "hls" / "index.m3u8").exists():
        raise SystemExit(f"baseline: missing outputs: hls {hls_segs} dash {dash_segs}")
    out["segments"] = {"hls": dict(sorted(hls_segs.items())), "dash": dict(sorted(dash_segs.items()))}
    return out


RUNNERS = {"pipeline": run_pipeline, "hand": run_hand, "baseline": run_baseline}


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="source seconds (default 30)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant, interleaved (default 1)")
    ap.add_argument("--segment", type=float, default=4.0, help="segment seconds (default 4, the project default)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--keep", type=Path, help="keep outputs under this directory instead of a temp dir")
    ap.add_argument("--print-argv", action="store_true", help="print the hand-written argv and exit")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        ap.error(f"unknown variants {unknown}")
    if args.print_argv:
        print(" ".join(hand_argv(Path("source.mp4"), Path("out"), args.segment)))
        return 0

    root = Path(tempfile.mkdtemp(prefix="abr-bench-ladder-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        source = root / "source.mp4"
        made = make_source(source, args.duration)
        ladder, audio = the_ladder()
        print(f"source: {args.duration:g} s {WIDTH}x{HEIGHT}@{RATE} made in {made:.1f} s (untimed); "
              f"ladder: " + ", ".join(f"{r.width}x{r.height}@{r.bitrate // 1000}k" for r in ladder.renditions)
              + f" + aac {audio.bitrate // 1000}k; segments {args.segment:g} s; cpus {os.cpu_count()}", flush=True)
        results: dict[str, list[dict]] = {v: [] for v in variants}
        for rep in range(args.repeat):
            order = variants[rep % len(variants):] + variants[: rep % len(variants)]
            for v in order:
                work = root / f"{v}-{rep}"
                work.mkdir()
                r = RUNNERS[v](source, work, args.segment)
                results[v].append(r)
                print(f"  run {rep + 1}/{args.repeat} {v:9s} wall {r['wall']:6.2f} s  cpu {r['cpu']:6.1f} s  "
                      f"load {r['load1_before']:.2f}->{r['load1_after']:.2f}  segments {r['segments']}", flush=True)
                if args.keep is None:
                    shutil.rmtree(work, ignore_errors=True)
        summary = report(results, args.duration)
        print("JSON " + json.dumps(summary, separators=(",", ":")))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def report(results: dict[str, list[dict]], duration: float) -> dict:
    def best(v: str, key: str) -> float:
        return min(r[key] for r in results[v])

    print(f"\n{'variant':10s} {'runs':>4s} {'wall min':>9s} {'wall all':>24s} {'cpu min':>8s} {'x realtime':>10s}")
    summary: dict = {"duration": duration, "cpus": os.cpu_count(), "variants": {}}
    for v, runs in results.items():
        walls = [r["wall"] for r in runs]
        print(f"{v:10s} {len(runs):4d} {min(walls):8.2f}s {' '.join(f'{w:.2f}' for w in walls):>24s} "
              f"{best(v, 'cpu'):7.1f}s {duration / min(walls):9.2f}x")
        summary["variants"][v] = {"wall": walls, "cpu": [r["cpu"] for r in runs],
                                  "load1": [r["load1_before"] for r in runs],
                                  "realtime_x": duration / min(walls)}
    if "pipeline" in results and "hand" in results:
        ratio = best("pipeline", "wall") / best("hand", "wall")
        paired = [p["wall"] / h["wall"] for p, h in zip(results["pipeline"], results["hand"], strict=True)]
        summary["pipeline_over_hand"] = ratio
        summary["pipeline_over_hand_paired"] = paired
        summary["pipeline_over_hand_cpu"] = best("pipeline", "cpu") / best("hand", "cpu")
        print(f"pipeline / hand     = {ratio:.3f} (min walls; per run {', '.join(f'{x:.3f}' for x in paired)})"
              f"  target <= 1.05: {'MET' if ratio <= 1.05 else 'MISSED'}"
              f"; CPU-seconds ratio {summary['pipeline_over_hand_cpu']:.3f}")
    if "pipeline" in results and "baseline" in results:
        ratio = best("baseline", "wall") / best("pipeline", "wall")
        paired = [b["wall"] / p["wall"] for p, b in zip(results["pipeline"], results["baseline"], strict=True)]
        summary["baseline_over_pipeline"] = ratio
        summary["baseline_over_pipeline_paired"] = paired
        summary["baseline_over_pipeline_cpu"] = best("baseline", "cpu") / best("pipeline", "cpu")
        print(f"baseline / pipeline = {ratio:.3f} (min walls; per run {', '.join(f'{x:.3f}' for x in paired)})"
              f"  target >= 1.8: {'MET' if ratio >= 1.8 else 'MISSED'}"
              f"; CPU-seconds ratio {summary['baseline_over_pipeline_cpu']:.3f}")
    return summary


if __name__ == "__main__":
    sys.exit(main())
