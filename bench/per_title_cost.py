"""What the per-title analysis costs on the chunked path, end to end (issue #17; not run by CI).

    .venv/bin/python bench/per_title_cost.py [--source footage-1080p-600] [--ladders auto,fixed]
                                             [--cache-dir /tmp/flow_cache] [--repeat 1] [--timeout 7200]
                                             [--parallel] [--progress /tmp/pt-cost]

Target (issue #17): the analysis adds <= 25 % to the encode's wall time on a
10-minute 1080p source, and `playable` still arrives under 3 s after the
upload (the analysis must not delay the first segments).

Per upload setting in --ladders (each on a fresh stack of bench/playable.py's
`start_stack`: the embedded defaults, API and worker as separate processes,
worker concurrency 1), uploads the source once (playable.py's `measure_once`,
settings {"ladder": X}) and waits until `ready`. `auto` is what a chunked
source gets without a setting (ABR_AUTO_LADDER_CHUNKED): chunk 0 and the
audio start at once on the fixed table, the analysis runs beside them
(niced) and the other chunks are sent after it with its CRFs.

Reported per upload:
- playable and ready, seconds after the upload completed (`sent`: the last
  body byte handed to the socket) and after the 201;
- the worker's CPU seconds: user+system of every process in its process group
  (Celery, its pool, every ffmpeg), own and reaped children's
  (/proc/PID/stat utime+stime+cutime+cstime), the difference across the
  upload; the API's the same way;
- the analysis' wall (the worker's "per-title CRFs beside chunk 0 in N s"
  log line) and CPU, and each piece's (f0c0, audio, fNcM, analysis-h264)
  first-seen..last-seen wall and CPU: a 0.25 s /proc sampler of the worker's
  process group, each ffmpeg filed by the work/<asset>/<piece>/ path in its
  argv; a process' CPU is its last sample, so each may lose up to 0.25 s
  (stated as the bound with the figure);
- the 1-minute load at the start, every 60 s during (min/median/max), and at
  the end.
An upload says when it is playable at once (`[asset] playable: {...}`,
marks in seconds from the 201), and with --progress each upload's pieces so
far go to PATH.LADDER.json every 30 s: on 2 shared cores a 10-minute 1080p
encode takes over an hour, and what finished is still there if it is cut
short. `--sample-group PGID --progress FILE` samples an already running
worker's process group the same way.

Then, with both ladders: added wall = (auto ready - fixed ready) / fixed
ready, and the worker CPU ratio auto / fixed. On a shared machine the wall
moves with the load; the CPU ratio much less.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.playable import FOOTAGE, make_source, measure_once, start_stack  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PIECE = re.compile(r"/work/(?:as_[^/ ]+)/([^/ ]+)/")  # <data>/work/<asset id>/<piece>/


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def group_pids(pgid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = _stat(int(name))
            if f is not None and int(f[2]) == pgid:  # fields after ")": state ppid pgrp ...
                pids.append(int(name))
    return pids


def group_cpu(pgid: int) -> float:
    """CPU seconds of a process group: each live process' own and its reaped children's (no double count:
    a child's time moves into its parent's cutime only when the parent reaps it, and then it is gone)."""
    total = 0
    for pid in group_pids(pgid):
        f = _stat(pid)
        if f is not None:
            total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    return total / TICK


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class PieceSampler(threading.Thread):
    """Every 0.25 s: each ffmpeg of the worker's group, filed by the piece its argv writes to, with its own CPU
    (utime+stime) and when it was first and last seen; and the 1-minute load every 60 s."""

    def __init__(self, pgid: int, period: float = 0.25, progress: Path | None = None, t0: float | None = None) -> None:
        super().__init__(daemon=True)
        self.pgid, self.period = pgid, period
        # Every 30 s the pieces so far (and the load) go to `progress`: an encode that outlasts the session
        # still leaves its finished chunks' figures.
        self.progress, self.t0 = progress, time.monotonic() if t0 is None else t0
        self.stop_event = threading.Event()
        self.procs: dict[int, dict] = {}  # pid -> {piece, cpu, first, last}
        self.loads: list[float] = []

    def run(self) -> None:
        next_load = next_dump = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_load:
                self.loads.append(os.getloadavg()[0])
                next_load = now + 60
            if self.progress is not None and now >= next_dump:
                self.progress.write_text(json.dumps({"at": time.strftime("%H:%M:%S", time.gmtime()),
                                                     "since_start": round(now - self.t0, 1),
                                                     "group_cpu": round(group_cpu(self.pgid), 1),
                                                     "loads": self.loads, "pieces": self.pieces(self.t0)}))
                next_dump = now + 30
            for pid in group_pids(self.pgid):
                p = self.procs.get(pid)
                if p is None:
                    cmd = _cmdline(pid)
                    if "ffmpeg" not in cmd.split(" ", 1)[0]:
                        continue
                    m = PIECE.search(cmd)
                    p = self.procs[pid] = {"piece": m.group(1) if m else "other", "cpu": 0.0, "first": now,
                                           "last": now}
                f = _stat(pid)
                if f is not None:
                    p["cpu"] = max(p["cpu"], (int(f[11]) + int(f[12])) / TICK)
                    p["last"] = now
            self.stop_event.wait(self.period)

    def pieces(self, t0: float) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for p in self.procs.values():
            o = out.setdefault(p["piece"], {"first": p["first"], "last": p["last"], "cpu": 0.0, "processes": 0})
            o["first"], o["last"] = min(o["first"], p["first"]), max(o["last"], p["last"])
            o["cpu"] += p["cpu"]
            o["processes"] += 1
        return {k: {"from_201": round(v["first"] - t0, 1), "wall": round(v["last"] - v["first"], 1),
                    "cpu": round(v["cpu"], 1), "processes": v["processes"]}
                for k, v in sorted(out.items(), key=lambda kv: kv[1]["first"])}


def one(source: Path, ladder: str, timeout: float, root: Path, progress: Path | None = None) -> dict:
    stack = start_stack(root / "data", None)
    try:
        worker, api = stack.procs[1].pid, stack.procs[0].pid  # start_new_session: pid == pgid
        cpu0, api0 = group_cpu(worker), group_cpu(api)
        sampler = PieceSampler(worker, progress=progress and progress.with_suffix(f".{ladder}.json"))
        sampler.start()
        r = measure_once(stack, source, None, timeout, settings={"ladder": ladder}, until_ready=True)
        sampler.stop_event.set()
        sampler.join()
        r["worker_cpu_s"] = round(group_cpu(worker) - cpu0, 1)
        r["api_cpu_s"] = round(group_cpu(api) - api0, 1)
        r["pieces"] = sampler.pieces(r.pop("monotonic_201"))
        r["load1_during"] = {"min": min(sampler.loads), "median": statistics.median(sampler.loads),
                             "max": max(sampler.loads), "n": len(sampler.loads)}
        r["load1_end"] = round(os.getloadavg()[0], 2)
        log = stack.worker_log.read_text(errors="replace")
        m = re.search(r"per-title CRFs beside chunk 0 in ([\d.]+) s: (.*)", log)
        r["analysis_wall_log_s"] = float(m.group(1)) if m else None
        r["per_title_crfs"] = m.group(2).strip() if m else None
        r["analysis_log"] = re.findall(r"(h264|av1) analysed in ([\d.]+) s \((\d+) points\)", log)
        r["analysis_failed"] = "per-title analysis failed" in log
        r["chunks_sent"] = re.findall(r"\d+ of \d+ chunks x \d+ families sent", log)
        return r
    finally:
        stack.stop()


def report(ladder: str, r: dict) -> None:
    print(f"[{ladder}] playable {r.get('asset_playable_from_sent')} s after sent, ready "
          f"{r.get('asset_ready_from_sent')} s, worker CPU {r['worker_cpu_s']} s, analysis wall "
          f"{r['analysis_wall_log_s']} s CPU {r['pieces'].get('analysis-h264', {}).get('cpu')} s, "
          f"load {r['load1']} -> {r['load1_during']} -> {r['load1_end']}", flush=True)
    for piece, p in r["pieces"].items():
        print(f"[{ladder}]   {piece:14s} from {p['from_201']:7.1f} s  wall {p['wall']:7.1f} s  CPU {p['cpu']:7.1f} s"
              f"  ({p['processes']} ffmpeg)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="footage-1080p-600", help="KIND-HEIGHTp-SECONDS (bench/playable.py)")
    ap.add_argument("--footage", type=Path, default=FOOTAGE)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "abr-bench-cache")
    ap.add_argument("--ladders", default="auto,fixed", help="upload `ladder` settings, run in this order")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of --ladders (alternating)")
    ap.add_argument("--timeout", type=float, default=7200.0, help="seconds from the 201 to wait for ready")
    ap.add_argument("--progress", type=Path, default=None,
                    help="every 30 s, write each upload's pieces so far to PATH with .LADDER.json for its suffix")
    ap.add_argument("--sample-group", type=int, default=None, metavar="PGID",
                    help="only sample this running worker's process group into --progress (for an upload already "
                         "under way)")
    ap.add_argument("--parallel", action="store_true",
                    help="run the --ladders side by side (two stacks at once) instead of one after the other")
    args = ap.parse_args()
    if args.sample_group is not None:
        sampler = PieceSampler(args.sample_group, progress=args.progress)
        sampler.start()
        while os.path.exists(f"/proc/{args.sample_group}"):
            time.sleep(1)
        sampler.stop_event.set()
        return 0
    source = make_source(args.cache_dir, args.source, args.footage)
    ladders = [x for x in args.ladders.split(",") if x]
    print(f"source {source} ({source.stat().st_size / 1e6:.0f} MB); cpus {os.cpu_count()}; "
          f"load {os.getloadavg()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    results: dict[str, list[dict]] = {x: [] for x in ladders}

    def run(ladder: str, i: int) -> None:
        root = Path(tempfile.mkdtemp(prefix="abr-bench-pt-cost-"))
        try:
            r = one(source, ladder, args.timeout, root, args.progress)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        results[ladder].append(r)
        print(f"[{ladder}] run {i + 1}: " + json.dumps(r), flush=True)
        report(ladder, r)

    for i in range(args.repeat):
        if args.parallel:
            # Side by side, each on its own stack: both see the same machine (the other helpers' load and each
            # other), so their walls compare, where one after the other they would meet different loads.
            threads = [threading.Thread(target=run, args=(ladder, i)) for ladder in ladders]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for ladder in ladders:
                run(ladder, i)
    if "auto" in results and "fixed" in results:
        for a, f in zip(results["auto"], results["fixed"]):
            if "asset_ready_from_201" in a and "asset_ready_from_201" in f:
                added = (a["asset_ready_from_201"] - f["asset_ready_from_201"]) / f["asset_ready_from_201"]
                print(f"analysis' added wall: ({a['asset_ready_from_201']} - {f['asset_ready_from_201']}) / "
                      f"{f['asset_ready_from_201']} = {added:.3f} (target <= 0.25: {'MET' if added <= 0.25 else 'MISSED'}); "
                      f"worker CPU auto / fixed = {a['worker_cpu_s']} / {f['worker_cpu_s']} = "
                      f"{a['worker_cpu_s'] / f['worker_cpu_s']:.3f}; playable after sent: auto "
                      f"{a.get('asset_playable_from_sent')} s, fixed {f.get('asset_playable_from_sent')} s", flush=True)
    print("JSON " + json.dumps(results, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
