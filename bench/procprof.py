"""CPU by process and thread over a time window, sampled from /proc (Linux; for the benches, not run by CI).

`Sampler` reads every 20 ms, for every process in the watched process groups
(the bench's API and worker are each started in their own session, so each
is a process group with everything it forks: Celery's pool, ffmpeg), each
thread's time on a CPU (`/proc/PID/task/TID/schedstat`, nanoseconds) and
name (`comm`: ffmpeg names its threads `dec0:0:h264`, `fc0`,
`enc0:2:libx264`, `mux0:dash`), and the machine's busy time (`/proc/stat`).
`window(a, b)` gives CPU seconds per (process, thread name) between two
monotonic times, and what the rest of the machine used meanwhile (other
helpers' load), so a wall figure can be read against the CPU it got.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

PERIOD = 0.02
FRESH = 3.0  # seconds after a process or thread appears during which its name is read again
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class _Thread:
    pid: int
    name: str
    samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, ns on CPU)
    waits: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, ns runnable but not on a CPU)


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _pgid(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    return int(stat.rsplit(")", 1)[1].split()[2])


def _busy_s() -> float:
    """Seconds all CPUs were busy since boot (user+nice+system+irq+softirq+steal)."""
    fields = [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]) / _TICK


class Sampler(threading.Thread):
    def __init__(self, pgids: set[int], runnable_of=None) -> None:
        super().__init__(daemon=True)
        self.pgids = pgids
        # runnable_of(cmdline) -> bool: for those processes, how many threads are runnable (state R: on a CPU or
        # waiting for one) at each sample; on an otherwise idle machine, whether they could keep every core busy.
        self.runnable_of = runnable_of
        self.runnable: list[int] = []
        self.threads: dict[tuple[int, int], _Thread] = {}
        self.procs: dict[int, tuple[float, str]] = {}  # pid -> (first seen, cmdline)
        self.busy: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            time.sleep(PERIOD)

    def sample(self) -> None:
        now = time.monotonic()
        self.busy.append((now, _busy_s()))
        running = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if _pgid(pid) not in self.pgids:
                continue
            seen = self.procs.get(pid)
            if seen is None or now - seen[0] < FRESH:  # a forked child execs, then names itself: read again
                cmd = (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()
                self.procs[pid] = (now if seen is None else seen[0], cmd or (seen[1] if seen else ""))
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in tids:
                sched = _read(f"/proc/{pid}/task/{tid}/schedstat")
                if sched is None:
                    continue
                key = (pid, int(tid))
                t = self.threads.get(key)
                if t is None:
                    t = self.threads[key] = _Thread(pid, "?")
                if not t.samples or now - t.samples[0][0] < FRESH:  # ffmpeg names a thread after starting it
                    t.name = (_read(f"/proc/{pid}/task/{tid}/comm") or t.name).strip()
                on_cpu, waiting = sched.split()[:2]
                t.samples.append((now, int(on_cpu)))
                t.waits.append((now, int(waiting)))
                if self.runnable_of is not None and self.runnable_of(self.procs[pid][1]):
                    stat = _read(f"/proc/{pid}/task/{tid}/stat")
                    running += bool(stat and stat.rsplit(")", 1)[1].split()[0] == "R")
        if self.runnable_of is not None and any(self.runnable_of(cmd) for _, cmd in self.procs.values()):
            self.runnable.append(running)

    def runnable_shares(self) -> dict[int, float]:
        """Share of samples with 0, 1, 2, ... runnable threads (see `runnable_of`)."""
        n = len(self.runnable) or 1
        return {k: round(self.runnable.count(k) / n, 3) for k in sorted(set(self.runnable))}

    def by_thread(self, keep) -> dict[str, float]:
        """CPU seconds of every thread so far, summed by thread name, of the processes `keep(cmdline)` accepts."""
        out: dict[str, float] = {}
        for t in self.threads.values():
            if t.samples and keep(self.procs.get(t.pid, (0, ""))[1]):
                out[t.name] = round(out.get(t.name, 0.0) + t.samples[-1][1] / 1e9, 3)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def first_seen(self, needle: str) -> float | None:
        """When a process whose command line contains `needle` was first sampled."""
        times = [t for t, cmd in self.procs.values() if needle in cmd]
        return min(times) if times else None

    def cmdline(self, needle: str) -> str | None:
        return next((cmd for _, cmd in self.procs.values() if needle in cmd), None)

    def states(self, a: float, b: float, label, keep) -> dict[str, dict[str, float]]:
        """Per thread whose label `keep` accepts: seconds in [a, b] on a CPU, runnable but waiting for one
        (other work had the cores), and neither (blocked: waiting for input, a lock, or not yet started)."""
        out: dict[str, dict[str, float]] = {}
        for t in self.threads.values():
            name = label(self.procs.get(t.pid, (0, ""))[1], t.name)
            if name is None or not keep(name) or not t.samples:
                continue
            cpu = (_at(t.samples, b) - _at(t.samples, a)) / 1e9
            wait = (_at(t.waits, b) - _at(t.waits, a)) / 1e9
            alive = min(b, t.samples[-1][0]) - max(a, t.samples[0][0])
            o = out.setdefault(name, {"threads": 0, "cpu": 0.0, "runq": 0.0, "blocked": 0.0})
            o["threads"] += 1
            o["cpu"] = round(o["cpu"] + cpu, 3)
            o["runq"] = round(o["runq"] + wait, 3)
            o["blocked"] = round(o["blocked"] + max(0.0, alive - cpu - wait), 3)  # summed over its threads
        return out

    def window(self, a: float, b: float, label) -> dict[str, float]:
        """CPU seconds in [a, b] per `label(cmdline, thread name)` (None: not counted), plus 'other processes'."""
        out: dict[str, float] = {}
        for t in self.threads.values():
            name = label(self.procs.get(t.pid, (0, ""))[1], t.name)
            if name is None:
                continue
            used = (_at(t.samples, b) - _at(t.samples, a)) / 1e9
            if used > 0:
                out[name] = out.get(name, 0.0) + used
        machine = _at(self.busy, b) - _at(self.busy, a)
        out["other processes"] = max(0.0, machine - sum(out.values()))
        return out


def _at(samples: list, when: float) -> float:
    """The counter at `when`: the last sample at or before it (0 before the first)."""
    value = 0
    for t, v in samples:
        if t > when:
            break
        value = v
    return value
