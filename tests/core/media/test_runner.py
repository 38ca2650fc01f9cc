import sys
import time

import pytest

from core.errors import Cancelled, FFmpegError
from core.media.ffmpeg import find_ffmpeg, ffmpeg_version
from core.media.runner import POLL_INTERVAL, Progress, _reason, parse_progress, run_ffmpeg


def test_find_ffmpeg_checks_the_binary(tmp_path):
    path = find_ffmpeg()
    assert ffmpeg_version(path)[0].isdigit() or ffmpeg_version(path).startswith("n")
    with pytest.raises(FFmpegError):
        find_ffmpeg(str(tmp_path / "missing-ffmpeg"))
    fake = tmp_path / "fake"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    with pytest.raises(FFmpegError, match="not a working ffmpeg"):
        find_ffmpeg(str(fake))


@pytest.mark.parametrize(
    ("block", "duration", "expected"),
    [
        pytest.param(
            {"out_time_us": "1500000", "fps": "60.0", "speed": "3.0x", "progress": "continue"}, 6.0,
            Progress(out_time=1.5, percent=25.0, fps=60.0, speed=3.0, eta=1.5), id="running",
        ),
        pytest.param(
            {"out_time_us": "N/A", "fps": "0.00", "speed": "N/A", "progress": "continue"}, None,
            Progress(out_time=0.0, percent=None, fps=0.0, speed=None, eta=None), id="unknown",
        ),
        pytest.param(
            {"out_time_us": "5990000", "fps": "30", "speed": "2x", "progress": "end"}, 6.0,
            Progress(out_time=5.99, percent=100.0, fps=30.0, speed=2.0, eta=0.0), id="end",
        ),
    ],
)  # fmt: skip
def test_parse_progress(block, duration, expected):
    assert parse_progress(block, duration) == expected


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        pytest.param("[mov,mp4 @ 0x1] moov atom not found\nError opening input file x.", "the source file is truncated or corrupt", id="moov"),
        pytest.param("Stream map '' matches no streams.\nFailed to set value '0:v:0' for option 'map'", "the source has no video stream", id="no-video"),
        pytest.param("[dash @ 0x1] Error writing: No space left on device", "no space left on storage", id="disk-full"),
        pytest.param(
            "[dash @ 0x5] Conflicting stream aspect ratios\n[fc#0 @ 0x6] Terminating thread with return code -22",
            "ffmpeg failed: Conflicting stream aspect ratios", id="last-meaningful",
        ),
        pytest.param("", "ffmpeg failed (exit status 1)", id="silent"),
    ],
)  # fmt: skip
def test_reason(stderr, reason):
    assert _reason(stderr, 1) == reason


def test_stdout_closing_before_exit_does_not_hang():
    # Regression: the end of stdout was noticed once, then missed while the process lingered.
    started = time.monotonic()
    run_ffmpeg([sys.executable, "-c", "import os,time; os.close(1); time.sleep(0.5)"], duration=None, on_progress=None)
    assert time.monotonic() - started < 3


def test_failure_keeps_stderr_tail():
    argv = [sys.executable, "-c", "import sys; print('first', file=sys.stderr); print('disk said no', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(argv, duration=None, on_progress=None)
    assert caught.value.message == "ffmpeg failed: disk said no"
    assert caught.value.stderr_tail == "first\ndisk said no" and caught.value.returncode == 3


def test_cancel_and_poll():
    polls = []
    started = time.monotonic()
    with pytest.raises(Cancelled):
        run_ffmpeg(
            [sys.executable, "-c", "import time; time.sleep(30)"], duration=None, on_progress=None,
            poll=lambda: polls.append(time.monotonic()), cancel=lambda: len(polls) >= 3,
        )  # fmt: skip
    assert time.monotonic() - started < 5
    assert POLL_INTERVAL * 0.6 < polls[2] - polls[1] < POLL_INTERVAL + 0.25  # about every POLL_INTERVAL


def test_progress_blocks_are_delivered():
    script = "print('out_time_us=1000000\\nfps=5\\nspeed=1x\\nprogress=continue\\nout_time_us=2000000\\nspeed=1x\\nprogress=end', flush=True)"
    seen = []
    run_ffmpeg([sys.executable, "-c", script], duration=2.0, on_progress=seen.append)
    assert [p.percent for p in seen] == [50.0, 100.0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_child_dies_with_its_parent():
    import os
    import signal
    import subprocess
    from pathlib import Path

    code = "from core.media.runner import run_ffmpeg; run_ffmpeg(['sleep', '30'], duration=None, on_progress=None)"
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[3])
    children_file = Path(f"/proc/{parent.pid}/task/{parent.pid}/children")
    deadline = time.monotonic() + 10
    while not children_file.read_text().split() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(children_file.read_text().split()[0])
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return  # gone and reaped
        if state in ("Z", "X"):
            return  # dead, waiting for init to reap it
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the child outlived its parent")


def test_nice_lowers_the_child_priority_only(tmp_path):
    """The chunked path's audio encode runs niced beside chunk 0's video (core/services/chunked.py)."""
    import os

    base = os.getpriority(os.PRIO_PROCESS, 0)
    seen = tmp_path / "nice"
    # The niceness is set just after the child starts: it waits (bounded) to see it, then reports it.
    child = ("import os, sys, time\n"
             "deadline = time.monotonic() + 10\n"
             f"while os.getpriority(os.PRIO_PROCESS, 0) == {base} and time.monotonic() < deadline:\n"
             "    time.sleep(0.01)\n"
             f"open({str(seen)!r}, 'w').write(str(os.getpriority(os.PRIO_PROCESS, 0)))\n")
    run_ffmpeg([sys.executable, "-c", child], duration=None, on_progress=None, nice=5)
    assert int(seen.read_text()) == min(19, base + 5)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base  # the worker itself keeps its priority


def test_hold_stops_the_child_while_it_says_so_then_continues_it(tmp_path):
    """The chunked path's audio encode is held (SIGSTOP) while chunk 0 makes its first segments."""
    ticks = tmp_path / "ticks"
    # The child notes the time every 10 ms until 1.5 s after it started; held, it notes nothing.
    child = ("import time\n"
             f"out = open({str(ticks)!r}, 'w', buffering=1)\n"
             "start = time.monotonic()\n"
             "while time.monotonic() - start < 1.5:\n"
             "    out.write(f'{time.monotonic()}\\n')\n"
             "    time.sleep(0.01)\n")
    first: list[float] = []

    def hold() -> bool:  # held from 0.2 s to 0.9 s after the child's first tick was seen
        if not first and ticks.exists() and ticks.stat().st_size:
            first.append(time.monotonic())
        return bool(first) and first[0] + 0.2 <= time.monotonic() < first[0] + 0.9

    run_ffmpeg([sys.executable, "-c", child], duration=None, on_progress=None, hold=hold)
    stamps = [float(x) for x in ticks.read_text().split()]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) >= 0.5  # stopped for most of the 0.7 s (the polls land up to ~0.05 s either side)
    assert stamps[-1] > first[0] + 0.9  # and continued after it


def test_a_held_child_is_still_stopped_by_cancel():
    started = time.monotonic()
    with pytest.raises(Cancelled):
        run_ffmpeg([sys.executable, "-c", "import time\ntime.sleep(30)\n"], duration=None, on_progress=None,
                   hold=lambda: True, cancel=lambda: time.monotonic() - started > 0.3)
    # SIGTERM acted at once (it was continued), not the SIGKILL after the 3 s grace (_TERMINATE_GRACE)
    assert time.monotonic() - started < 3.2  # cancelled at 0.3 s; the kill would come at >= 3.3 s
