"""Chunk 0's ffmpeg alone: wall and CPU from exec to each rung's first segment (not run by CI).

    .venv/bin/python bench/first_segment.py SOURCE [--variants base=,la5=rc-lookahead=5] [--repeat 5]
                                                   [--audio] [--vmaf]

What `playable` waits for on the chunked path is chunk 0's first segment of
every rung (plus the audio's). This runs the argv the worker runs for chunk 0
(`core.media.encode.build_encode_argv` of the job `Chunked` builds: the
source's first 60 s, the ladder `plan_ladder` gives, the 0.5 s first
segment), with each variant's extra x264 options appended to every rung's
`-x264-params`, and reports per run: exec -> init segments, exec -> each
rung's first segment, and ffmpeg's CPU seconds (all its threads, from
/proc/PID/task/*/schedstat) when the last first segment appeared. CPU seconds
are the figure to read on a shared machine; wall is printed with the load.
Variants run interleaved.

--audio runs the chunked path's audio encode beside it (niced by
`chunked.AUDIO_NICE`, as the worker does), so its share can be seen.
--vmaf lets one run of each variant finish chunk 0 (60 s, or --length) and scores each rung
(libvmaf v0.6.1, upscaled bicubic to the source size, every 5th frame)
against the same seconds of the source: a lever that changes chunk 0's encoder
settings changes chunk 0's quality, not just its start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import imageio_ffmpeg

from core.media.encode import EncodeJob, build_encode_argv
from core.media.ladder import plan_audio, plan_ladder
from core.media.probe import probe
from core.services.chunked import AUDIO_NICE

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CHUNK = 60.0
SEGMENT = 4.0
FIRST = 0.5


def job_argvs(source: Path, out: Path, x264_extra: str, length: float = CHUNK) -> tuple[list[str], list[str], int]:
    """(chunk 0's argv with `x264_extra` in every rung, the audio's argv, rungs)."""
    info = probe(source)
    v = info.video
    ladder = plan_ladder(codec="h264", display_width=v.display_width, display_height=v.display_height,
                         frame_rate=v.frame_rate)
    rate = ladder.renditions[0].frame_rate
    job = EncodeJob(source, out / "f0c0", ladder, None, SEGMENT, rate, start=0.0, length=length,
                    first_segment_duration=FIRST)
    argv = build_encode_argv(FFMPEG, job)
    if x264_extra:
        argv = [a + ":" + x264_extra if a.startswith("sliced-threads=") else a for a in argv]
    audio = EncodeJob(source, out / "audio", None, plan_audio(2, 48_000), SEGMENT, None)
    return argv, build_encode_argv(FFMPEG, audio), len(ladder.renditions)


def ffmpeg_cpu(pid: int) -> float:
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            except OSError:
                pass
    except OSError:
        pass
    return total / 1e9


def run_once(source: Path, root: Path, x264_extra: str, with_audio: bool, finish: bool, length: float) -> dict:
    argv, audio_argv, rungs = job_argvs(source, root, x264_extra, length)
    (root / "f0c0").mkdir(parents=True)
    (root / "audio").mkdir(parents=True)
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    audio = None
    if with_audio:
        audio = subprocess.Popen(audio_argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.setpriority(os.PRIO_PROCESS, audio.pid, os.getpriority(os.PRIO_PROCESS, 0) + AUDIO_NICE)
    marks: dict[str, float] = {}
    cpu_at_last = audio_cpu = None
    while proc.poll() is None and len([k for k in marks if k.startswith("seg")]) < rungs:
        for n in os.listdir(root / "f0c0"):
            if n.startswith("init-") and "init" not in marks:
                marks["init"] = time.monotonic() - t0
            if n.startswith("seg-") and n.endswith("-00001.m4s"):
                marks.setdefault("seg" + n.split("-")[1], time.monotonic() - t0)
        time.sleep(0.005)
    cpu_at_last = ffmpeg_cpu(proc.pid)
    if audio is not None:
        audio_cpu = ffmpeg_cpu(audio.pid)
        audio.kill()
        audio.wait()
    if finish:
        proc.wait()
    else:
        proc.kill()
        proc.wait()
    return {"load1": round(load, 2), "init": round(marks.get("init", -1), 3),
            "first_segments": {k: round(v, 3) for k, v in sorted(marks.items()) if k.startswith("seg")},
            "last_first_segment": round(max(v for k, v in marks.items() if k.startswith("seg")), 3),
            "cpu": round(cpu_at_last, 3), "audio_cpu": None if audio_cpu is None else round(audio_cpu, 3),
            "rc": proc.returncode}


def vmaf(root: Path, source: Path, rungs: int, width: int, height: int, length: float) -> list[float]:
    scores = []
    for i in range(rungs):
        out = root / "f0c0"
        joined = root / f"rung{i}.mp4"
        parts = [out / f"init-{i}.m4s", *sorted(out.glob(f"seg-{i}-*.m4s"))]
        joined.write_bytes(b"".join(p.read_bytes() for p in parts))
        log = root / f"rung{i}.json"
        graph = (f"[0:v]scale={width}:{height}:flags=bicubic,setsar=1,format=yuv420p[d];"
                 f"[1:v]setsar=1,format=yuv420p[r];"
                 f"[d][r]libvmaf=log_fmt=json:log_path={log}:n_subsample=5:n_threads={os.cpu_count()}")
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(joined),
                        "-t", str(length), "-i", str(source), "-filter_complex", graph, "-f", "null", "-"],
                       check=True)
        scores.append(round(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"], 2))
    return scores


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("--variants", default="base=", help="comma separated NAME=X264_OPTIONS (':'-separated)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--audio", action="store_true", help="run the audio encode beside it, as the worker does")
    ap.add_argument("--vmaf", action="store_true", help="finish one run of each variant and score its rungs")
    ap.add_argument("--length", type=float, default=CHUNK,
                    help="seconds of source chunk 0 encodes (default 60, the chunk length; shorter for a quicker --vmaf)")
    ap.add_argument("--print-argv", action="store_true")
    args = ap.parse_args()
    variants = dict(v.split("=", 1) for v in args.variants.split(",") if v)
    if args.print_argv:
        for name, extra in variants.items():
            print(name, " ".join(job_argvs(args.source, Path("out"), extra)[0]))
        return 0
    results: dict[str, list[dict]] = {n: [] for n in variants}
    quality: dict[str, list[float]] = {}
    info = probe(args.source).video
    with tempfile.TemporaryDirectory(prefix="abr-first-segment-") as tmp:
        for rep in range(args.repeat):
            for name, extra in variants.items():
                root = Path(tmp) / f"{name}-{rep}"
                finish = args.vmaf and rep == 0
                r = run_once(args.source, root, extra, args.audio, finish, args.length)
                results[name].append(r)
                print(f"{name} run {rep + 1}: {json.dumps(r)}", flush=True)
                if finish:
                    quality[name] = vmaf(root, args.source, len(r["first_segments"]), info.display_width,
                                         info.display_height, args.length)
                    print(f"{name} VMAF chunk 0 per rung: {quality[name]}", flush=True)
    print(f"\n{'variant':10s} {'cpu med':>8s} {'cpu all':>30s} {'last 1st seg med':>16s} {'init med':>8s}  VMAF")
    for name, runs in results.items():
        cpus = [r["cpu"] for r in runs]
        print(f"{name:10s} {statistics.median(cpus):8.3f} {' '.join(f'{c:.2f}' for c in cpus):>30s} "
              f"{statistics.median(r['last_first_segment'] for r in runs):16.3f} "
              f"{statistics.median(r['init'] for r in runs):8.3f}  {quality.get(name, '')}")
    print(f"load after: {os.getloadavg()}")
    print("JSON " + json.dumps({"runs": results, "vmaf": quality}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
