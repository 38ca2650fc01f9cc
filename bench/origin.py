"""Origin benchmark (not run by CI): the origin vs nginx serving the same files from disk.

    .venv/bin/python bench/origin.py [--server granian|uvicorn] [--workers 2] [--duration 5]
                                     [--connections 64] [--no-fast-path]

Builds a throwaway data dir with one asset (the 5-track sample presentation,
~680 KB segments), starts the origin exactly as production does
(`abr api --server … --workers N`) and an nginx that serves the asset's media
directory straight from disk (2 workers, sendfile), then runs `wrk` (Debian
package `wrk`) on loopback against both: a segment GET, and manifest GETs at
200 connections. Prints req/s, MB/s, p50/p99 and origin/nginx ratios.
`--no-fast-path` sets ABR_ORIGIN_FAST_PATH=0: every request goes through the
FastAPI routes (api/origin_fastpath.py says what the fast path takes);
ABR_ORIGIN_MEMORY_CACHE_MB=0 in the environment turns hot segments off
(segments then come from the page cache through a read per request).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.migrate import upgrade  # noqa: E402
from core.db.engine import make_engine  # noqa: E402
from core.storage import open_storage  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.helpers import settings_from  # noqa: E402
from tests.origin.fabricate import fabricate  # noqa: E402
from tests.origin.live import find_nginx, stop, wait_for_port  # noqa: E402

SEGMENT_BYTES = 680_000
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
SIZES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def wrk(url: str, *, connections: int, duration: int, threads: int = 2) -> dict[str, float]:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M).groups()
        return float(value) * UNITS[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", out).groups()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "mbps": float(value) * SIZES[unit] / 1e6, "p50": latency("50"), "p99": latency("99"),
            "errors": int(errors.group(1)) if errors else 0}


def start_nginx(prefix: Path, media_dir: Path, playback_id: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    (prefix / "tmp").mkdir(parents=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{user}daemon off;
worker_processes 2;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on; tcp_nopush on; keepalive_requests 100000;
    client_body_temp_path {prefix / 'tmp'}; proxy_temp_path {prefix / 'tmp'};
    fastcgi_temp_path {prefix / 'tmp'}; uwsgi_temp_path {prefix / 'tmp'}; scgi_temp_path {prefix / 'tmp'};
    types {{ video/mp4 m4s mp4; application/vnd.apple.mpegurl m3u8; }}
    server {{
        listen 127.0.0.1:{port};
        location /play/{playback_id}/ {{ alias {media_dir}/; add_header Cache-Control "public, max-age=31536000, immutable"; }}
    }}
}}
""")
    proc = subprocess.Popen([find_nginx(), "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)])
    wait_for_port(port, proc=proc)
    return proc, f"http://127.0.0.1:{port}"


def start_origin(env: dict[str, str], workers: int, server: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    argv = [sys.executable, "-m", "cli.main", "api", "--server", server, "--workers", str(workers),
            "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)
    wait_for_port(port, proc=proc, timeout=30)
    time.sleep(1.0)  # let every worker process finish starting
    return proc, f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server", choices=["granian", "uvicorn"], default="granian",
                        help="`abr api --server` (default granian, as abr api)")
    parser.add_argument("--no-fast-path", action="store_true", help="ABR_ORIGIN_FAST_PATH=0: FastAPI routes only")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="abr-bench-"))
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(work / "data"), "ABR_LOG_LEVEL": "WARNING",
           "ABR_ORIGIN_FAST_PATH": "0" if args.no_fast_path else "1"}
    settings = settings_from(env)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    storage = open_storage(settings.resolved_storage_url)
    made = fabricate(engine, storage, segment_size=SEGMENT_BYTES)
    engine.dispose()
    media_dir = Path(str(storage.local_path(f"media/{made.asset_id}/presentation.json"))).parent
    origin, origin_url = start_origin(env, args.workers, args.server)
    nginx, nginx_url = start_nginx(work / "nginx", media_dir, made.public_id)
    try:
        pid = made.public_id
        cases = [
            ("segment 680 KB", f"/play/{pid}/h264-720p/00002.m4s", args.connections),
            ("master.m3u8", f"/play/{pid}/master.m3u8", 200),
            ("media playlist", f"/play/{pid}/h264-720p/index.m3u8", 200),
        ]
        print(f"origin: abr api --server {args.server} --workers {args.workers}, fast path "
              f"{'off' if args.no_fast_path else 'on'}, hot segments "
              f"{os.environ.get('ABR_ORIGIN_MEMORY_CACHE_MB', '64')} MB; nginx: 2 workers, sendfile; "
              f"wrk -t2 -d{args.duration}s on {os.cpu_count()} cores")
        print(f"{'case':<16} {'server':<7} {'conns':>5} {'req/s':>10} {'MB/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non2xx':>6}")
        for name, path, conns in cases:
            results = {}
            for server, base in (("origin", origin_url), ("nginx", nginx_url)):
                if server == "nginx" and path.endswith("master.m3u8"):
                    continue  # nginx has no renderer; compare the static media playlist instead
                target = base + path
                if server == "nginx" and path.endswith("index.m3u8"):
                    (media_dir / "h264-720p" / "index.m3u8").write_bytes(
                        subprocess.run(["curl", "-s", origin_url + path], capture_output=True).stdout)
                wrk(target, connections=conns, duration=1)  # warm up
                r = results[server] = wrk(target, connections=conns, duration=args.duration)
                print(f"{name:<16} {server:<7} {conns:>5} {r['rps']:>10.0f} {r['mbps']:>9.1f} "
                      f"{r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>6}")
            if "nginx" in results:
                o, n = results["origin"], results["nginx"]
                print(f"{'':<16} {'ratio':<7} {'':>5} {o['rps'] / n['rps']:>10.1%} {o['mbps'] / n['mbps']:>9.1%}")
    finally:
        stop(origin)
        stop(nginx)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
