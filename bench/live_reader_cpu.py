"""Chromium's CPU seconds per second while it plays 720p and reads the burnt-in clock (not run by CI).

    .venv/bin/python bench/live_reader_cpu.py VIDEO.mp4 [--seconds 20] [--readers none,bench,former] [--former FILE]

bench/live_latency.py reads the clock of every frame Chromium shows; on the
2-core machine Chromium is the second biggest process of that bench, so
what its frame reading costs decides whether the 720p ladder's encoder gets
its core. This plays a local file (looped, muted, no MSE: the same for
every reader) and counts the CPU seconds of Chromium's process tree over
`--seconds`, once per reader:

- `none`: only the video, the element at the bench's size (640x360);
- `bench`: bench/live_latency.py's READER_JS as it is now;
- `former`: a READER_JS saved to a file (`--former`), e.g. the canvas reader
  before it (drawImage of the strip into a small canvas, getImageData);
- a `-tiny` suffix: the same with a 32x18 <video> element (compositing).

Every clock read is decoded (`unreadable` must be 0) and `how` says which
path the reader took (`videoframe` or `canvas`). 2026-12-03, 720p25 at the
ladder's 2.74 Mbit/s, load 12-17: none 0.16, bench (WebCodecs) 0.19-0.20,
former (canvas) 0.30, canvas with a tiny element 0.29 CPU s per s.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.live_latency import CHROMIUM_ARGS, READER_JS, cpu_by_group, decode_samples  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("video", type=Path)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--readers", default="none,bench")
    p.add_argument("--former", type=Path, default=None, help="a file with a former READER_JS, as reader `former`")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.conftest import free_port

    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(args.video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    readers = {"bench": READER_JS}
    if args.former:
        readers["former"] = args.former.read_text()
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                     args=CHROMIUM_ARGS)
        for _ in range(args.repeat):
            for name in args.readers.split(","):
                size = (32, 18) if name.endswith("-tiny") else (640, 360)
                script = readers.get(name.removesuffix("-tiny"))
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/")  # same origin as the video: the canvas is not tainted
                page.set_content(f"<video width={size[0]} height={size[1]} muted playsinline loop autoplay "
                                 f"src='/{args.video.name}'></video>")
                if script:
                    page.add_script_tag(content=script)
                page.wait_for_function("document.querySelector('video').currentTime > 1", timeout=30000)
                if script:
                    page.evaluate("resetStats()")
                before = cpu_by_group({"bench": os.getpid()})
                time.sleep(args.seconds)
                after = cpu_by_group({"bench": os.getpid()})
                stats = page.evaluate("window.S ? takeStats() : null")
                page.close()
                row = {"reader": name, "chromium_cpu_per_s": round((after["chromium"] - before["chromium"]) / args.seconds, 3),
                       "load1": round(os.getloadavg()[0], 1)}
                if stats is not None:  # every clock read must decode (the file's clocks are all plausible)
                    lat, bad, _ = decode_samples(stats["samples"])
                    row.update(frames_read_per_s=round(len(stats["samples"]) / args.seconds, 1),
                               unreadable=bad, how=stats.get("reader"), errors=stats["errors"][:3])
                rows.append(row)
                print(json.dumps(row), flush=True)
        browser.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
