"""Per-title vs fixed ladder (not run by CI): bits, VMAF per rung, BD-rate, analysis cost.

    .venv/bin/python bench/quality.py [--duration 30] [--size 1280x720] [--sources animation,motion,static]
                                      [--keep DIR] [--json-out FILE] [--subsample 2]

Targets (issue #17): the per-title ladder's total bitrate >= 20 % below the
fixed ladder's, every per-title rung's VMAF within 1 point of the fixed
rung of the same size (or higher), no source where per-title spends > 2 %
more; analysis time as a fraction of the encode's.

Three sources the project makes itself with ffmpeg's lavfi (no download),
each `--duration` s at `--size`, 30 fps, written once as near-lossless
H.264 (outside the timings):

animation  `life` (Conway's game of life: flat colours, hard edges, cells
           moving every frame) drawn 1/20 size and scaled up without smoothing:
           cartoon-like flat areas.
motion     `testsrc2` (moving patterns) with temporal noise (`noise=alls=8:allf=t`,
           like camera grain): every frame differs everywhere.
static     a talking head stand-in: `smptehdbars` (still) with a small
           `testsrc2` picture moving on it and light grain.

For each source, one after the other (cold: nothing shared between them):
fixed     `plan_ladder` (the fixed table) encoded by `encode_family`.
per-title `core.media.analysis.analyse` on the fixed ladder's sizes (timed
          on its own), `plan_ladder(measurements=...)`, then `encode_family`.
The per-title ladder's H.264 rungs are capped CRFs where the analysis found
one (the CRF is printed beside the rung). CPU seconds (user + system of the
ffmpeg children, whatever else loads the machine) are reported beside wall
time, and the analysis' CPU per sample x 6 (the most samples, a source of 10
minutes or more) over the fixed encode's CPU per second x 600 is the
projected fraction for a 10-minute source of the same picture.
Each rung of both is scored with VMAF over its whole length against the
source at display size (`analysis.score`, every `--subsample`-th frame), bitrate = bytes
of media segments x 8 / duration. BD-rate: mean log-rate difference of the
two ladders' (VMAF, bitrate) rung curves over their common VMAF range
(piecewise linear in log rate; `n/a` with no overlap). Prints a table and
one JSON line (prefix `JSON `). One run; record `uptime` with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.media import analysis  # noqa: E402
from core.media.encode import EncodeJob  # noqa: E402
from core.media.family import encode_family  # noqa: E402
from core.media.ffmpeg import find_ffmpeg  # noqa: E402
from core.media.ladder import plan_ladder  # noqa: E402
from core.media.pertitle import convex_hull  # noqa: E402

FFMPEG = find_ffmpeg()
RATE = 30
SCORE_SUBSAMPLE = 2  # --subsample: every n-th frame of each whole rendition is scored
SEGMENT = 4.0


def sources(w: int, h: int) -> dict[str, list[str]]:
    """name -> lavfi input args + filter (video only)."""
    return {
        "animation": ["-f", "lavfi", "-i", f"life=size={w // 20}x{h // 20}:rate={RATE}:mold=10:ratio=0.2:seed=1:"
                      f"life_color=#f0c020:death_color=#2040a0,scale={w}:{h}:flags=neighbor,format=yuv420p"],
        "motion": ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={RATE},noise=alls=8:allf=t,format=yuv420p"],
        "static": ["-f", "lavfi", "-i", f"smptehdbars=size={w}x{h}:rate={RATE}",
                   "-f", "lavfi", "-i", f"testsrc2=size={w // 6}x{h // 6}:rate={RATE}",
                   "-filter_complex", f"[0:v][1:v]overlay=x='{w // 2 - w // 12}+{w // 10}*sin(t)':"
                   f"y='{h // 2 - h // 12}+{h // 20}*cos(t)',noise=alls=3:allf=t,format=yuv420p"],
    }


def make_source(path: Path, args: list[str], duration: float) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args, "-t", str(duration),
                    "-c:v", "libx264", "-preset", "ultrafast", "-qp", "4", "-g", str(2 * RATE), str(path)],
                   check=True)


def encode_and_score(source: Path, ladder, duration: float, work: Path, size: tuple[int, int]) -> tuple[float, list[dict]]:
    """Encode `ladder` (timed), then score each rung over its whole length; returns (encode seconds, rungs)."""
    out = work / "enc"
    shutil.rmtree(out, ignore_errors=True)
    job = EncodeJob(source=source, out_dir=out, ladder=ladder, audio=None, segment_duration=SEGMENT,
                    frame_rate=ladder.renditions[0].frame_rate)
    t, cpu = time.monotonic(), _children_cpu()
    tracks = encode_family(FFMPEG, job, duration=duration, on_progress=None, on_segment=lambda *a: None)
    encode_s = time.monotonic() - t
    CPU["encode"] = _children_cpu() - cpu
    rungs = []
    for i, track in enumerate(tracks):
        joined, media = analysis.joined_track(out, str(i), work / f"{track.id}.mp4")
        (frames,) = analysis.score(FFMPEG, source, [joined], None, rate=Fraction(RATE), size=size, work_dir=work,
                                   subsample=SCORE_SUBSAMPLE)
        q = ladder.quality.get(track.id)
        rungs.append({"id": track.id, "target_bitrate": track.rendition.bitrate,
                      "bitrate": round(media * 8 / track.duration_seconds),
                      "vmaf_mean": round(statistics.fmean(frames), 2), "vmaf_p5": round(analysis.percentile(frames, 5), 2),
                      "predicted_vmaf": q.vmaf_mean if q else None})
    return encode_s, rungs


CPU: dict[str, float] = {}  # the last encode's CPU seconds (ffmpeg's, all threads)


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far: ffmpeg's, whatever the load."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bd_rate(fixed: list[dict], pertitle: list[dict]) -> float | None:
    """Per-title's mean bitrate difference vs fixed at equal VMAF, over the common VMAF range (negative: saves)."""
    def curve(rungs):
        pts = sorted((r["vmaf_mean"], math.log2(r["bitrate"])) for r in rungs)
        return [p for i, p in enumerate(pts) if i == 0 or p[0] > pts[i - 1][0]]

    def at(c, q):
        for (q0, r0), (q1, r1) in zip(c, c[1:]):
            if q0 <= q <= q1:
                return r0 + (r1 - r0) * (q - q0) / (q1 - q0)
        return c[0][1] if q <= c[0][0] else c[-1][1]

    a, b = curve(fixed), curve(pertitle)
    lo, hi = max(a[0][0], b[0][0]), min(a[-1][0], b[-1][0])
    if len(a) < 2 or len(b) < 2 or hi <= lo:
        return None
    n = 200
    diff = statistics.fmean(at(b, lo + (hi - lo) * k / n) - at(a, lo + (hi - lo) * k / n) for k in range(n + 1))
    return round((2 ** diff - 1) * 100, 1)


def run_source(name: str, args: list[str], duration: float, w: int, h: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source.mp4"
    make_source(source, args, duration)
    size = analysis.score_size(w, h)
    fixed = plan_ladder(codec="h264", display_width=w, display_height=h, frame_rate=Fraction(RATE))
    fixed_s, fixed_rungs = encode_and_score(source, fixed, duration, work / "fixed", size)
    fixed_cpu = CPU["encode"]
    t, cpu = time.monotonic(), _children_cpu()
    measured = analysis.analyse(FFMPEG, source, fixed, duration=duration, display=(w, h), segment_duration=SEGMENT,
                                work_dir=work / "analysis")
    analysis_s, analysis_cpu = time.monotonic() - t, _children_cpu() - cpu
    auto = plan_ladder(codec="h264", display_width=w, display_height=h, frame_rate=Fraction(RATE), measurements=measured)
    auto_s, auto_rungs = encode_and_score(source, auto, duration, work / "auto", size)
    auto_cpu = CPU["encode"]
    # A 10-minute source of this picture: plan_samples' count for it against 600 s of this encode.
    per_sample = analysis_cpu / measured.samples
    projected = per_sample * len(analysis.plan_samples(600.0)) / (fixed_cpu / duration * 600)
    fixed_total, auto_total = sum(r["bitrate"] for r in fixed_rungs), sum(r["bitrate"] for r in auto_rungs)
    by_id = {r["id"]: r for r in fixed_rungs}
    within = all(r["vmaf_mean"] >= by_id[r["id"]]["vmaf_mean"] - 1 for r in auto_rungs if r["id"] in by_id)
    return {"source": name, "fixed": fixed_rungs, "auto": auto_rungs, "fixed_total": fixed_total,
            "auto_total": auto_total, "saving_pct": round((1 - auto_total / fixed_total) * 100, 1),
            "bd_rate_pct": bd_rate(fixed_rungs, auto_rungs), "vmaf_within_1": within,
            "analysis_s": round(analysis_s, 1), "fixed_encode_s": round(fixed_s, 1), "auto_encode_s": round(auto_s, 1),
            "analysis_fraction": round(analysis_s / auto_s, 2),
            "analysis_cpu_s": round(analysis_cpu, 1), "fixed_encode_cpu_s": round(fixed_cpu, 1),
            "auto_encode_cpu_s": round(auto_cpu, 1), "analysis_cpu_fraction": round(analysis_cpu / fixed_cpu, 2),
            "projected_10min_cpu_fraction": round(projected, 3),
            "chosen": [{"id": r.id, "bitrate": r.bitrate, "crf": r.crf} for r in auto.renditions],
            "measurements": asdict(measured), "hull": [asdict(p) for p in convex_hull(measured.points)]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--sources", default="animation,motion,static")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--subsample", type=int, default=2, help="score every n-th frame of each whole rendition")
    a = parser.parse_args()
    global SCORE_SUBSAMPLE
    SCORE_SUBSAMPLE = a.subsample
    w, h = (int(x) for x in a.size.split("x"))
    root = a.keep or Path(tempfile.mkdtemp(prefix="bench-quality-"))
    results = []
    load_before = os.getloadavg()
    for name in a.sources.split(","):
        results.append(run_source(name, sources(w, h)[name], a.duration, w, h, root / name))
        r = results[-1]
        print(f"\n{name}: fixed {r['fixed_total'] / 1e3:.0f} kbit/s, per-title {r['auto_total'] / 1e3:.0f} kbit/s "
              f"({r['saving_pct']:+.1f} % saved), BD-rate {r['bd_rate_pct']} %, VMAF within 1: {r['vmaf_within_1']}, "
              f"analysis {r['analysis_s']} s = {r['analysis_fraction']:.2f} x encode {r['auto_encode_s']} s; CPU: analysis "
              f"{r['analysis_cpu_s']} s = {r['analysis_cpu_fraction']:.2f} x fixed encode {r['fixed_encode_cpu_s']} s, "
              f"projected for 10 min: {r['projected_10min_cpu_fraction']:.3f}", flush=True)
        for label in ("fixed", "auto"):
            for g in r[label]:
                pred = f" (predicted {g['predicted_vmaf']})" if g["predicted_vmaf"] is not None else ""
                crf = {c["id"]: c["crf"] for c in r["chosen"]}.get(g["id"]) if label == "auto" else None
                how = f" crf {crf}" if crf is not None else ""
                print(f"  {label:5} {g['id']:10} {g['bitrate'] / 1e3:8.0f} kbit/s  VMAF {g['vmaf_mean']:6.2f}"
                      f"  p5 {g['vmaf_p5']:6.2f}{pred}{how}")
    summary = {"load_before": load_before, "load_after": os.getloadavg(), "duration": a.duration, "size": a.size,
               "subsample": a.subsample,
               "results": results}
    print("JSON " + json.dumps(summary, separators=(",", ":")))
    if a.json_out:
        a.json_out.write_text(json.dumps(summary, indent=1))
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
