"""`abr api`'s Granian runtime: chosen by the number of processes (cli/main.py, measured in bench/origin.py)."""

from __future__ import annotations

from cli.main import granian_runtime


def test_several_processes_get_one_single_threaded_runtime_each():
    assert granian_runtime(2) == {"runtime_mode": "st", "runtime_threads": 1}
    assert granian_runtime(8) == {"runtime_mode": "st", "runtime_threads": 1}


def test_one_process_gets_two_runtime_threads():
    assert granian_runtime(1) == {"runtime_mode": "mt", "runtime_threads": 2}
