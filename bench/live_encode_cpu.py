"""CPU seconds per media second of bench/live_latency.py's processes, each alone (not run by CI).

    .venv/bin/python bench/live_encode_cpu.py [--seconds 20] [--size 1280x720] [--presets veryfast,superfast,ultrafast]
        [--threads planned,1,2] [--no-parts] [--repeat 1] [--quality]

The latency bench runs a sender, the live encoder, Chromium and itself on
one 2-core machine; under load wall clock says nothing about what each
costs. This records the sender's output once (the same frames, clock strip
and x264 settings as bench/live_latency.py's ClockSender, unpaced) to an FLV
file, then runs the live encoder's own argv (core/live/encode.py
`build_live_argv`, the ladder `plan_live` makes for that source, LL parts)
on it as fast as it goes, each variant alone, and reads the child's CPU
seconds from `wait4` (user + system): CPU seconds per media second is the
share of a core the process needs to keep up in real time. The sender's
frame drawing (Python) and its ffmpeg are measured the same way.

`--quality`: PSNR and VMAF (libvmaf, vmaf_v0.6.1) of each variant's top rung
against the encoder's input (the sender's frames as decoded), and the rung's
bitrate as written.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.clock_pattern import draw_clock  # noqa: E402
from bench.live_latency import FPS, sender_argv, sender_background  # noqa: E402


def run_cpu(argv: list[str], stdin=None) -> tuple[float, float]:
    """Run `argv` to completion: (CPU seconds of the child, user + system; wall seconds)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate()
    wall = time.monotonic() - started
    if proc.returncode:
        raise RuntimeError(f"{argv[:4]}… failed: {err.decode(errors='replace')[-1500:]}")
    return child_cpu_since(), wall


_seen_children = [0.0]


def child_cpu_since() -> float:
    """CPU seconds of the children reaped since the last call (RUSAGE_CHILDREN is cumulative)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = ru.ru_utime + ru.ru_stime
    delta = total - _seen_children[0]
    _seen_children[0] = total
    return delta


def record_testsrc2(path: Path, ffmpeg: str, seconds: float, size: tuple[int, int], sender: dict,
                    noise: int = 0) -> dict:
    """ffmpeg's testsrc2 (the project's other encoder tables' content: harder to code than the bench's
    smooth texture) through the sender's x264 settings into `path`: for the quality comparison. `noise`:
    temporal noise of that strength on top (a camera's sensor noise: what makes live x264 work hard)."""
    argv = sender_argv(ffmpeg, f"file:{path}", fps=FPS, size=size, **sender)
    at = argv.index("-f")
    source = f"testsrc2=size={size[0]}x{size[1]}:rate={FPS}" + (f",noise=alls={noise}:allf=t" if noise else "")
    argv[at:argv.index("pipe:0") + 1] = ["-f", "lavfi", "-i", source, "-t", str(seconds)]
    child_cpu_since()
    run_cpu(argv)
    return {"sender_kbit_s": round(path.stat().st_size * 8 / seconds / 1000)}


def record_sender(path: Path, ffmpeg: str, seconds: float, size: tuple[int, int], sender: dict,
                  paced: bool = False) -> dict:
    """The sender's frames (clock strip on the moving texture) through its ffmpeg into `path` (FLV);
    `paced`: one frame every 1/FPS s, as ClockSender sends them, else as fast as ffmpeg takes them."""
    w, h = size
    argv = sender_argv(ffmpeg, f"file:{path}", fps=FPS, size=size, **sender)
    child_cpu_since()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tex = sender_background(w, h)
    chroma = bytes([128]) * (w * h // 2)
    luma = __import__("numpy").empty((h, w), "uint8")
    t0 = int(time.time() * 1000)
    start = time.time()
    draw = 0.0
    for i in range(int(seconds * FPS)):
        if paced and (wait := start + i / FPS - time.time()) > 0:
            time.sleep(wait)
        c = time.process_time()
        off = (i * 6 * w // 1280) % w
        luma[:] = tex[:, off:off + w]
        draw_clock(luma, t0 + i * 1000 // FPS)
        frame = luma.tobytes() + chroma
        draw += time.process_time() - c
        proc.stdin.write(frame)
    proc.stdin.close()
    err = proc.stderr.read()
    if proc.wait():
        raise RuntimeError(err.decode(errors="replace")[-1500:])
    return {"sender_ffmpeg_cpu_per_s": round(child_cpu_since() / seconds, 3),
            "sender_drawing_cpu_per_s": round(draw / seconds, 3),
            "sender_kbit_s": round(path.stat().st_size * 8 / seconds / 1000)}


def live_argv(ffmpeg: str, source: Path, out_dir: Path, size: tuple[int, int], *, preset: str | None,
              threads: str, parts: bool, paced: bool = False, decode_threads: int | None = None) -> tuple[list[str], list]:
    from core.live.encode import build_live_argv
    from core.live.plan import plan_live
    from core.live.probe import LiveSourceInfo
    from core.media.encode import EncodeJob

    plan = plan_live(LiveSourceInfo(width=size[0], height=size[1], frame_rate=Fraction(FPS), audio_channels=0,
                                    audio_sample_rate=0), {"latency_mode": "low"})
    job = EncodeJob(source=Path("live"), out_dir=out_dir, ladder=plan.ladder, audio=None, segment_duration=1.0,
                    frame_rate=plan.frame_rate)
    # paced: read at the media's own rate (-re), as the live source arrives
    inputs = [*(["-re"] if paced else []), "-f", "flv", "-protocol_whitelist", "file", "-i", str(source)]
    argv = build_live_argv(ffmpeg, job, source_url="pipe:0", offset=0.1, input_options=inputs,
                           part_target=0.25 if parts else None)
    if preset is not None:  # the preset under test in place of what the project's argv says
        argv = [preset if argv[i - 1] == "-preset" and argv[i - 2] == "libx264" else a for i, a in enumerate(argv)]
    if decode_threads is not None:  # the input's decoder (ffmpeg's default: frame threads, one per core + 1)
        at = argv.index("-i")
        argv[at:at] = ["-threads", str(decode_threads)]
    if threads != "planned":
        argv = [re.sub(r"threads=\d+", f"threads={threads}", a) if a.startswith("sliced-threads") else a
                for a in argv]
    return argv, list(plan.ladder.renditions)


def quality(ffmpeg: str, source: Path, out_dir: Path, seconds: float) -> dict:
    """PSNR / VMAF of rung 0 (init + its segments) against the decoded source, and its bitrate."""
    segs = sorted(out_dir.glob("seg-0-*.m4s"))
    rung = out_dir / "rung0.mp4"
    rung.write_bytes((out_dir / "init-0.m4s").read_bytes() + b"".join(p.read_bytes() for p in segs))
    bits = sum(p.stat().st_size for p in segs) * 8
    log = out_dir / "vmaf.json"
    graph = ("[0:v]setpts=PTS-STARTPTS,format=yuv420p[d];[1:v]setpts=PTS-STARTPTS,format=yuv420p[r];"
             "[d]split[d1][d2];[r]split[r1][r2];[d1][r1]psnr;"
             f"[d2][r2]libvmaf=log_fmt=json:log_path={log}:n_threads=2")
    r = subprocess.run([ffmpeg, "-hide_banner", "-nostats", "-i", str(rung), "-i", str(source),
                        "-filter_complex", graph, "-f", "null", "-"], capture_output=True, text=True)
    psnr = re.search(r"PSNR .*average:([\d.]+)", r.stderr)
    vmaf = json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"] if log.exists() else None
    return {"psnr_db": float(psnr.group(1)) if psnr else None, "vmaf": round(vmaf, 2) if vmaf else None,
            "rung0_kbit_s": round(bits / seconds / 1000)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--presets", default="veryfast,superfast,ultrafast", help="x264 presets of the live encoder to compare")
    p.add_argument("--threads", default="planned", help="x264 slice threads per rung: planned (the project's) or N")
    p.add_argument("--no-parts", action="store_true", help="also run without LL parts (-frag_duration)")
    p.add_argument("--sender", default="", help="sender x264 overrides as JSON, e.g. '{\"bitrate\": \"2M\"}'")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--decode-threads", default="auto", help="decoder threads to compare: auto (ffmpeg's) or N")
    p.add_argument("--paced", action="store_true", help="sender and encoder in real time, as in the latency bench")
    p.add_argument("--content", choices=("bench", "testsrc2", "noisy"), default="bench",
                   help="the latency bench's picture, testsrc2, or testsrc2 with temporal noise (for --quality)")
    p.add_argument("--quality", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (the recording and every variant's output)")
    args = p.parse_args()

    from core.media.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg()
    size = tuple(int(x) for x in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="abr-live-cpu-"))
    source = work / "sender.flv"
    sender = json.loads(args.sender) if args.sender else {}
    out = {"load_before": os.getloadavg(), "seconds": args.seconds, "size": args.size, "sender_settings": sender}
    if args.content == "bench":
        out["sender"] = record_sender(source, ffmpeg, args.seconds, size, sender, paced=args.paced)
    else:
        out["sender"] = record_testsrc2(source, ffmpeg, args.seconds, size, sender,
                                        noise=8 if args.content == "noisy" else 0)
    print(json.dumps(out), flush=True)
    rows = []
    for _ in range(args.repeat):
        for preset in args.presets.split(","):
            for threads, decode in [(t, d) for t in args.threads.split(",") for d in args.decode_threads.split(",")]:
                for parts in ([True, False] if args.no_parts else [True]):
                    out_dir = work / f"{preset}-{threads}-{parts}"
                    out_dir.mkdir(exist_ok=True)
                    argv, _ = live_argv(ffmpeg, source, out_dir, size, preset=preset, threads=threads, parts=parts,
                                        paced=args.paced, decode_threads=None if decode == "auto" else int(decode))
                    child_cpu_since()
                    cpu, wall = run_cpu(argv)
                    row = {"preset": preset, "threads": threads, "decode_threads": decode, "parts": parts,
                           "paced": args.paced,
                           "cpu_per_media_s": round(cpu / args.seconds, 3), "wall_s": round(wall, 2),
                           "load1": round(os.getloadavg()[0], 1)}
                    if args.quality:
                        row.update(quality(ffmpeg, source, out_dir, args.seconds))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    out["rows"] = rows
    print(json.dumps(out, indent=1))
    if not args.keep:
        __import__("shutil").rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
