"""Scale-out benchmark (not run by CI): one long 1080p30 source through 1, 2 and 4 worker processes.

    .venv/bin/python bench/scale.py [--duration 600] [--workers 1,2,4] [--chunk 60] [--segment 4] [--keep DIR]
    .venv/bin/python bench/scale.py --model [--duration 90] [--chunk 30] [--predict-machines 8] [--network-mbps 1000]

--model measures the inputs of bench/scale_model.py on this machine, checks
its prediction against the 1- and 2-worker runs it then makes, and prints
the prediction for more machines on a 10-minute 1080p source:
  audio      the whole source's audio encoded alone (part of setup, scales with duration)
  chunk      chunk 1 of the ladder encoded alone with the pipeline's argv: wall and CPU per source second
  publish    that chunk's segments published from staging to media/ (LocalStorage.publish)
  download   the source copied by LocalStorage.download_to (on another machine: size / --network-mbps)
  fixed      per piece, everything else: fitted from the 1-worker run (its wall minus the above), so
             the 2-worker run is the check (the fit never sees it)

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

from bench.scale_model import Cluster, Costs, chunk_lengths, predict_wall  # noqa: E402
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


def _timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_costs(source: Path, chunk: float, segment: float, root: Path) -> dict:
    """The per-piece inputs of the model, each measured alone on this machine."""
    from fractions import Fraction

    from core.media.encode import EncodeJob, build_encode_argv
    from core.media.ladder import plan_audio, plan_ladder
    from core.storage import LocalStorage

    ladder = plan_ladder(codec="h264", display_width=1920, display_height=1080, frame_rate=Fraction(30))
    ffmpeg = find_ffmpeg()
    out = root / "costs"
    shutil.rmtree(out, ignore_errors=True)
    audio_job = EncodeJob(source, out / "audio", None, plan_audio(2, 48_000), segment, None)
    (out / "audio").mkdir(parents=True)
    audio_wall, _ = _timed(build_encode_argv(ffmpeg, audio_job))
    storage = LocalStorage(out / "storage")
    staged = out / "storage" / "staging" / "c1"
    staged.mkdir(parents=True)
    job = EncodeJob(source, staged, ladder, None, segment, Fraction(30), start=chunk, length=chunk,
                    output_ts_offset=chunk)
    chunk_wall, chunk_cpu = _timed(build_encode_argv(ffmpeg, job))
    t = time.monotonic()
    storage.publish("staging/c1", "media/a")
    publish = time.monotonic() - t
    storage.put_file("sources/s.mp4", source)
    t = time.monotonic()
    storage.download_to("sources/s.mp4", out / "downloaded.mp4")
    download = time.monotonic() - t
    shutil.rmtree(out, ignore_errors=True)
    return {"audio_s": audio_wall, "chunk_wall_s": chunk_wall, "chunk_cpu_s": chunk_cpu, "publish_s": publish,
            "local_download_s": download, "source_bytes": source.stat().st_size}


def model(args, root: Path) -> int:
    source = make_source(root / f"source-{args.duration}s.mp4", args.duration)
    print(f"model: source {args.duration} s 1080p30, chunk {args.chunk} s, {os.cpu_count()} CPUs; "
          f"uptime: {_uptime()}", flush=True)
    m = measure_costs(source, args.chunk, args.segment, root)
    print("measured alone: " + json.dumps({k: round(v, 3) for k, v in m.items()}), flush=True)
    env = {"ABR_CHUNK_DURATION": str(args.chunk), "ABR_CHUNK_MIN_SOURCE": "0"}
    runs = {n: run_variant(f"chunked-{n}", source, n, env, args.segment, root) for n in (1, 2)}
    print(f"runs: {json.dumps(runs)}; uptime: {_uptime()}", flush=True)
    lengths = chunk_lengths(args.duration, args.chunk)
    encode_s_per_s = m["chunk_wall_s"] / args.chunk
    encoding = sum(lengths) * encode_s_per_s
    # Fit the one unknown, the fixed cost per piece, on the 1-worker run (setup: the audio, before chunk 0).
    fixed = (runs[1]["wall_s"] - m["audio_s"] - encoding) / len(lengths)
    costs = Costs(setup_s=m["audio_s"], encode_s_per_s=encode_s_per_s,
                  encode_cores=min(os.cpu_count(), m["chunk_cpu_s"] / m["chunk_wall_s"]),
                  fixed_s=fixed, download_s=0.0, finish_s=0.0)
    print(f"costs: {costs} (publish {m['publish_s']:.3f} s of fixed_s per piece)")
    here = {n: predict_wall(costs, Cluster(1, n, os.cpu_count(), remote_download=False), lengths) for n in (1, 2)}
    for n in (1, 2):
        print(f"check {n} worker(s) on this machine: predicted {here[n]:.1f} s, measured {runs[n]['wall_s']:.1f} s "
              f"({here[n] / runs[n]['wall_s'] - 1:+.1%})" + (" (fitted)" if n == 1 else ""))
    # The 10-minute 1080p source: audio and download scale with duration, the rest per piece as measured.
    big, big_chunk = 600.0, 60.0
    ratio = big / args.duration
    source_bytes = m["source_bytes"] * ratio
    remote = Costs(setup_s=m["audio_s"] * ratio, encode_s_per_s=encode_s_per_s, encode_cores=costs.encode_cores,
                   fixed_s=fixed, download_s=source_bytes * 8 / (args.network_mbps * 1e6), finish_s=0.0)
    if args.idle_cores:
        # Measured on a loaded machine, the encode got a fraction of the cores; on idle machines it
        # would keep `idle_cores` busy: the same CPU seconds, spread over them.
        remote = Costs(setup_s=remote.setup_s, encode_s_per_s=m["chunk_cpu_s"] / args.chunk / args.idle_cores,
                       encode_cores=args.idle_cores, fixed_s=remote.fixed_s, download_s=remote.download_s,
                       finish_s=0.0)
    big_lengths = chunk_lengths(big, big_chunk)
    rows = {}
    for machines in sorted({1, 2, 4, args.predict_machines}):
        cluster = Cluster(machines, 1, os.cpu_count(), remote_download=machines > 1)
        rows[machines] = round(predict_wall(remote, cluster, big_lengths), 1)
        print(f"predicted, 10-minute 1080p, {big_chunk:g} s chunks, {machines} machine(s) like this one "
              f"(1 worker each, {args.network_mbps:g} Mbit/s to storage): {rows[machines]} s "
              f"= {big / rows[machines]:.2f}x realtime")
    print("JSON " + json.dumps({"measured": m, "runs": runs, "check": here, "costs": remote.__dict__,
                                "predicted_600s": rows}))
    return 0


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=600)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--chunk", type=float, default=60)
    parser.add_argument("--segment", type=float, default=4)
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--model", action="store_true", help="measure the model's inputs, check it, predict")
    parser.add_argument("--predict-machines", type=int, default=8)
    parser.add_argument("--network-mbps", type=float, default=1000, help="assumed storage bandwidth per machine")
    parser.add_argument("--idle-cores", type=float, default=0,
                        help="predict for idle machines: the chunk's measured CPU seconds spread over this many cores")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="abr-bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    if args.model:
        try:
            return model(args, root)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
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
