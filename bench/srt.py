"""SRT listener benchmark (not run by CI): CPU of the listener per 5 Mbit/s publisher (target ≤ 5 % of one core).

    .venv/bin/python bench/srt.py [--streams 1,4] [--seconds 20] [--mbps 5]

Runs core/live/srt_ingest.SrtIngest in this process with an open gate (the
API's admit/update callbacks cost one HTTP call per handshake and one per
publisher every 3 s: left out). N ffmpeg callers push a pre-encoded 720p
MPEG-TS at a constant transport rate (`-muxrate`, `-c copy`, `-re`, so the
callers cost little) into one UDP port; for each, an ffmpeg reader pulls
the relay (`-c copy -f null`) as a live worker would. Measured: this
process's CPU seconds (every thread: libsrt's, the receive loops, the
relay) over the steady window, per stream, as % of one core; and the bytes
delivered, to check the rate.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.live.srt_ingest import Gate, SrtIngest, relay_url
from core.media.ffmpeg import find_ffmpeg
from tests.conftest import free_port


def make_source(path: Path, mbps: float, seconds: int = 10) -> None:
    rate = f"{mbps}M"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=1280x720:rate=30,noise=alls=8:allf=t", "-t", str(seconds),
                    "-c:v", "libx264", "-preset", "ultrafast", "-b:v", f"{mbps * 0.9:.2f}M",
                    "-maxrate", f"{mbps * 0.9:.2f}M", "-bufsize", "1M", "-g", "60", "-pix_fmt", "yuv420p",
                    "-f", "mpegts", "-muxrate", rate, str(path)], check=True)


def run(streams: int, seconds: float, source: Path) -> dict:
    ffmpeg = find_ffmpeg()
    with SrtIngest(Gate(), port=free_port(), relay_port=free_port()) as ingest:
        relay = f"http://127.0.0.1:{ingest.relay_port}"
        procs = []
        for i in range(streams):
            key = f"sk_bench{i}"
            procs.append(subprocess.Popen(
                [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
                 "-i", str(source), "-c", "copy", "-f", "mpegts", f"srt://127.0.0.1:{ingest.port}?streamid={key}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 10
        while len(ingest.publishers) < streams:
            assert time.monotonic() < deadline, "publishers did not connect"
            time.sleep(0.05)
        for i in range(streams):
            procs.append(subprocess.Popen(
                [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-i", relay_url(relay, f"sk_bench{i}"),
                 "-c", "copy", "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(3)  # readers attached, steady state
        bytes0 = sum(p.bytes for p in ingest.publishers.values())
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        received = sum(p.bytes for p in ingest.publishers.values()) - bytes0
        for p in procs:
            p.kill()
            p.wait()
    return {"streams": streams, "wall_s": round(wall, 1), "cpu_s": round(cpu, 2),
            "mbps_per_stream": round(received * 8 / wall / streams / 1e6, 2),
            "cpu_pct_of_core_per_stream": round(100 * cpu / wall / streams, 2),
            # scaled to exactly 5 Mbit/s of delivered TS (-re pacing lands a little under the muxrate)
            "cpu_pct_per_5mbps_stream": round(100 * cpu / wall / streams * 5 / max(received * 8 / wall / streams / 1e6, 0.01), 2),
            "load1": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", default="1,4")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--mbps", type=float, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.ts"
        make_source(source, args.mbps)
        for n in (int(x) for x in args.streams.split(",")):
            print(run(n, args.seconds, source), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
