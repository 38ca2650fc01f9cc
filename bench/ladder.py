"""Ladder benchmark (not run by CI): the pipeline vs one hand-written ffmpeg vs python-ffmpeg-video-streaming.

    .venv/bin/python bench/ladder.py [--duration 30] [--repeat 3] [--segment 4] [--vmaf pipeline,hand] [--keep DIR]
                                     [--threads] [--sources footage,testsrc2] [--cache-dir /tmp/flow_cache]
                                     [--source FILE.mp4]
                                     [--variants pipeline,hand,baseline,pipeline-before,...]

Targets (issue #20): pipeline / hand-written wall <= 0.8 with every rung's
VMAF within 0.5 of the hand-written output's; baseline / pipeline wall >= 1.8.
Each variant runs --repeat times (default 3), interleaved, every run cold: a
new output directory, database and ffmpeg process (the source file stays in
the page cache: every variant reads the same one). The table gives medians.

Two sources (--sources, default both: a full run and table for each, real
film first, because the synthetic picture misleads: a lever that looked free
on testsrc2 cost 1.46 VMAF on the footage, README "More ladder levers"):

footage   the first --duration seconds (stream copy, from a keyframe) of
          bench/playable.py's footage-1080p-600.mp4 (the Megamind trailer clip,
          cropped to 16:9 and scaled to 1080p24, looped) under --cache-dir,
          made there by bench/playable.py's `make_source` if it is missing.
testsrc2  generated: 1080p30 testsrc2 + 440 Hz sine, H.264/AAC mp4, made once
          with a fast preset, outside the timings.

(--source FILE: one 1920x1080 whole-rate file instead.) One ladder per source,
the one `plan_ladder` gives for 1080p H.264 at the source's rate
(1080/720/480/360, high profile, the planned bitrates with maxrate 1.5x and
bufsize 2x, GOP = segment, no scene cuts, AAC 128k). Variants, interleaved
(the order rotates each repeat):

pipeline  `core.services.transcode.AssetTranscode.run()` in this process on a
          fresh SQLite database (migrated with `cli.migrate.upgrade`) and a
          `LocalStorage` in a temp dir, the asset created through
          `core.services.assets.create_asset` after a probe (setup, untimed).
          Timed: everything the worker does (job claim, probe, plan, the one
          decode-once ffmpeg, init/segment inspection, storage publishing,
          every presentation.json rewrite, DB updates) plus rendering what the
          origin serves once: HLS multivariant + every media playlist + MPD.
hand      One hand-written ffmpeg argv (below, not built by project code):
          decode once, fps + split + scale per rung, all from the source,
          x264 veryfast with 4 slice threads per rung (the project's
          settings before issue #20, repeatable retries), FFmpeg's `dash`
          muxer with `-hls_playlist 1` -> one set of CMAF segments + MPD +
          HLS playlists.
pipeline-*  A/B variants of the pipeline's rung levers (`core.media.rungs`
          constants set for the run; none in the default set: for a quiet
          A/B, VMAF with --vmaf): `pipeline-before` the settings before
          2026-12-04 (SLICE_BUDGET 2, every small rung superfast, nothing
          added to the largest: the table in rungs.py); `pipeline-1206` the
          ladder as shipped 2026-12-06 (bicubic, x264's B-frames: rungs.py
          NO_B_FRAMES); `pipeline-bicubic` VOD_SCALER bicubic;
          `pipeline-bframes-small` / `pipeline-bframes-top` x264's B-frames
          back in the small rungs / the largest; `pipeline-1slice`
          SLICE_BUDGET 2 (1/1/1/1 for this ladder: the 1080p rung runs alone
          at the end of each segment, --threads); `pipeline-3slices`
          SLICE_BUDGET 6 (3/2/1/1); `pipeline-budget4` SLICE_BUDGET 4
          (2/1/1/1, the default until 2026-12-06: 3/1/1/1 now, measured
          as `pipeline-budget5` then); `pipeline-first` the largest rung's picture the
          graph's first output (rungs.LARGEST_LAST off); `pipeline-veryfast` every
          rung veryfast, with B-frames (SMALL_RUNG_PRESET and SMALL_RUNG_X264
          None); `pipeline-hex` the largest rung's motion search back to
          veryfast's hex (LARGEST_RUNG_X264 bframes=0 only);
          `pipeline-partitions` `partitions=i8x8,i4x4` on the largest rung
          instead of me=dia (refused on testsrc2: -0.48 to -0.62 VMAF);
          `pipeline-spare-off` the smallest rung superfast too.
hand-frames  The same command without `-x264-params`: x264's default frame
          threads (what most hand-written commands have; not repeatable
          with VBV, so the project cannot use it). Not in the default set.
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

VMAF (--vmaf, the variants to score; default pipeline,hand): each video
rung's segments, joined after their init segment, scaled bicubic to the
source's size and scored by the bundled ffmpeg's libvmaf (model v0.6.1,
every --vmaf-subsample'th frame, default 5) against the source. Scored once
per variant, on the first run's output (x264 with sliced threads writes the
same bytes every run), untimed.

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
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import imageio_ffmpeg

from core.media.ladder import plan_audio, plan_ladder

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
WIDTH, HEIGHT, RATE = 1920, 1080, 30
VARIANTS = ("pipeline", "hand", "baseline")
OPTIONAL = ("hand-frames", "pipeline-before", "pipeline-1206", "pipeline-bicubic", "pipeline-bframes-small",
            "pipeline-bframes-top", "pipeline-1slice", "pipeline-3slices", "pipeline-budget4", "pipeline-first",
            "pipeline-veryfast", "pipeline-hex", "pipeline-partitions", "pipeline-spare-off")
# The hand-written command's (and the baseline's) x264 threading, frozen here: the project's
# X264_PARAMS before issue #20. The project now plans threads per rung (core/media/rungs.py).
HAND_X264_PARAMS = "sliced-threads=1:threads=4"
SOURCES = ("footage", "testsrc2")  # --sources: real film first (the work users have), the synthetic one after
FOOTAGE_SPEC = "footage-1080p-600"  # bench/playable.py's 10-minute 1080p24 footage; the first --duration s of it


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


THREADS = False  # --threads: sample the encoding ffmpeg's threads (bench/procprof.py) during each run


def _is_encoder(cmd: str) -> bool:
    return "ffmpeg" in cmd.split(" ", 1)[0] and "libx264" in cmd


def measure(fn, *args) -> dict:
    load = os.getloadavg()[0]
    sampler = None
    if THREADS:
        from bench.procprof import Sampler

        sampler = Sampler({os.getpgid(0)}, runnable_of=_is_encoder)
        sampler.start()
    cpu0, t0 = _cpu(), time.monotonic()
    detail = fn(*args)
    wall, cpu = time.monotonic() - t0, _cpu() - cpu0
    out = {"wall": wall, "cpu": cpu, "load1_before": load, "load1_after": os.getloadavg()[0], **detail}
    if sampler is not None:
        sampler.stop()
        # Per thread name (enc0:N:libx264 is rung N's x264, fc0 the filter graph, av:h264:df* the decoder's
        # frame threads), and how often 0, 1, 2, ... of the encoding ffmpeg's threads were runnable: on a quiet
        # 2-core machine, wall ~ CPU / 2 needs >= 2 most of the time.
        out["threads"] = sampler.by_thread(_is_encoder)
        out["runnable"] = sampler.runnable_shares()
    return out


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
    # The rungs for VMAF (untimed): init + segments of each video track, as one fragmented mp4.
    rungs = work / "rungs"
    rungs.mkdir()
    out["rungs"] = []
    # Largest first, as the hand-written command's streams are (presentation.json's order is the ladder's,
    # core/services/transcode.py add_in_family_order; a custom ladder need not be largest first).
    for t in sorted(p.tracks, key=lambda t: -t.rendition.width * t.rendition.height):
        if t.rendition.is_audio:
            continue
        keys = [t.init_uri] + [t.segment_uri(s.number) for s in t.segments]
        dest = rungs / f"{t.id}.mp4"
        dest.write_bytes(b"".join(storage.get_bytes(layout.media_key(asset_id, k)) for k in keys))
        out["rungs"].append(str(dest))
    return out


# -- (b) one hand-written ffmpeg ------------------------------------------------------------------


def hand_argv(source: Path, out: Path, segment: float, x264_params: str | None = HAND_X264_PARAMS) -> list[str]:
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
             "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
             *(["-x264-params", x264_params] if x264_params else []),
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


def run_hand(source: Path, work: Path, segment: float, x264_params: str | None = HAND_X264_PARAMS) -> dict:
    argv = hand_argv(source, work, segment, x264_params)

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
    out["rungs"] = []
    for i in range(4):
        dest = work / f"rung{i}.mp4"
        parts = [work / f"init-stream{i}.m4s", *sorted(work.glob(f"chunk-stream{i}-*.m4s"))]
        dest.write_bytes(b"".join(f.read_bytes() for f in parts))
        out["rungs"].append(str(dest))
    return out


def run_hand_frames(source: Path, work: Path, segment: float) -> dict:
    return run_hand(source, work, segment, x264_params=None)


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
    return Formats.h264(preset="veryfast", **{"profile:v": "high", "x264-params": HAND_X264_PARAMS}, bf=3, g=gop,
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


def _pipeline_with(**settings):
    """The pipeline with `core.media.rungs` constants set for one run (an A/B of rung levers)."""
    def run(source: Path, work: Path, segment: float) -> dict:
        from core.media import rungs

        before = {name: getattr(rungs, name) for name in settings}
        for name, value in settings.items():
            setattr(rungs, name, value)
        try:
            return run_pipeline(source, work, segment)
        finally:
            for name, value in before.items():
                setattr(rungs, name, value)
    return run


# The ladder as shipped 2026-12-06, before VOD_SCALER lanczos and no B-frames (rungs.py, NO_B_FRAMES).
_B_FRAMES = dict(VOD_SCALER="bicubic", SMALL_RUNG_X264=None, LARGEST_RUNG_X264="me=dia")
RUNNERS = {"pipeline": run_pipeline, "hand": run_hand, "baseline": run_baseline, "hand-frames": run_hand_frames,
           "pipeline-before": _pipeline_with(**{**_B_FRAMES, "LARGEST_RUNG_X264": None}, SLICE_BUDGET=2,
                                             SPARE_SMALLEST_RUNG=False),
           "pipeline-1206": _pipeline_with(**_B_FRAMES),
           "pipeline-bicubic": _pipeline_with(VOD_SCALER="bicubic"),
           "pipeline-bframes-small": _pipeline_with(SMALL_RUNG_X264=None),
           "pipeline-bframes-top": _pipeline_with(LARGEST_RUNG_X264="me=dia"),
           "pipeline-1slice": _pipeline_with(SLICE_BUDGET=2),
           "pipeline-3slices": _pipeline_with(SLICE_BUDGET=6),
           "pipeline-budget4": _pipeline_with(SLICE_BUDGET=4),
           "pipeline-first": _pipeline_with(LARGEST_LAST=False),
           "pipeline-veryfast": _pipeline_with(SMALL_RUNG_PRESET=None, SMALL_RUNG_X264=None),
           "pipeline-hex": _pipeline_with(LARGEST_RUNG_X264="bframes=0"),
           "pipeline-partitions": _pipeline_with(LARGEST_RUNG_X264="partitions=i8x8,i4x4:bframes=0"),
           "pipeline-spare-off": _pipeline_with(SPARE_SMALLEST_RUNG=False)}


# -- quality --------------------------------------------------------------------------------------


def vmaf(rung: Path, source: Path, subsample: int) -> float:
    """libvmaf (v0.6.1) of `rung`, upscaled bicubic to the source's size, against the source."""
    log = rung.with_suffix(".vmaf.json")
    graph = (f"[0:v]scale={WIDTH}:{HEIGHT}:flags=bicubic,setsar=1,format=yuv420p[d];"
             f"[1:v]setsar=1,format=yuv420p[r];"
             f"[d][r]libvmaf=log_fmt=json:log_path={log}:n_subsample={subsample}:n_threads={os.cpu_count()}")
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(rung), "-i", str(source),
                    "-filter_complex", graph, "-f", "null", "-"], check=True)
    return round(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"], 2)


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="source seconds (default 30)")
    ap.add_argument("--repeat", type=int, default=3, help="cold runs per variant, interleaved (default 3)")
    ap.add_argument("--segment", type=float, default=4.0, help="segment seconds (default 4, the project default)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma separated subset of " + ",".join(VARIANTS + OPTIONAL))
    ap.add_argument("--vmaf", default="pipeline,hand", help="variants whose rungs get a VMAF score ('' for none)")
    ap.add_argument("--vmaf-subsample", type=int, default=5, help="score every n-th frame (default 5)")
    ap.add_argument("--keep", type=Path, help="keep outputs under this directory instead of a temp dir")
    ap.add_argument("--sources", default=",".join(SOURCES),
                    help="comma separated, each a full run with its own table: footage (real film, 1080p24: "
                         f"bench/playable.py's {FOOTAGE_SPEC}.mp4 under --cache-dir, made there if missing), "
                         "testsrc2 (synthetic 1080p30). Default: both, footage first")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/flow_cache"),
                    help="where bench/playable.py keeps its sources (default /tmp/flow_cache, as there)")
    ap.add_argument("--source", type=Path,
                    help="instead of --sources: a 1920x1080 constant-rate file to cut the source from (first "
                         "--duration seconds, stream copy; starts on a keyframe)")
    ap.add_argument("--print-argv", action="store_true", help="print the hand-written argv and exit")
    ap.add_argument("--threads", action="store_true",
                    help="sample the encoding ffmpeg's threads every 20 ms (bench/procprof.py): CPU per thread and "
                         "the share of time 0, 1, 2, ... of them were runnable (costs a little CPU in this process)")
    args = ap.parse_args()
    global THREADS
    THREADS = args.threads
    variants = [v for v in args.variants.split(",") if v]
    scored = [v for v in args.vmaf.split(",") if v and v in variants]
    if unknown := set(variants) - set(VARIANTS + OPTIONAL):
        ap.error(f"unknown variants {unknown}")
    if "baseline" in scored:
        ap.error("VMAF is for the variants that write one file set per rung (not the baseline)")
    if args.print_argv:
        print(" ".join(hand_argv(Path("source.mp4"), Path("out"), args.segment)))
        return 0

    if args.source is not None:
        sources = [("file", args.source)]
    else:
        sources = [(name, None) for name in args.sources.split(",") if name]
        if unknown := {name for name, _ in sources} - set(SOURCES):
            ap.error(f"unknown sources {unknown}: use {','.join(SOURCES)}")
    root = Path(tempfile.mkdtemp(prefix="abr-bench-ladder-")) if args.keep is None else args.keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        for name, path in sources:
            if name == "footage":
                path = footage_file(args.cache_dir)
            run_source(args, variants, scored, name, path, root / name)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def footage_file(cache: Path) -> Path:
    """bench/playable.py's 10-minute 1080p24 footage (the Megamind trailer clip, looped), made there once."""
    path = cache / f"{FOOTAGE_SPEC}.mp4"
    if not path.exists():
        from bench.playable import make_source as make_footage

        print(f"making {path} (once; bench/playable.py's source) ...", flush=True)
        make_footage(cache, FOOTAGE_SPEC)
    return path


def run_source(args, variants: list[str], scored: list[str], name: str, cut_from: Path | None, root: Path) -> None:
    """Every variant, --repeat times interleaved, on one source; prints its table and one JSON line."""
    global RATE
    root.mkdir(parents=True, exist_ok=True)
    source = root / "source.mp4"
    if cut_from is not None:
        from core.media.probe import probe

        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(cut_from),
                        "-t", str(args.duration), "-c", "copy", str(source)], check=True)
        video = probe(source).video
        if (video.width, video.height) != (WIDTH, HEIGHT) or video.frame_rate.denominator != 1:
            raise SystemExit(f"the source must be {WIDTH}x{HEIGHT} at a whole frame rate, not "
                             f"{video.width}x{video.height} @ {video.frame_rate}")
        RATE, made = int(video.frame_rate), 0.0
    else:
        RATE = 30
        made = make_source(source, args.duration)
    ladder, audio = the_ladder()
    print(f"\n== source {name}: {args.duration:g} s {WIDTH}x{HEIGHT}@{RATE} made in {made:.1f} s (untimed); "
          f"ladder: " + ", ".join(f"{r.width}x{r.height}@{r.bitrate // 1000}k" for r in ladder.renditions)
          + f" + aac {audio.bitrate // 1000}k; segments {args.segment:g} s; cpus {os.cpu_count()}; "
          f"uptime: {uptime()}", flush=True)
    results: dict[str, list[dict]] = {v: [] for v in variants}
    quality: dict[str, list[float]] = {}
    for rep in range(args.repeat):
        order = variants[rep % len(variants):] + variants[: rep % len(variants)]
        for v in order:
            work = root / f"{v}-{rep}"
            work.mkdir()
            r = RUNNERS[v](source, work, args.segment)
            rungs = r.pop("rungs", [])
            results[v].append(r)
            print(f"  run {rep + 1}/{args.repeat} {v:11s} wall {r['wall']:6.2f} s  cpu {r['cpu']:6.1f} s  "
                  f"load {r['load1_before']:.2f}->{r['load1_after']:.2f}  segments {r['segments']}", flush=True)
            if "threads" in r:
                print(f"    threads (CPU s): {r['threads']}\n    runnable threads (share of samples): "
                      f"{r['runnable']}", flush=True)
            if v in scored and v not in quality:
                quality[v] = [vmaf(Path(f), source, args.vmaf_subsample) for f in rungs]
                print(f"  VMAF {v}: {quality[v]}", flush=True)
            if args.keep is None:
                shutil.rmtree(work, ignore_errors=True)
    print(f"\nsource {name} ({args.duration:g} s, {RATE} fps)")
    summary = {"source": name, "rate": RATE, **report(results, quality, args.duration)}
    summary["uptime_end"] = uptime()
    print(f"uptime at the end: {summary['uptime_end']}")
    print("JSON " + json.dumps(summary, separators=(",", ":")), flush=True)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def report(results: dict[str, list[dict]], quality: dict[str, list[float]], duration: float) -> dict:
    def med(v: str, key: str) -> float:
        return statistics.median(r[key] for r in results[v])

    print(f"\n{'variant':11s} {'runs':>4s} {'wall med':>9s} {'wall all':>24s} {'cpu med':>8s} {'x realtime':>10s}  VMAF")
    summary: dict = {"duration": duration, "cpus": os.cpu_count(), "variants": {}, "vmaf": quality}
    for v, runs in results.items():
        walls = [r["wall"] for r in runs]
        print(f"{v:11s} {len(runs):4d} {med(v, 'wall'):8.2f}s {' '.join(f'{w:.2f}' for w in walls):>24s} "
              f"{med(v, 'cpu'):7.1f}s {duration / med(v, 'wall'):9.2f}x  {quality.get(v, '')}")
        summary["variants"][v] = {"wall": walls, "cpu": [r["cpu"] for r in runs],
                                  "load1": [r["load1_before"] for r in runs],
                                  "wall_median": med(v, "wall"), "cpu_median": med(v, "cpu")}
    pairs = [(v, "hand", 0.8, "<=") for v in results if v.startswith("pipeline")]
    for ours, ref, target, better in (*pairs, ("pipeline", "hand-frames", 0.8, "<="), ("baseline", "pipeline", 1.8, ">=")):
        if ours not in results or ref not in results:
            continue
        ratio = med(ours, "wall") / med(ref, "wall")
        paired = [a["wall"] / b["wall"] for a, b in zip(results[ours], results[ref], strict=True)]
        cpu = med(ours, "cpu") / med(ref, "cpu")
        met = ratio <= target if better == "<=" else ratio >= target
        summary[f"{ours}_over_{ref}"] = {"wall": ratio, "paired": paired, "cpu": cpu}
        print(f"{ours} / {ref} = {ratio:.3f} (median walls; per run {', '.join(f'{x:.3f}' for x in paired)})"
              f"  target {better} {target}: {'MET' if met else 'MISSED'}; CPU-seconds ratio {cpu:.3f}")
    for v in (v for v in quality if v.startswith("pipeline") and "hand" in quality):
        deltas = [round(a - b, 2) for a, b in zip(quality[v], quality["hand"], strict=True)]
        summary[f"vmaf_{v}_minus_hand"] = deltas
        print(f"VMAF {v} - hand per rung: {deltas}  target each >= -0.5: "
              f"{'MET' if min(deltas) >= -0.5 else 'MISSED'}")
    return summary


if __name__ == "__main__":
    sys.exit(main())
