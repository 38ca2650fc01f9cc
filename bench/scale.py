"""Scale-out benchmark (not run by CI): one long 1080p30 source through 1, 2 and 4 worker processes.

    .venv/bin/python bench/scale.py [--duration 600] [--workers 1,2,4] [--chunk 60] [--segment 4] [--keep DIR]

Variants, each on a fresh embedded deployment (SQLite database and broker,
local storage: the broker's ~0.7 s polling is noise at these durations):
  unchunked-1  one worker, chunking off (ABR_CHUNK_MIN_SOURCE huge): the single-process pipeline
  chunked-N    N worker processes (concurrency 1 each), chunks of --chunk seconds
Reported per variant: wall time from upload to `ready`, time to `playable`,
speed (source seconds / wall), and CPU seconds of every worker process and
their ffmpeg children (RUSAGE_CHILDREN around the run, workers stopped
gracefully so every descendant is reaped) — the overhead of chunking (each
chunk's encoder start-up, decoding from a seek, per-chunk rate-control
warm-up) shows as CPU seconds above unchunked-1. Source: testsrc2 1080p30 +
440 Hz sine, H.264/AAC, made once outside the timings. Default ladder for
1080p H.264 (4 rungs), segment 4 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.media.ffmpeg import find_ffmpeg  # noqa: E402

KEY = "abr_bench_key_0123456789abcdefghijklmnop"


def make_source(path: Path, duration: int) -> Path:
    if path.exists():
        return path
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={duration}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", "-pix_fmt", "yuv420p", "-g", "60",
                    "-c:a", "aac", "-b:a", "128k", str(path)], check=True)
    return path


def run_variant(name: str, source: Path, workers: int, env_extra: dict, segment: float, root: Path) -> dict:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from cli.migrate import upgrade
    from core.config import Settings

    data = root / name
    shutil.rmtree(data, ignore_errors=True)
    env = dict(os.environ, ABR_ENV="test", ABR_DATA_DIR=str(data), ABR_API_KEYS=KEY, ABR_LOG_LEVEL="WARNING",
               **env_extra)
    os.environ.update({k: v for k, v in env.items() if k.startswith("ABR_")})
    settings = Settings()
    upgrade(settings.resolved_database_url)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    procs = [subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--queues", "transcode,default",
                               "--concurrency", "1"], cwd=REPO, env=env, start_new_session=True,
                              stdout=open(data.parent / f"{name}-{i}.log", "wb"), stderr=subprocess.STDOUT)
             for i in range(workers)]
    try:
        time.sleep(3)  # workers up
        with TestClient(create_app(settings)) as client:
            client.headers["Authorization"] = f"Bearer {KEY}"
            with open(source, "rb") as fh:
                r = client.post("/v1/assets", files={"file": (source.name, fh, "video/mp4")},
                                data={"settings": json.dumps({"segment_duration": segment})})
            r.raise_for_status()
            asset_id, started, playable = r.json()["id"], time.monotonic(), None
            while True:
                asset = client.get(f"/v1/assets/{asset_id}").json()
                if playable is None and asset.get("playable"):
                    playable = time.monotonic() - started
                if asset["status"] in ("ready", "errored"):
                    break
                time.sleep(0.25)
            wall = time.monotonic() - started
            if asset["status"] != "ready":
                raise SystemExit(f"{name}: {asset}")
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"variant": name, "workers": workers, "wall_s": round(wall, 1), "playable_s": round(playable or wall, 1),
            "cpu_s": round(cpu, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=600)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--chunk", type=float, default=60)
    parser.add_argument("--segment", type=float, default=4)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="abr-bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    source = make_source(root / f"source-{args.duration}s.mp4", args.duration)
    print(f"source {args.duration} s 1080p30, {os.cpu_count()} CPUs; chunk {args.chunk} s, segment {args.segment} s")
    rows = [run_variant("unchunked-1", source, 1, {"ABR_CHUNK_MIN_SOURCE": "1e9"}, args.segment, root)]
    for n in [int(w) for w in args.workers.split(",")]:
        rows.append(run_variant(f"chunked-{n}", source, n, {"ABR_CHUNK_DURATION": str(args.chunk),
                                                            "ABR_CHUNK_MIN_SOURCE": "0"}, args.segment, root))
    base = rows[0]
    print(f"{'variant':<14}{'wall s':>9}{'playable s':>12}{'x realtime':>12}{'CPU s':>9}{'CPU vs base':>13}")
    for r in rows:
        print(f"{r['variant']:<14}{r['wall_s']:>9}{r['playable_s']:>12}{args.duration / r['wall_s']:>12.2f}"
              f"{r['cpu_s']:>9}{r['cpu_s'] / base['cpu_s']:>13.2f}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
