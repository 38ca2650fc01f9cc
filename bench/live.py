"""Live benchmark (not run by CI): ingest→playlist latency, hls.js glass-to-glass, concurrent 720p streams.

    .venv/bin/python bench/live.py [--streams 1,2,3] [--seconds 20]

Starts the real stack (uvicorn API, a Celery worker on the `live` queue,
nginx-rtmp) in a temp dir and pushes generated sources in real time (`-re`).

(a) The pushed picture's luma encodes the publisher's media time (Y = 16 +
    25·(t mod 8)); for each segment that appears in the 360p media playlist
    the bench decodes its first frame, reads the time back and computes
    `listed_at - sent_at` (sent_at = publisher start + t, the start measured
    from the publisher's own -progress). First frame of a segment: worst
    case (a whole segment plus overhead); last frame: that minus the segment.
(b) hls.js in Chromium: `Date.now() - hls.playingDate` (PROGRAM-DATE-TIME),
    plus the PDT's own offset from the true send time measured in (a).
(c) N publishers (a pre-encoded 720p file, `-c copy`, so pushing costs no
    CPU) → N live streams of three rungs (720p/480p/360p): real time if
    every stream keeps producing segments at the wall-clock rate.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.ingest import start_ingest
from cli.migrate import upgrade
from core.media.ffmpeg import find_ffmpeg
from tests.conftest import free_port
from tests.helpers import TEST_KEY, settings_from
from tests.origin.live import uvicorn_origin, wait_for_port
from tests.workers.worker_proc import running_worker

SEG = 2


def clock_publisher(url: str, seconds: int) -> tuple[subprocess.Popen, list[tuple[float, float]]]:
    argv = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-progress", "pipe:1",
            "-stats_period", "0.2", "-re", "-f", "lavfi", "-i", "color=c=black:s=160x90:r=25",
            "-vf", "geq=lum='16+mod(T\\,8)*25':cb=128:cr=128,scale=1280:720", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-f", "flv", url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []

    def read():
        for line in proc.stdout:
            if line.startswith("out_time_us=") and line.strip() != "out_time_us=N/A":
                samples.append((time.time(), int(line.split("=")[1]) / 1e6))

    import threading

    threading.Thread(target=read, daemon=True).start()
    return proc, samples


def first_frame_time(base: str, name: str) -> float:
    data = httpx.get(f"{base}/init.mp4").content + httpx.get(f"{base}/{name}").content
    with av.open(io.BytesIO(data)) as c:
        frame = next(c.decode(video=0))
    plane = frame.reformat(format="gray").planes[0]
    rows = bytes(plane)
    y = sum(rows[r * plane.line_size + c] for r in range(16) for c in range(16)) / 256
    return (y - 16) / 25


def bench_latency(stack, seconds: int) -> dict:
    api, rtmp = stack
    s = httpx.post(f"{api}/v1/live-streams", json={"segment_duration": SEG, "record": False},
                   headers={"Authorization": f"Bearer {TEST_KEY}"}).json()
    proc, samples = clock_publisher(f"{rtmp}/{s['stream_key']}", seconds)
    seen: dict[str, float] = {}
    media_base = None
    deadline = time.time() + seconds + 10
    while time.time() < deadline and proc.poll() is None:
        try:
            if media_base is None:
                master = httpx.get(s["playback"]["hls"]).text
                variant = [ln for ln in master.splitlines() if ln.endswith("index.m3u8")][-1]  # lowest rung
                media_base = s["playback"]["hls"].rsplit("/", 1)[0] + "/" + variant.rsplit("/", 1)[0]
            text = httpx.get(f"{media_base}/index.m3u8").text
            now = time.time()
            for line in text.splitlines():
                if line and not line.startswith("#") and line not in seen:
                    seen[line] = now
        except (httpx.HTTPError, IndexError):
            pass
        time.sleep(0.02)
    proc.wait()
    t0 = min(w - t for w, t in samples)  # wall time of the publisher's media time 0
    first_frame = []
    for name, listed in list(seen.items())[1:]:  # the first may predate our first poll
        t = first_frame_time(media_base, name)
        sent = t0 + t
        while listed - sent > 8:  # the luma clock wraps every 8 s
            sent += 8
        first_frame.append(listed - sent)
    httpx.post(f"{api}/v1/live-streams/{s['id']}/stop", headers={"Authorization": f"Bearer {TEST_KEY}"})
    return {"segments": len(first_frame), "first_frame_median": statistics.median(first_frame),
            "first_frame_max": max(first_frame), "last_frame_median": statistics.median(first_frame) - SEG}


def bench_concurrency(stack, n: int, seconds: int, source: Path) -> dict:
    api, rtmp = stack
    auth = {"Authorization": f"Bearer {TEST_KEY}"}
    streams = [httpx.post(f"{api}/v1/live-streams", json={"segment_duration": SEG, "record": False},
                          headers=auth).json() for _ in range(n)]
    pushers = [subprocess.Popen([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                                 "-stream_loop", "-1", "-i", str(source), "-t", str(seconds + 15), "-c", "copy",
                                 "-f", "flv", f"{rtmp}/{s['stream_key']}"]) for s in streams]
    time.sleep(8)  # connect, probe, first segments
    def counts():
        out = []
        for s in streams:
            try:
                master = httpx.get(s["playback"]["hls"]).text
                variant = [ln for ln in master.splitlines() if ln.endswith("index.m3u8")][0]  # top rung
                text = httpx.get(s["playback"]["hls"].rsplit("/", 1)[0] + "/" + variant).text
                out.append(int(text.split("#EXT-X-MEDIA-SEQUENCE:")[1].split()[0]) + text.count("#EXTINF") - 1)
            except (httpx.HTTPError, IndexError):
                out.append(0)
        return out
    a = counts()
    time.sleep(seconds)
    b = counts()
    for p in pushers:
        p.kill()
    for s in streams:
        httpx.post(f"{api}/v1/live-streams/{s['id']}/stop", headers=auth)
    rates = [(y - x) * SEG / seconds for x, y in zip(a, b)]
    return {"streams": n, "media_seconds_per_second": rates, "real_time": all(r >= 0.95 for r in rates)}


def bench_glass(stack, seconds: int) -> float | None:
    api, rtmp = stack
    vendor = Path(__file__).resolve().parents[1] / "player" / "vendor" / "hls.min.js"
    if not vendor.exists() or not os.access("/usr/bin/chromium", os.X_OK):
        return None
    from playwright.sync_api import sync_playwright

    s = httpx.post(f"{api}/v1/live-streams", json={"segment_duration": SEG, "record": False},
                   headers={"Authorization": f"Bearer {TEST_KEY}"}).json()
    proc, _ = clock_publisher(f"{rtmp}/{s['stream_key']}", seconds)
    time.sleep(6)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page()
        page.set_content("<video></video>")
        page.add_script_tag(content=vendor.read_text())
        page.add_script_tag(content=f"const hls = new Hls({{lowLatencyMode: false, liveSyncDurationCount: 1}});"
                                    f"const v = document.querySelector('video'); v.muted = true;"
                                    f"hls.loadSource({s['playback']['hls']!r}); hls.attachMedia(v);"
                                    "hls.on(Hls.Events.MANIFEST_PARSED, () => v.play());")
        page.wait_for_function("hls.playingDate && document.querySelector('video').currentTime > 2", timeout=40000)
        samples = []
        for _ in range(10):
            samples.append(page.evaluate("Date.now() - hls.playingDate.getTime()") / 1000)
            time.sleep(0.5)
        browser.close()
    proc.kill()
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", default="1,2,3")
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="abr-live-bench-"))
    rtmp_port, api_port = free_port(), free_port()
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(root / "data"), "ABR_API_KEYS": TEST_KEY,
           "ABR_RTMP_PORT": str(rtmp_port), "ABR_PORT": str(api_port), "ABR_LOG_LEVEL": "WARNING"}
    settings = settings_from(env)
    upgrade(settings.resolved_database_url)
    source = root / "source.flv"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=1280x720:rate=25", "-f", "lavfi", "-i", "sine=f=440:sample_rate=44100",
                    "-t", "30", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", "50",
                    "-c:a", "aac", str(source)], check=True)
    with uvicorn_origin(env, port=api_port) as (api, _), running_worker(env, log_path=root / "worker.log",
                                                                      queues="live", concurrency=4):
        nginx = start_ingest(settings, api_url=api, prefix=root / "ingest")
        wait_for_port(rtmp_port, proc=nginx)
        stack = (api, f"rtmp://127.0.0.1:{rtmp_port}/live")
        try:
            print("(a) ingest → playlist:", bench_latency(stack, args.seconds), flush=True)
            print("(b) hls.js glass-to-glass via PROGRAM-DATE-TIME (s):", bench_glass(stack, 30), flush=True)
            for n in (int(x) for x in args.streams.split(",")):
                print("(c)", bench_concurrency(stack, n, args.seconds, source), flush=True)
        finally:
            nginx.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
