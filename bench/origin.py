"""Origin benchmark (not run by CI): the origin vs nginx on a realistic working set, same request list.

    .venv/bin/python bench/origin.py [--assets 60] [--segments 20] [--requests 12000]
                                     [--connections 500] [--workers 2] [--runs 3]
                                     [--servers nginx,granian,uvicorn] [--data DIR] [--keep]
                                     [--client-cpu 0] [--server-cpus 1]

The working set: `--assets` assets (default 60), each a 4 s-segment CMAF
ladder — h264-720p (~2.4 Mb/s), h264-480p (~1.2 Mb/s), h264-240p
(~0.4 Mb/s) and AAC audio (128 kb/s) — `--segments` segments long, with
real DB rows (asset, a public and a signed playback id) and a
presentation.json the origin renders its manifests from. Segment files are
incompressible random bytes of the sizes such a ladder produces (±30 %), each
file distinct (no hard links: every file has its own page-cache pages); the
origin never parses segment bytes, so encoding each asset would only cost
time. Default size: 60 × 20 × 4 tracks ≈ 2.5 GB on disk, more than every
cache in the origin process (64 MB hot segments per worker).

The request list (seeded, so every server gets the same one): per 100
requests ~90 segments (init segments, media segments by a Zipf popularity
over assets (s=1.1) and over segment positions (s=0.8: viewers drop off),
~10 % of video segments as Range requests), ~8 media playlists and ~2
multivariant playlists / MPDs, ~3 % 404s (segment numbers past the end, and
unknown playback ids). Half the assets (every other one by popularity) are
played through their signed playback id with one of 8 viewer tokens (JWT)
in the query; nginx ignores the query.

Each run starts the server fresh (no warm process caches), then — as root —
`sync; echo 3 > /proc/sys/vm/drop_caches` so the files come from the disk
(this drops the whole machine's page cache; without root the run says it
is warm), then replays the list once over `--connections` keep-alive
connections with `bench/replay.c` (built here with cc; it times every
request, so latency is reported per class) pinned with taskset to
`--client-cpu`, the server pinned to `--server-cpus`. The servers, each
with `--workers` processes: nginx (sendfile, tcp_nopush, open_file_cache,
manifests pre-rendered to files, gzip_static), `abr api` (Granian, the default) and `abr
api --server uvicorn`, and `abr api --front nginx` (`front`: nginx sends local VOD
segments itself through the per-id links the API makes and its Perl token check,
the API behind it answers the rest; `--workers` nginx workers and
`--front-api-workers` API processes, all pinned like the others). Reported per server, median of `--runs` runs: req/s,
MB/s, p50/p99 per class, CPU seconds of the server's processes per GB
served, and RSS (sum over its processes, sampled every 0.2 s: at the start,
the peak over the run's first half and over the whole run — flat memory is
a second half that adds little), next to
`uptime`'s load average — the machine may be shared.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cli.migrate import upgrade  # noqa: E402
from core.db.engine import make_engine  # noqa: E402
from core.layout import media_key, presentation_key  # noqa: E402
from core.media.manifests import ManifestFilter  # noqa: E402
from core.media.model import Presentation, Rendition, Segment, Track  # noqa: E402
from core.origin.paths import Kind, Target  # noqa: E402
from core.origin.service import render_manifest  # noqa: E402
from core.services.playback import SigningKeys, sign_token  # noqa: E402
from core.storage import open_storage  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.helpers import settings_from  # noqa: E402
from tests.origin.live import find_nginx, stop, wait_for_port  # noqa: E402

SEGMENT_SECONDS = 4
# (rendition id, codec, codecs, width, height, bits/s, share of segment requests)
LADDER = [("h264-720p", "h264", "avc1.64001f", 1280, 720, 2_400_000, 0.33),
          ("h264-480p", "h264", "avc1.64001e", 854, 480, 1_200_000, 0.17),
          ("h264-240p", "h264", "avc1.640015", 426, 240, 400_000, 0.06),
          ("audio", "aac", "mp4a.40.2", 0, 0, 128_000, 0.44)]  # a player fetches audio beside its video
TOKENS_PER_ASSET = 8
CLASSES = ["segment", "range", "media playlist", "master/mpd", "404"]
SIGNING_KEY = "bench-origin-signing-key-of-32-bytes-or-more"


# -- the working set ----------------------------------------------------------------------------


def presentation_for(sizes: dict[str, list[int]]) -> Presentation:
    tracks = []
    for rid, codec, codecs, width, height, bitrate, _ in LADDER:
        timescale = 48_000 if codec == "aac" else 90_000
        segments = [Segment(number=n, start=(n - 1) * SEGMENT_SECONDS * timescale,
                            duration=SEGMENT_SECONDS * timescale, size=size)
                    for n, size in enumerate(sizes[rid], start=1)]
        rendition = Rendition(rid, codec, width=width, height=height, bitrate=bitrate,
                              **({"channels": 2, "sample_rate": 48_000} if codec == "aac"
                                 else {"frame_rate": Fraction(30)}))
        tracks.append(Track(rendition, codecs, "mp4", timescale, segments, complete=True))
    return Presentation(segment_duration=float(SEGMENT_SECONDS), complete=True, tracks=tracks)


def build_working_set(settings, *, assets: int, segments: int, seed: int) -> list[dict]:
    """Write `assets` assets (DB rows, presentation.json, segment files); returns their description."""
    from sqlmodel import Session

    from core.db.models import Asset, PlaybackId, new_id

    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    storage = open_storage(settings.resolved_storage_url)
    keys = SigningKeys.from_settings(settings.signing_key)
    rng = random.Random(seed)
    pool = rng.randbytes(8 * 1024 * 1024)  # sliced at a random offset per file: distinct, incompressible
    made = []
    for _ in range(assets):
        with Session(engine) as session:
            asset = Asset(status="ready", playable=True)
            session.add(asset)
            session.flush()
            public = PlaybackId(id=new_id("", 24), asset_id=asset.id, policy="public")
            signed = PlaybackId(id=new_id("", 24), asset_id=asset.id, policy="signed")
            session.add_all([public, signed])
            session.commit()
            ids = (asset.id, public.id, signed.id)
        sizes = {rid: [int(bitrate * SEGMENT_SECONDS / 8 * rng.uniform(0.7, 1.3)) for _ in range(segments)]
                 for rid, _, _, _, _, bitrate, _ in LADDER}
        presentation = presentation_for(sizes)
        for rid, per_segment in sizes.items():
            names = [(f"{rid}/init.mp4", rng.randint(700, 1500))]
            names += [(f"{rid}/{n:05d}.m4s", size) for n, size in enumerate(per_segment, start=1)]
            for relative, size in names:
                offset = rng.randrange(len(pool) - size)
                storage.put_bytes(media_key(ids[0], relative), pool[offset : offset + size])
        storage.put_bytes(presentation_key(ids[0]), json.dumps(presentation.to_dict()).encode())
        expires = int(time.time()) + 7 * 86400
        made.append({"asset": ids[0], "public": ids[1], "signed": ids[2], "sizes": sizes,
                     "tokens": [sign_token(ids[2], keys=keys, expires_at=expires - i) for i in range(TOKENS_PER_ASSET)],
                     "manifests": _manifests(presentation)})
    engine.dispose()
    return made


def _manifests(presentation: Presentation) -> dict[str, str]:
    """The public manifests as files for nginx (it cannot render them): relative path → text."""
    moment = __import__("datetime").datetime.now(__import__("datetime").UTC)
    out = {"master.m3u8": Target(Kind.MASTER), "manifest.mpd": Target(Kind.MPD)}
    out |= {f"{rid}/index.m3u8": Target(Kind.MEDIA_PLAYLIST, rendition=rid) for rid, *_ in LADDER}
    return {path: render_manifest(presentation, target, ManifestFilter(), "", moment).body.decode()
            for path, target in out.items()}


# -- the request list ---------------------------------------------------------------------------


def zipf_weights(n: int, s: float) -> list[float]:
    return [1 / (rank ** s) for rank in range(1, n + 1)]


def request_list(assets: list[dict], *, count: int, seed: int) -> list[tuple[str, str, str, int | None]]:
    """(class, path with query, Range header or "-", expected body bytes or None) × count."""
    rng = random.Random(seed)
    segments = len(assets[0]["sizes"][LADDER[0][0]])
    by_asset = zipf_weights(len(assets), 1.1)
    by_position = zipf_weights(segments, 0.8)
    rids = [r[0] for r in LADDER]
    shares = [r[6] for r in LADDER]
    out = []
    for _ in range(count):
        rank = rng.choices(range(len(assets)), by_asset)[0]
        asset = assets[rank]
        signed = rank % 2 == 1
        pid = asset["signed"] if signed else asset["public"]
        query = f"?token={rng.choice(asset['tokens'])}" if signed else ""
        roll = rng.random()
        rid = rng.choices(rids, shares)[0]
        if roll < 0.015:
            out.append(("404", f"/play/{''.join(rng.choices('abcdefghjk0123456789', k=24))}/{rid}/00001.m4s", "-",
                        None))
        elif roll < 0.03:
            out.append(("404", f"/play/{pid}/{rid}/{segments + rng.randint(1, 50):05d}.m4s{query}", "-", None))
        elif roll < 0.05:
            name = rng.choice(["master.m3u8", "manifest.mpd"])
            out.append(("master/mpd", f"/play/{pid}/{name}{query}", "-", None))
        elif roll < 0.13:
            out.append(("media playlist", f"/play/{pid}/{rid}/index.m3u8{query}", "-", None))
        elif roll < 0.15:
            out.append(("segment", f"/play/{pid}/{rid}/init.mp4{query}", "-", None))
        else:
            number = rng.choices(range(1, segments + 1), by_position)[0]
            size = asset["sizes"][rid][number - 1]
            path = f"/play/{pid}/{rid}/{number:05d}.m4s{query}"
            if rid != "audio" and rng.random() < 0.1:  # a player (or CDN) asking part of a segment
                start = rng.choice([0, rng.randrange(size // 2)])
                length = min(size - start, rng.choice([65_536, 262_144, 524_288]))
                out.append(("range", path, f"bytes={start}-{start + length - 1}", length))
            else:
                out.append(("segment", path, "-", size))
    return out


# -- servers ------------------------------------------------------------------------------------


def start_nginx(prefix: Path, media_root: Path, assets: list[dict], workers: int, cpus: str):
    port = free_port()
    shutil.rmtree(prefix, ignore_errors=True)
    (prefix / "tmp").mkdir(parents=True)
    www = prefix / "www"
    for asset in assets:
        for pid in (asset["public"], asset["signed"]):
            for relative, text in asset["manifests"].items():
                (www / "play" / pid / relative).parent.mkdir(parents=True, exist_ok=True)
                (www / "play" / pid / relative).write_text(text)
                (www / "play" / pid / (relative + ".gz")).write_bytes(gzip.compress(text.encode()))
    ids = "\n".join(f"        {a[k]} {a['asset']};" for a in assets for k in ("public", "signed"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{user}daemon off;
worker_processes {workers};
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} error;
events {{ worker_connections 4096; }}
worker_rlimit_nofile 8192;
http {{
    access_log off;
    sendfile on; tcp_nopush on; keepalive_requests 1000000;
    open_file_cache max=20000 inactive=60s; open_file_cache_valid 60s; open_file_cache_errors on;
    client_body_temp_path {prefix / 'tmp'}; proxy_temp_path {prefix / 'tmp'};
    fastcgi_temp_path {prefix / 'tmp'}; uwsgi_temp_path {prefix / 'tmp'}; scgi_temp_path {prefix / 'tmp'};
    types {{ video/mp4 m4s mp4; application/vnd.apple.mpegurl m3u8; application/dash+xml mpd; }}
    map $playback $asset {{
        default "-";
{ids}
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location ~ ^/play/(?<playback>[a-z0-9]+)/(?<rest>[a-z0-9-]+/[a-z0-9]+\\.(m4s|mp4))$ {{
            alias {media_root}/$asset/$rest;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
        location /play/ {{ root {www}; gzip_static on; }}  # pre-compressed: nginx's best case
    }}
}}
""")
    proc = subprocess.Popen(["taskset", "-c", cpus, find_nginx(), "-p", str(prefix), "-e",
                             str(prefix / "error.log"), "-c", str(conf)])
    wait_for_port(port, proc=proc)
    return proc, port


FRONTS = {"front": "granian", "front-uvicorn": "uvicorn"}  # `abr api --front nginx`, the API server behind it


def start_origin(env: dict[str, str], workers: int, server: str, cpus: str, front_api_workers: int = 1):
    """`abr api` (`server` granian or uvicorn), or `abr api --front nginx` (`server` a key of FRONTS).

    The front: `workers` nginx worker processes and `front_api_workers` API processes behind them,
    every one of them (nginx and the API) pinned to `cpus` like the other servers' processes.
    """
    port = free_port()
    if server in FRONTS:
        env = {**env, "ABR_FRONT_WORKERS": str(workers)}
        argv = ["api", "--front", "nginx", "--server", FRONTS[server], "--workers", str(front_api_workers)]
        # abr api (Granian's main process, or uvicorn's own when one process), nginx's master and workers
        expected = 1 + 1 + workers + (front_api_workers if FRONTS[server] == "granian" or front_api_workers > 1 else 0)
    else:
        argv = ["api", "--server", server, "--workers", str(workers)]
        expected = workers + 1
    argv = ["taskset", "-c", cpus, sys.executable, "-m", "cli.main", *argv, "--host", "127.0.0.1",
            "--port", str(port)]
    proc = subprocess.Popen(argv, env={**os.environ, **env}, cwd=ROOT)
    wait_for_port(port, proc=proc, timeout=60)
    deadline = time.monotonic() + 30  # every worker process up (each imports the app)
    while len(tree(proc.pid)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # the workers finish importing after they appear
    return proc, port


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def drop_page_cache() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


# -- one run ------------------------------------------------------------------------------------


def replay(binary: Path, port: int, connections: int, requests: Path, out: Path, cpu: str, server_pid: int,
           rate: float = 0) -> dict:
    pids = tree(server_pid)
    rss: list[int] = [rss_bytes(pids)]
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.2):
            rss.append(rss_bytes(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    cpu0 = cpu_seconds(pids)
    sampler.start()
    done = subprocess.run(["taskset", "-c", cpu, str(binary), "127.0.0.1", str(port), str(connections),
                           str(requests), str(out)] + ([str(rate)] if rate else []), capture_output=True, text=True)
    stop_sampling.set()
    sampler.join()
    cpu1 = cpu_seconds(pids)
    if done.returncode != 0:
        raise RuntimeError(f"replay failed ({done.returncode}): {done.stderr.strip()}")
    lines = out.read_text().splitlines()
    wall = int(lines[-1].split()[1]) / 1e6
    answers = [tuple(int(x) for x in line.split()) for line in lines[:-1]]
    # Flat memory: the peak over the run's first half against the whole run's. A cache still filling (or a
    # leak) keeps growing in the second half; a process whose memory has levelled off does not.
    return {"wall": wall, "answers": answers, "cpu": cpu1 - cpu0, "rss_start": rss[0], "rss_peak": max(rss),
            "rss_half": max(rss[: max(1, len(rss) // 2)])}


def summarise(listed, run: dict) -> dict:
    listed = listed[: len(run["answers"])]
    wall = run["wall"]
    total = sum(bytes_ for _, bytes_, _ in run["answers"])
    wrong = 0
    per_class: dict[str, list[float]] = {c: [] for c in CLASSES}
    for (cls, _, _, expected), (status, bytes_, us) in zip(listed, run["answers"], strict=True):
        per_class[cls].append(us / 1000)
        want = {"404": 404, "range": 206}.get(cls, 200)
        if status != want or (expected is not None and bytes_ != expected):
            wrong += 1
    out = {"rps": len(listed) / wall, "mbps": total / wall / 1e6, "cpu_per_gb": run["cpu"] / (total / 1e9),
           "rss_start": run["rss_start"] / 1e6, "rss_half": run["rss_half"] / 1e6, "rss_peak": run["rss_peak"] / 1e6,
           "wrong": wrong}
    for cls, times in per_class.items():
        times.sort()
        out[f"{cls} p50"] = times[len(times) // 2] if times else 0.0
        out[f"{cls} p99"] = times[min(len(times) - 1, int(len(times) * 0.99))] if times else 0.0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=60)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--requests", type=int, default=12000)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default="nginx,granian,uvicorn,front",
                        help="nginx, granian, uvicorn, front (abr api --front nginx), front-uvicorn")
    parser.add_argument("--front-api-workers", type=int, default=1,
                        help="API processes behind the front (its nginx has --workers worker processes)")
    parser.add_argument("--rate", type=float, default=300.0, help="paced phase: requests/s")
    parser.add_argument("--paced-requests", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--data", type=Path, help="keep the working set here and reuse it (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="do not delete the working set afterwards")
    parser.add_argument("--client-cpu", default="0")
    parser.add_argument("--server-cpus", default="1")
    args = parser.parse_args()
    if not shutil.which("cc") or not shutil.which("taskset"):
        print("needs cc and taskset", file=sys.stderr)
        return 2
    work = args.data or Path(tempfile.mkdtemp(prefix="abr-bench-origin-"))
    work.mkdir(parents=True, exist_ok=True)
    binary = work / "replay"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(ROOT / "bench" / "replay.c")], check=True)
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(work / "data"), "ABR_LOG_LEVEL": "WARNING",
           "ABR_SIGNING_KEY": SIGNING_KEY}
    settings = settings_from(env)
    described = work / "working-set.json"
    wanted = {"assets": args.assets, "segments": args.segments, "seed": args.seed}
    if described.exists() and json.loads(described.read_text())["params"] == wanted:
        assets = json.loads(described.read_text())["assets"]
    else:
        shutil.rmtree(work / "data", ignore_errors=True)
        started = time.monotonic()
        assets = build_working_set(settings, assets=args.assets, segments=args.segments, seed=args.seed)
        described.write_text(json.dumps({"params": wanted, "assets": assets}))
        print(f"working set written in {time.monotonic() - started:.0f} s")
    media_root = Path(str(open_storage(settings.resolved_storage_url).local_path("media/x"))).parent
    on_disk = sum(f.stat().st_size for f in media_root.rglob("*") if f.is_file())
    listed = request_list(assets, count=args.requests, seed=args.seed)
    requests = work / "requests.tsv"
    requests.write_text("".join(f"{path}\t{rng}\n" for _, path, rng, _ in listed))
    counts = {c: sum(1 for x in listed if x[0] == c) for c in CLASSES}
    print(f"working set: {len(assets)} assets, {on_disk / 1e9:.2f} GB on disk; {len(listed)} requests: "
          + ", ".join(f"{c} {n}" for c, n in counts.items())
          + f"; {sum(1 for x in listed if '?token=' in x[1])} signed")
    print(f"{args.workers} server processes pinned to CPU {args.server_cpus}, replay on CPU {args.client_cpu}, "
          f"{args.connections} connections, {os.cpu_count()} CPUs on this machine")
    paced_file = work / "requests-paced.tsv"
    paced_list = listed[: args.paced_requests]
    paced_file.write_text("".join(f"{path}\t{rng}\n" for _, path, rng, _ in paced_list))
    results: dict[str, list[dict]] = {}
    paced: dict[str, list[dict]] = {}
    servers = args.servers.split(",")
    cold = True
    for run in range(args.runs):
        for server in servers:
            if server == "nginx":
                proc, port = start_nginx(work / "nginx", media_root, assets, args.workers, args.server_cpus)
            else:
                proc, port = start_origin(env, args.workers, server, args.server_cpus, args.front_api_workers)
            try:
                cold = drop_page_cache() and cold
                load = os.getloadavg()[0]
                raw = replay(binary, port, args.connections, requests, work / f"out-{server}.txt",
                             args.client_cpu, proc.pid)
                cold = drop_page_cache() and cold
                raw_paced = replay(binary, port, args.connections, paced_file, work / f"paced-{server}.txt",
                                   args.client_cpu, proc.pid, rate=args.rate)
            finally:
                stop(proc)
            r = summarise(listed, raw)
            r["load"] = (load + os.getloadavg()[0]) / 2
            r["rss_peak"] = max(r["rss_peak"], raw_paced["rss_peak"] / 1e6)
            results.setdefault(server, []).append(r)
            p = summarise(paced_list, raw_paced)
            paced.setdefault(server, []).append(p)
            print(f"run {run + 1} {server:<8} {r['rps']:8.0f} req/s {r['mbps']:8.1f} MB/s  "
                  f"{r['cpu_per_gb']:5.2f} CPU s/GB  paced: segment p99 {p['segment p99']:7.1f} ms, "
                  f"playlist p99 {p['media playlist p99']:6.1f} ms ({p['rps']:.0f} req/s)  "
                  f"wrong {r['wrong'] + p['wrong']}  load {r['load']:.1f}", flush=True)
    state = "cold" if cold else "WARM (page cache not dropped: not root)"
    med = {s: {k: statistics.median(r[k] for r in results[s]) for k in results[s][0]} for s in servers}
    pmed = {s: {k: statistics.median(r[k] for r in paced[s]) for k in paced[s][0]} for s in servers}
    print(f"\nsaturated: {len(listed)} requests over {args.connections} connections as fast as served; median of "
          f"{args.runs} {state} runs; CPU s of the server's processes per GB served; RSS MB (sum of its processes)")
    print(f"{'':<22}" + "".join(f"{s:>10}" for s in servers))
    for k in ["rps", "mbps", "cpu_per_gb", "rss_start", "rss_half", "rss_peak", "segment p50", "segment p99", "wrong",
              "load"]:
        print(f"{k:<22}" + "".join(f"{med[s][k]:>10.1f}" for s in servers))
    print(f"\npaced: the first {len(paced_list)} requests at {args.rate:.0f} req/s over {args.connections} connections "
          f"(latency from when each was due, ms); median of {args.runs} {state} runs")
    print(f"{'':<22}" + "".join(f"{s:>10}" for s in servers))
    for k in ["rps", "mbps"] + [f"{c} {q}" for c in CLASSES for q in ("p50", "p99")] + ["wrong"]:
        print(f"{k:<22}" + "".join(f"{pmed[s][k]:>10.1f}" for s in servers))
    if "nginx" in med:
        for s in servers:
            if s != "nginx":
                print(f"{s} / nginx, saturated: req/s {med[s]['rps'] / med['nginx']['rps']:.2f}, "
                      f"MB/s {med[s]['mbps'] / med['nginx']['mbps']:.2f}, "
                      f"CPU per GB {med[s]['cpu_per_gb'] / med['nginx']['cpu_per_gb']:.1f}x")
    if not args.keep and args.data is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
