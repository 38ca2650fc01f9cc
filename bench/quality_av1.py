"""AV1 vs H.264 top rung at matched VMAF (issue #17; not run by CI).

    .venv/bin/python bench/quality_av1.py [--source testsrc2|mandelbrot] [--duration 10] [--height 720] [--h264-kbps N]
                                          [--av1-crf 30,36,42] [--auto testsrc2,animation,motion,static]

Target (issue): the AV1 top rung needs >= 25 % fewer bits than the H.264 top rung
at a VMAF within 1 point.

One generated source (lavfi, made once outside the timings, lossless x264 in MP4 so
VMAF compares against exactly what the encoders saw). Both families are
encoded by the project's own code (`build_encode_argv` via `encode_family`:
the real encoder settings, keyframes, dash muxer, CMAF segments), one rung at
the source size each:

- H.264 at the top rung `plan_ladder` gives for the source (the fixed table);
- AV1 at the planned AV1 top rung (`CODEC_FACTORS["av1"]`) and at a few
  other fractions of the H.264 rate, to find where AV1 meets H.264's VMAF.

Bits are what was written (the media segments' bytes), not the targets.
Each rendition (init + segments) is scored against the source with libvmaf
(model vmaf_v0.6.1, the filter's default). The matched AV1 rate is
interpolated linearly in log(rate) between the two AV1 points around
VMAF(H.264) - 1 and VMAF(H.264); "savings" compares it with H.264's bits.
Encode times are single cold runs (wall and CPU of the ffmpeg process),
printed with the load average: on a shared machine they are context only.
Prints a table and one JSON line (prefix `JSON `).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import imageio_ffmpeg

import quality  # noqa: E402  (bench/quality.py: its sources)

from core.media import analysis
from core.media.encode import SVTAV1_PRESET, EncodeJob
from core.media.family import encode_family
from core.media.ladder import CODEC_FACTORS, plan_ladder
from core.media.model import Ladder

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
RATE = 30
SOURCES = {
    # The project's usual test picture: sharp synthetic detail, moving gradient and counter.
    "testsrc2": "testsrc2=size={w}x{h}:rate={r}",
    # Fractal zoom: fine detail everywhere that changes every frame (high motion, hard to code).
    "mandelbrot": "mandelbrot=size={w}x{h}:rate={r}:maxiter=256",
}
AV1_FRACTIONS = (0.5, 0.6, 0.75, 0.9, 1.0)  # of the H.264 top-rung bitrate


def make_source(kind: str, path: Path, width: int, height: int, duration: float) -> None:
    graph = SOURCES[kind].format(w=width, h=height, r=RATE)
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", graph,
                    "-t", str(duration), "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
                    "-pix_fmt", "yuv420p", str(path)], check=True)  # fmt: skip


def _children_cpu() -> float:
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return c.ru_utime + c.ru_stime


def encode(source: Path, out: Path, codec: str, width: int, height: int, bitrate: int | None, duration: float,
           crf: float | None = None):
    """One rung of `codec` through the project's encoder; returns (rendition file, bits/s, wall, cpu).

    `crf`: a capped-CRF rung (as a per-title ladder encodes it) under the planned rung's cap
    (maxrate 1.5x, bufsize 2x of the codec's table rate)."""
    explicit = None if bitrate is None else [{"height": height, "bitrate": bitrate}]
    ladder = plan_ladder(codec=codec, display_width=width, display_height=height, frame_rate=Fraction(RATE),
                         explicit=explicit, max_rungs=1)
    if crf is not None:
        ladder = Ladder(codec, tuple(replace(r, crf=crf) for r in ladder.renditions))
    return encode_ladder(source, out, ladder, duration)


def encode_ladder(source: Path, out: Path, ladder: Ladder, duration: float):
    """The first rung of `ladder` through the project's encoder (as `encode`)."""
    codec = ladder.codec
    job = EncodeJob(source, out, ladder, None, 2.0, Fraction(RATE))
    files: list[Path] = []
    cpu0, t0 = _children_cpu(), time.monotonic()
    tracks = encode_family(FFMPEG, job, duration=duration, on_progress=None,
                           on_segment=lambda _t, init, seg: files.extend([p for p in (init, seg) if p]))
    wall, cpu = time.monotonic() - t0, _children_cpu() - cpu0
    track = tracks[0]
    media_bytes = sum(s.size for s in track.segments)
    rendition = out / f"{codec}.mp4"
    rendition.write_bytes(b"".join(p.read_bytes() for p in files))
    return {
        "codec": codec, "target": ladder.renditions[0].bitrate, "bps": media_bytes * 8 / duration,
        "codecs": track.codecs, "wall": wall, "cpu": cpu, "file": rendition,
    }


def vmaf(distorted: Path, source: Path) -> float:
    out = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", str(distorted), "-i", str(source),
                          "-lavfi", "[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]libvmaf",
                          "-f", "null", "-"], capture_output=True, text=True, check=True)  # fmt: skip
    return float(re.search(r"VMAF score: ([0-9.]+)", out.stderr).group(1))


def matched_rate(points: list[dict], target: float) -> tuple[float | None, bool]:
    """(AV1 rate in bits/s at VMAF `target`, exact?): interpolated in log(rate) between the first
    two points around it; the lowest point's rate (an upper bound) when even that one reaches it;
    None when no point does."""
    points = sorted(points, key=lambda p: p["bps"])
    if points and points[0]["vmaf"] >= target:
        return points[0]["bps"], False
    for lo, hi in zip(points, points[1:]):
        if lo["vmaf"] <= target <= hi["vmaf"] and hi["vmaf"] > lo["vmaf"]:
            f = (target - lo["vmaf"]) / (hi["vmaf"] - lo["vmaf"])
            return math.exp(math.log(lo["bps"]) + f * (math.log(hi["bps"]) - math.log(lo["bps"]))), True
    return None, True


def auto(kind: str, duration: float, height: int) -> dict:
    """`ladder: auto` top rungs of both families on one source: H.264 fixed, H.264 per-title, AV1 per-title.

    The analysis (core/media/analysis.py, 2 samples) measures H.264 first; the AV1 analysis aims at the H.264
    table's quality on the same samples (`reference`), as the worker does. Each top rung is then encoded over
    the whole source and scored there.
    """
    width = height * 16 // 9
    with tempfile.TemporaryDirectory(prefix="quality-av1-auto-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        if kind in SOURCES:
            make_source(kind, source, width, height, duration)
        else:
            quality.make_source(source, quality.sources(width, height)[kind], duration)
        plan = {c: plan_ladder(codec=c, display_width=width, display_height=height, frame_rate=Fraction(RATE),
                               max_rungs=1) for c in ("h264", "av1")}
        common = {"duration": duration, "display": (width, height), "segment_duration": 2.0}
        cpu0 = _children_cpu()
        m264 = analysis.analyse(FFMPEG, source, plan["h264"], work_dir=work / "a264", **common)
        cpu1 = _children_cpu()
        mav1 = analysis.analyse(FFMPEG, source, plan["av1"], work_dir=work / "aav1",
                                reference=analysis.table_points(m264), **common)
        cpu2 = _children_cpu()
        ladders = {"h264 fixed": plan["h264"]}
        for codec, m in (("h264", m264), ("av1", mav1)):
            ladders[f"{codec} auto"] = plan_ladder(codec=codec, display_width=width, display_height=height,
                                                   frame_rate=Fraction(RATE), max_rungs=1, measurements=m)
        rows = {}
        for name, ladder in ladders.items():
            p = encode_ladder(source, work / name.replace(" ", "-"), ladder, duration)
            p["vmaf"], p["crf"] = vmaf(p["file"], source), ladder.renditions[0].crf
            q = ladder.quality.get(ladder.renditions[0].id)
            p["predicted"] = q.vmaf_mean if q else None
            rows[name] = {k: p[k] for k in ("target", "bps", "vmaf", "crf", "predicted", "cpu", "wall")}
    a, h, f = rows["av1 auto"], rows["h264 auto"], rows["h264 fixed"]
    return {"source": kind, "size": f"{width}x{height}", "duration": duration, "rungs": rows,
            "av1_vs_h264_auto": round(1 - a["bps"] / h["bps"], 3),
            "av1_vs_h264_fixed": round(1 - a["bps"] / f["bps"], 3),
            "vmaf_av1_minus_h264_auto": round(a["vmaf"] - h["vmaf"], 2),
            "vmaf_av1_minus_h264_fixed": round(a["vmaf"] - f["vmaf"], 2),
            "analysis_cpu": {"h264": round(cpu1 - cpu0, 1), "av1": round(cpu2 - cpu1, 1)},
            "av1_points": [(p.bitrate, p.vmaf_mean, p.crf) for p in mav1.points],
            "h264_points": [(p.bitrate, p.vmaf_mean, p.crf) for p in m264.points]}


def main_auto(args) -> None:
    for kind in args.auto.split(","):
        r = auto(kind, args.duration, args.height)
        print(f"\n{kind} {r['size']} {r['duration']:g} s; load {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for name, p in r["rungs"].items():
            crf = f"crf {p['crf']:g}" if p["crf"] is not None else "average rate"
            print(f"  {name:<12}{p['bps'] / 1000:>8.0f} kb/s  VMAF {p['vmaf']:6.2f} "
                  f"(predicted {p['predicted']})  {crf}")
        print(f"  AV1 auto vs H.264 auto: {r['av1_vs_h264_auto']:.1%} fewer bits, "
              f"VMAF {r['vmaf_av1_minus_h264_auto']:+.2f}; "
              f"vs H.264 fixed: {r['av1_vs_h264_fixed']:.1%} fewer bits, VMAF {r['vmaf_av1_minus_h264_fixed']:+.2f}")
        print("JSON " + json.dumps(r, default=str), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", choices=sorted(SOURCES), default="testsrc2")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--h264-kbps", type=int, default=None,
                    help="compare at this H.264 rate instead of the planned top rung (a lower operating point)")
    ap.add_argument("--av1-crf", default="",
                    help="comma-separated SVT-AV1 CRFs: capped-CRF AV1 rungs (as `ladder: auto` encodes them) "
                         "instead of the bitrate fractions")
    ap.add_argument("--auto", default="",
                    help="comma-separated sources (these, or bench/quality.py's animation, motion, static): "
                         "`ladder: auto` top rungs, H.264 vs AV1 aimed at the same VMAF")
    args = ap.parse_args()
    if args.auto:
        main_auto(args)
        return
    crfs = [float(c) for c in args.av1_crf.split(",") if c.strip()]
    height = args.height
    width = height * 16 // 9
    with tempfile.TemporaryDirectory(prefix="quality-av1-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"  # mp4, not mkv: its 1 ms timestamps would make fps=30 drop/repeat frames
        make_source(args.source, source, width, height, args.duration)
        h264_rate = args.h264_kbps * 1000 if args.h264_kbps else None
        h264 = encode(source, work / "h264", "h264", width, height, h264_rate, args.duration)
        h264["vmaf"] = vmaf(h264["file"], source)
        planned = round(h264["target"] * CODEC_FACTORS["av1"])
        av1 = []
        if crfs:
            for crf in crfs:
                point = encode(source, work / f"av1-crf{crf:g}", "av1", width, height, None, args.duration, crf=crf)
                point["vmaf"], point["fraction"], point["crf"] = vmaf(point["file"], source), None, crf
                av1.append(point)
        for fraction in [] if crfs else sorted({*AV1_FRACTIONS, CODEC_FACTORS["av1"]}):
            rate = round(h264["target"] * fraction)
            point = encode(source, work / f"av1-{rate}", "av1", width, height, rate, args.duration)
            point["vmaf"], point["fraction"] = vmaf(point["file"], source), fraction
            av1.append(point)
    load = os.getloadavg()
    print(f"source {args.source} {width}x{height}p{RATE} {args.duration:g} s; SVT-AV1 preset {SVTAV1_PRESET}; "
          f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'rung':<22}{'target kb/s':>12}{'actual kb/s':>12}{'VMAF':>8}{'wall s':>8}{'cpu s':>8}")
    for p in [h264, *av1]:
        if p is h264:
            name = p["codec"]
        elif p.get("crf") is not None:
            name = f"av1 crf {p['crf']:g} (capped)"
        else:
            name = f"av1 x{p['fraction']:g}" + (" (planned)" if p["target"] == planned else "")
        print(f"{name:<22}{p['target'] / 1000:>12.0f}{p['bps'] / 1000:>12.0f}{p['vmaf']:>8.2f}{p['wall']:>8.1f}{p['cpu']:>8.1f}")
    within = [p for p in av1 if p["vmaf"] >= h264["vmaf"] - 1]
    cheapest = min(within, key=lambda p: p["bps"]) if within else None
    matched, exact = matched_rate(av1, h264["vmaf"] - 1)
    result = {
        "source": args.source, "h264_kbps": args.h264_kbps, "size": f"{width}x{height}", "duration": args.duration, "preset": SVTAV1_PRESET,
        "h264": {k: h264[k] for k in ("target", "bps", "vmaf", "codecs", "wall", "cpu")},
        "av1": [{k: p.get(k) for k in ("fraction", "crf", "target", "bps", "vmaf", "codecs", "wall", "cpu")} for p in av1],
        "av1_matched_bps": matched,
        "av1_matched_is_upper_bound": not exact,
        "savings_matched": None if matched is None else 1 - matched / h264["bps"],
        "savings_cheapest_measured_within_1": None if cheapest is None else 1 - cheapest["bps"] / h264["bps"],
        "load": load,
    }
    if cheapest is not None:
        print(f"cheapest measured AV1 within 1 VMAF of H.264: {cheapest['bps'] / 1000:.0f} kb/s, "
              f"VMAF {cheapest['vmaf']:.2f}: {result['savings_cheapest_measured_within_1']:.1%} fewer bits")
    if matched is not None:
        how = "interpolated" if exact else "at most: the lowest AV1 point already reaches it"
        print(f"AV1 at VMAF(H.264) - 1 ({how}): {matched / 1000:.0f} kb/s: "
              f"{'' if exact else 'at least '}{result['savings_matched']:.1%} fewer bits")
    else:
        print("no AV1 point reaches VMAF(H.264) - 1")
    print("JSON " + json.dumps(result, default=str))


if __name__ == "__main__":
    main()
