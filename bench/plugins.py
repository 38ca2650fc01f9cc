"""Frame plugins benchmark (not run by CI): what the decode → Python → encode path costs.

    .venv/bin/python bench/plugins.py [--duration 60] [--live-seconds 30]

VOD: one 720p30 source of `--duration` seconds (testsrc2 + tone, pre-encoded),
the default 4-rung H.264 ladder (720/480/360/240) plus AAC, encoded by
`encode_family` four ways, one after the other: no plugin (the one-ffmpeg
path), a no-op plugin (the pipe path with nothing to do: its overhead),
`watermark` (a 256x128 PNG with alpha) and `blur_faces`. Each prints wall
time and CPU seconds (getrusage of this process plus its children: the
ffmpegs), and the no-op / no-plugin ratios.

Live: the same source served as a live HLS playlist (`-re -c copy`: the
"camera" costs no CPU), pulled by `LivePlugins` (the live worker's path) with
`watermark` into the live 3-rung ladder (720/480/360) for `--live-seconds`:
real time is held if the chain drops no frame after the first 3 s and the
encoder's median speed over the second half is at least 0.97x (ffmpeg's
speed of a live input hovers around 1.0x).

The machine is shared: the 1-minute load average is printed with every case.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import Cancelled
from core.live.plan import LIVE_MAX_RUNGS
from core.live.plugins import LivePlugins
from core.media import framepipe, plugins
from core.media.encode import EncodeJob
from core.media.family import encode_family
from core.media.ffmpeg import find_ffmpeg
from core.media.ladder import plan_audio, plan_ladder
from core.media.plugins.base import FramePlugin
from tests.plugins.conftest import write_png


class Nothing(FramePlugin):
    name = "nothing"
    pix_fmts = ("yuv420p",)
    batch_size = 8

    def process(self, frames, info):
        pass


def register_nothing() -> None:
    found = dict(plugins.installed())
    found["nothing"] = plugins.Installed("nothing", Nothing, ())
    plugins.installed = framepipe.installed = lambda: found  # as an installed package's entry point would


def cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def make_source(ffmpeg: str, path: Path, seconds: int) -> None:
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "128k", str(path)], check=True, timeout=600)


def vod(ffmpeg: str, source: Path, work: Path, mark: Path, seconds: int, only: list[str] | None = None,
        repeat: int = 1) -> dict[str, tuple[float, float]]:
    ladder = plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30))
    audio = plan_audio(2, 48000)
    cases = {"no plugin": None, "no-op plugin": [{"name": "nothing"}],
             "watermark": [{"name": "watermark", "options": {"image": str(mark), "width": 0.2}}],
             "blur_faces": [{"name": "blur_faces", "options": {}}]}
    cases = {k: v for k, v in cases.items() if not only or k in only}
    results = {}
    print(f"VOD: {seconds} s 720p30 -> {', '.join(r.id for r in ladder.renditions)} + audio")
    for label, chain in [item for _ in range(repeat) for item in cases.items()]:  # repeats interleaved
        out = work / label.replace(" ", "-")
        job = EncodeJob(source, out, ladder, audio, 4.0, Fraction(30))
        before_cpu, before_wall, before_load = cpu(), time.monotonic(), load()
        encode_family(ffmpeg, job, duration=seconds, on_progress=None, plugins=chain,
                      on_segment=lambda track, init, segment: segment.unlink())
        wall, used = time.monotonic() - before_wall, cpu() - before_cpu
        results[label] = (wall, used)
        print(f"  {label:13s} wall {wall:6.1f} s  CPU {used:6.1f} s  x realtime {seconds / wall:4.2f}"
              f"  load1 {before_load}->{load()}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    if "no plugin" in results and "no-op plugin" in results:
        base, noop = results["no plugin"], results["no-op plugin"]
        print(f"  no-op / no plugin (last run of each): wall {noop[0] / base[0]:.3f}, CPU {noop[1] / base[1]:.3f}")
    return results


def live(ffmpeg: str, source: Path, work: Path, mark: Path, seconds: int) -> None:
    hls = work / "hls"
    hls.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(hls))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    camera = subprocess.Popen([ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                               "-i", str(source), "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "6",
                               "-hls_flags", "delete_segments", str(hls / "live.m3u8")], start_new_session=True)
    original = framepipe.Pump.start
    try:
        while not (hls / "live.m3u8").exists():
            time.sleep(0.1)
        time.sleep(2)
        ladder = plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30),
                             max_rungs=LIVE_MAX_RUNGS)
        job = EncodeJob(Path("live"), work / "live-out", ladder, plan_audio(2, 48000), 2.0, Fraction(30))
        job.out_dir.mkdir()
        events, speeds, pumps = [], [], []
        chain = LivePlugins([{"name": "watermark", "options": {"image": str(mark), "width": 0.2}}],
                            on_health=lambda kind, details: events.append((round(time.monotonic() - t0, 1), kind,
                                                                           details)))
        def start(pump):
            pumps.append(pump)
            return original(pump)

        framepipe.Pump.start = start
        t0, before_cpu, before_load = time.monotonic(), cpu(), load()
        early = []

        def poll():
            for path in job.out_dir.glob("seg-*.m4s"):  # closed segments (ffmpeg writes *.m4s.tmp)
                path.unlink(missing_ok=True)
            if pumps and not early and time.monotonic() - t0 > 3:
                early.append(pumps[0].dropped)

        try:
            chain.run(ffmpeg, job, source_url=f"http://127.0.0.1:{httpd.server_address[1]}/live.m3u8", offset=0.1,
                      poll=poll, duration=None, on_progress=lambda p: p.speed and speeds.append(p.speed),
                      cancel=lambda: time.monotonic() - t0 > seconds)
        except Cancelled:
            pass
        except Exception as exc:
            print("live run failed:", exc, getattr(exc, "stderr_tail", ""))
            raise
        wall, used = time.monotonic() - t0, cpu() - before_cpu
        pump = pumps[0]
        late_drops = pump.dropped - (early[0] if early else 0)
        tail = speeds[len(speeds) // 2:] or [0]
        print(f"live: 720p30 -> {', '.join(r.id for r in ladder.renditions)} + audio, watermark, {wall:.0f} s")
        print(f"  frames {pump.frames_out}, dropped {pump.dropped} ({late_drops} after the first 3 s), "
              f"encoder speed (second half) min {min(tail):.2f}x median {sorted(tail)[len(tail) // 2]:.2f}x, "
              f"CPU {used:.1f} s ({used / wall:.2f} cores), load1 {before_load}->{load()}")
        print(f"  health events: {events}")
        median = sorted(tail)[len(tail) // 2]
        print(f"  holds real time: {late_drops == 0 and median >= 0.97} (no drop after 3 s, median speed >= 0.97x)")
    finally:
        framepipe.Pump.start = original
        camera.kill()
        camera.wait()
        httpd.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--live-seconds", type=int, default=30)
    parser.add_argument("--skip-vod", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--only", help="comma-separated VOD cases, e.g. 'no plugin,no-op plugin'")
    parser.add_argument("--repeat", type=int, default=1, help="run the VOD cases this many times, interleaved")
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    register_nothing()
    with tempfile.TemporaryDirectory(prefix="abr-bench-plugins-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        make_source(ffmpeg, source, args.duration)
        rgba = np.zeros((128, 256, 4), np.uint8)
        rgba[..., :3], rgba[16:112, 16:240, 3] = 255, 180
        mark = write_png(work / "mark.png", rgba)
        if not args.skip_vod:
            vod(ffmpeg, source, work, mark, args.duration, args.only.split(",") if args.only else None, args.repeat)
        if not args.skip_live:
            live(ffmpeg, source, work, mark, args.live_seconds)


if __name__ == "__main__":
    main()
