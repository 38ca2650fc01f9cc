"""Exact outputs of bench/scale_model.py's wall-time model (the values are exact in binary floating point)."""

from dataclasses import replace

import pytest

from bench.scale_model import Cluster, Costs, chunk_lengths, predict_wall

# 2 s to send the pieces, 0.5 s of encoding per source second keeping 2 cores busy,
# 1 s fixed per piece, 5 s to download the source on another machine, 0.5 s to finish.
COSTS = Costs(setup_s=2.0, encode_s_per_s=0.5, encode_cores=2.0, fixed_s=1.0, download_s=5.0, finish_s=0.5)
LENGTHS = [60.0, 60.0, 30.0]


def test_chunk_lengths_join_the_remainder_to_the_last():
    assert chunk_lengths(150.0, 60.0) == [60.0, 90.0]
    assert chunk_lengths(180.0, 60.0) == [60.0, 60.0, 60.0]
    assert chunk_lengths(30.0, 60.0) == [30.0]


@pytest.mark.parametrize(("costs", "cluster", "wall"), [
    # One worker: 2 + (1 + 30) + (1 + 30) + (1 + 15) + 0.5, read in place.
    pytest.param(COSTS, Cluster(1, 1, 2, remote_download=False), 80.5, id="1-worker"),
    # Two workers on the same 2 cores, each encode wants both: they run at half speed, no gain.
    pytest.param(COSTS, Cluster(1, 2, 2, remote_download=False), 80.5, id="2-workers-one-machine"),
    # Encodes that keep one core busy: two at once at full speed, then the last alone: 2 + 31 + 16 + 0.5.
    pytest.param(replace(COSTS, encode_cores=1.0), Cluster(1, 2, 2, remote_download=False), 49.5,
                 id="2-workers-one-core-each"),
    # Two machines: each piece downloads first: 2 + (5 + 31) + (5 + 16) + 0.5.
    pytest.param(COSTS, Cluster(2, 1, 2), 59.5, id="2-machines"),
    # More machines than pieces: the longest piece decides: 2 + 5 + 31 + 0.5.
    pytest.param(COSTS, Cluster(8, 1, 2), 38.5, id="8-machines"),
])  # fmt: skip
def test_predict_wall(costs, cluster, wall):
    assert predict_wall(costs, cluster, LENGTHS) == wall
