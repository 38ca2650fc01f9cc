"""Chunked encoding on paper: predicted wall time for N workers on M machines from measured costs (pure).

`bench/scale.py --model` measures the inputs on this machine, checks the
prediction against what this machine can run (1 and 2 workers), and prints
the prediction for more machines. tests/scale/test_scale_model.py holds
exact-output tests.

The model follows what `core/services/chunked.py` does:
- `setup_s` after the upload is accepted: probe, plan, and the whole source's
  audio, encoded before chunk 0 starts; then every piece is sent at once.
- Each piece (one chunk of the ladder) is taken by the first free worker, in
  order. A worker on another machine than the storage first downloads the
  whole source (`download_s`: `_source` fetches it per task; the network is
  not shared with the encoders' CPU). Then it does `fixed_s` of per-piece
  work (encoder start-up, the seek, rate-control warm-up, staging, the
  marker, the fan-in step that publishes the piece, broker dispatch) and
  `encode_s_per_s` x the chunk's seconds of encoding, both as measured with
  the piece alone on a machine.
- Workers on one machine share its cores: a piece alone keeps
  `encode_cores` busy, so k pieces at once on `cores` cores each run at
  min(1, cores / (k x encode_cores)) of their alone speed (processor sharing).
- `finish_s` after the last piece: the final fan-in (presentation, asset ready).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Costs:
    setup_s: float  # upload accepted -> pieces sent
    encode_s_per_s: float  # wall seconds per source second of a chunk encoding alone on one machine
    encode_cores: float  # CPU seconds / wall seconds of that encode
    fixed_s: float  # per piece, alone on a machine (wall)
    download_s: float  # one piece's source download on a machine without the file (0: read in place)
    finish_s: float  # last piece done -> ready


@dataclass(frozen=True)
class Cluster:
    machines: int
    workers_per_machine: int
    cores: int  # per machine
    remote_download: bool = True  # False: every worker reads the source in place (one machine, local storage)


def chunk_lengths(duration: float, chunk: float) -> list[float]:
    """Seconds of each chunk: whole chunks, the remainder joined to the last (as core.media.chunks plans it)."""
    n = max(1, math.floor(duration / chunk + 1e-9))
    return [chunk] * (n - 1) + [duration - chunk * (n - 1)]


def predict_wall(costs: Costs, cluster: Cluster, lengths: list[float]) -> float:
    """Seconds from upload accepted to ready (pure: an event simulation, no I/O)."""
    workers = [(m, w) for w in range(cluster.workers_per_machine) for m in range(cluster.machines)]
    queue = list(lengths)
    # Each busy worker: [machine, download seconds left, CPU work left in alone-seconds].
    busy: dict[int, list[float]] = {}
    now = costs.setup_s
    while queue or busy:
        for i, (machine, _) in enumerate(workers):
            if i not in busy and queue:
                download = costs.download_s if cluster.remote_download else 0.0
                busy[i] = [machine, download, costs.fixed_s + costs.encode_s_per_s * queue.pop(0)]
        # The speed of each piece now: downloads at 1, CPU work shared by the pieces encoding on a machine.
        encoding = [0] * cluster.machines
        for machine, download, _ in busy.values():
            encoding[int(machine)] += download <= 0
        speed = {i: 1.0 if b[1] > 0 else min(1.0, cluster.cores / (encoding[int(b[0])] * costs.encode_cores))
                 for i, b in busy.items()}
        step = min(b[1] if b[1] > 0 else b[2] / speed[i] for i, b in busy.items())
        now += step
        for i, b in list(busy.items()):
            if b[1] > 0:
                b[1] -= step
            else:
                b[2] -= step * speed[i]
            if b[1] <= 1e-9 and b[2] <= 1e-9:
                del busy[i]
            elif b[1] <= 1e-9:
                b[1] = 0.0
    return now + costs.finish_s
