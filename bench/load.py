"""Load test (not run by CI): uploads, API reads and playback at once against a real `abr api` + `abr worker`.

    .venv/bin/python bench/load.py [--duration 180] [--readers 4] [--players 4] [--uploads-per-minute 4]
                                   [--services] [--json out.json]

Starts, on loopback only, `abr api` (uvicorn, one process) and one `abr worker`
on the embedded defaults (SQLite database and broker, local storage), or on
the machine's PostgreSQL and Redis with `--services` (a throwaway database
and Redis db 14). Seeds one ready asset, then runs three classes of traffic
at once with an asyncio/httpx generator until `--duration` is over:

- upload:   multipart POST /v1/assets of a 3 s 320x240 clip, a few per minute;
            every upload must reach `ready` before the run ends;
- api:      GET /v1/assets and GET /v1/assets/{id} (ids of what exists);
- playback: master.m3u8, a media playlist, its init and a media segment.

Bounded in time and in count (`--max-requests`), it stops by itself and
stops what it started. Prints requests, errors (non-2xx/304 or transport
errors; there must be none), req/s and p50/p95/p99 per class. The API rate
limit is off (ABR_RATE_LIMIT=0): this measures the server, not the limiter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.dev import stop_groups
from cli.migrate import upgrade
from tests.conftest import free_port
from tests.helpers import TEST_KEY, settings_from
from tests.media_fixtures import make_clip

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CLASSES = ("upload", "api", "playback")


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CLASSES})
    errors: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CLASSES})

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(len(v) for v in self.errors.values())

    def record(self, kind: str, started: float, response: httpx.Response | None, error: str | None = None) -> None:
        if response is not None and (response.is_success or response.status_code == 304):
            self.latencies[kind].append(time.perf_counter() - started)
        else:
            detail = error or f"{response.status_code} {response.request.method} {response.request.url.path}"
            self.errors[kind].append(detail)

    def report(self, elapsed: float) -> dict:
        out = {}
        for kind in CLASSES:
            lat = sorted(self.latencies[kind])
            n = len(lat) + len(self.errors[kind])

            def pct(p: float, lat: list[float] = lat) -> float:
                return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0

            out[kind] = {"requests": n, "errors": len(self.errors[kind]), "rps": round(n / elapsed, 1),
                         "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
                         "error_samples": self.errors[kind][:5]}
        return out


# -- the servers ----------------------------------------------------------------------------------

def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    stop_groups([proc], grace=15)


def _services_env() -> tuple[dict[str, str], str]:
    import psycopg
    import redis

    name = f"abr_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url("redis://127.0.0.1:6379/14").flushdb()
    return {"ABR_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            "ABR_BROKER_URL": "redis://127.0.0.1:6379/14"}, name


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _wait_healthy(client: httpx.AsyncClient, api: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError("the API exited while starting")
        try:
            if (await client.get("/healthz", timeout=1)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not become healthy")


# -- the traffic -----------------------------------------------------------------------------------

async def _upload(client: httpx.AsyncClient, clip: Path) -> httpx.Response:
    return await client.post("/v1/assets", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
                             data={"settings": json.dumps({"segment_duration": 1})}, headers=AUTH, timeout=60)


async def _wait_ready(client: httpx.AsyncClient, asset_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        asset = (await client.get(f"/v1/assets/{asset_id}", headers=AUTH)).json()
        if asset["status"] in ("ready", "errored"):
            return asset
        await asyncio.sleep(0.5)
    return asset


async def _playback_urls(client: httpx.AsyncClient, asset: dict) -> list[str]:
    """Every URL a player fetches for the seed asset: master, media playlists, init and media segments."""
    master = f"/play/{asset['playback_ids'][0]['id']}/master.m3u8"
    text = (await client.get(master)).text
    base = master.rsplit("/", 1)[0]
    urls = [master]
    for uri in re.findall(r'URI="([^"]+)"', text) + [ln for ln in text.splitlines() if ln and not ln.startswith("#")]:
        playlist = uri if uri.startswith("/") else f"{base}/{uri}"
        urls.append(playlist)
        body = (await client.get(playlist)).text
        pbase = playlist.rsplit("/", 1)[0]
        for ref in re.findall(r'#EXT-X-MAP:URI="([^"]+)"', body) + [
                ln for ln in body.splitlines() if ln and not ln.startswith("#")]:
            urls.append(ref if ref.startswith("/") else f"{pbase}/{ref}")
    return urls


async def _timed(stats: Stats, kind: str, coro) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await coro
    except httpx.HTTPError as exc:
        stats.record(kind, started, None, f"{type(exc).__name__}: {exc}")
        return None
    stats.record(kind, started, response)
    return response


async def run_load(args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="abr-load-"))
    env = dict(os.environ, ABR_ENV="test", ABR_DATA_DIR=str(root / "data"), ABR_API_KEYS=TEST_KEY,
               ABR_RATE_LIMIT="0", ABR_HOST="127.0.0.1", ABR_PORT=str(free_port()), ABR_LOG_LEVEL="WARNING")
    dropdb = None
    if args.services:
        extra, dropdb = _services_env()
        env.update(extra)
    upgrade(settings_from(env).resolved_database_url)
    clip = make_clip(root / "clip.mp4", duration=3, width=320, height=240)
    api = _spawn(["api"], env, root / "api.log")
    worker = _spawn(["worker", "--queues", "transcode,default", "--concurrency", "1"], env, root / "worker.log")
    stats, uploaded = Stats(), []
    base_url = f"http://127.0.0.1:{env['ABR_PORT']}"
    limits = httpx.Limits(max_connections=args.readers + args.players + 4)
    try:
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
            await _wait_healthy(client, api)
            seed = await _wait_ready(client, (await _upload(client, clip)).json()["id"], timeout=120)
            if seed["status"] != "ready":
                raise RuntimeError(f"the seed asset did not become ready: {seed.get('error')}")
            urls = await _playback_urls(client, seed)
            known = [seed["id"]]
            deadline = time.monotonic() + args.duration
            started = time.monotonic()

            def going() -> bool:
                return time.monotonic() < deadline and stats.total < args.max_requests

            async def uploader() -> None:
                interval = 60.0 / args.uploads_per_minute
                while going():
                    r = await _timed(stats, "upload", _upload(client, clip))
                    if r is not None and r.status_code == 201:
                        uploaded.append(r.json()["id"])
                        known.append(r.json()["id"])
                    await asyncio.sleep(max(0.0, min(interval, deadline - time.monotonic())))

            async def reader() -> None:
                while going():
                    if random.random() < 0.3:
                        await _timed(stats, "api", client.get("/v1/assets", params={"limit": 25}, headers=AUTH))
                    else:
                        await _timed(stats, "api", client.get(f"/v1/assets/{random.choice(known)}", headers=AUTH))

            async def player() -> None:
                while going():
                    for url in (urls[0], random.choice(urls[1:]), random.choice(urls[1:])):
                        await _timed(stats, "playback", client.get(url))

            await asyncio.gather(uploader(), *(reader() for _ in range(args.readers)),
                                 *(player() for _ in range(args.players)))
            elapsed = time.monotonic() - started
            # Every upload of the run must be processed: none lost, none stuck.
            finals = [await _wait_ready(client, a, timeout=args.drain) for a in uploaded]
            not_ready = [f"{a['id']}: {a['status']} {a.get('error')}" for a in finals if a["status"] != "ready"]
    finally:
        _stop(worker)
        _stop(api)
        if dropdb:
            _drop_database(dropdb)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = {"duration_s": round(elapsed, 1), "backend": "postgres+redis" if args.services else "embedded",
              "classes": stats.report(elapsed), "uploads": len(uploaded), "uploads_not_ready": not_ready}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of load (default 180)")
    parser.add_argument("--readers", type=int, default=4, help="concurrent API readers")
    parser.add_argument("--players", type=int, default=4, help="concurrent players")
    parser.add_argument("--uploads-per-minute", type=float, default=4)
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="stop after this many requests")
    parser.add_argument("--drain", type=float, default=180, help="seconds to wait for uploads to finish at the end")
    parser.add_argument("--services", action="store_true", help="PostgreSQL + Redis on 127.0.0.1 instead of SQLite")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = asyncio.run(run_load(args))
    print(f"{report['backend']}: {report['duration_s']} s, {report['uploads']} uploads "
          f"({len(report['uploads_not_ready'])} not ready)")
    print(f"{'class':<10}{'requests':>10}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for kind, row in report["classes"].items():
        print(f"{kind:<10}{row['requests']:>10}{row['errors']:>8}{row['rps']:>9}{row['p50_ms']:>9}"
              f"{row['p95_ms']:>9}{row['p99_ms']:>9}")
        for sample in row["error_samples"]:
            print(f"    error: {sample}")
    for line in report["uploads_not_ready"]:
        print(f"    not ready: {line}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    failed = any(r["errors"] for r in report["classes"].values()) or report["uploads_not_ready"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
