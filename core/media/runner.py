"""Run ffmpeg: progress, cancellation, timeout, and a readable reason when it fails.

ffmpeg is started with an argument list (never a shell), its `-progress
pipe:1` key=value blocks are parsed from stdout, and stderr is drained by a
thread (a full pipe would otherwise block ffmpeg and deadlock us) keeping
only its tail for the error message.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import Cancelled, FFmpegError
from core.redact import redact

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.05  # how often finished segments are looked for: a few stat() calls, ~0.1 s sooner on average
_TERMINATE_GRACE = 3.0
_STDERR_LINES = 40

# (fragment of an ffmpeg error line, reason shown to the user), first match wins.
_REASONS: tuple[tuple[str, str], ...] = (
    ("no space left on device", "no space left on storage"),
    ("moov atom not found", "the source file is truncated or corrupt"),
    ("invalid data found when processing input", "the source file is truncated or corrupt"),
    ("error while decoding", "the source file is truncated or corrupt"),
    ("corrupt", "the source file is truncated or corrupt"),
    ("truncat", "the source file is truncated or corrupt"),
    ("end of file", "the source file is truncated or corrupt"),
    ("matches no streams", "the source has no {kind} stream"),
    ("stream specifier", "the source has no {kind} stream"),
    ("permission denied", "the storage refused to write (permission denied)"),
    ("no such file or directory", "the source file is missing"),
    ("protocol not on whitelist", "the source refers to other files or URLs, which is not allowed"),
    ("cannot allocate memory", "the machine ran out of memory"),
)


# Lines ffmpeg prints as a consequence of the real error, which comes before them.
_CASCADE = (
    "Terminating thread",
    "Task finished with error code",
    "Error sending frames to consumers",
    "Nothing was written into output file",
    "Could not write header",
    "Conversion failed",
    "Error while filtering",
    "Error opening output file",
)


@dataclass(frozen=True)
class Progress:
    out_time: float  # seconds of output written
    percent: float | None  # 0-100, None when the duration is unknown
    fps: float | None
    speed: float | None  # x real time
    eta: float | None  # seconds left


_SECRET_OPTION = re.compile(r"(encryption_key|decryption_key)=[0-9A-Fa-f]+")


def ffmpeg_env() -> dict[str, str]:
    """The environment ffmpeg runs in: ours, with SVT-AV1's own logger cut to errors.

    SVT-AV1 prints ~20 `Svt[info]` lines per encoder to stderr whatever ffmpeg's
    -loglevel says; with four rungs they would push the real error out of the
    kept stderr tail. SVT_LOG=1 keeps its errors (a refused parameter), which
    are what the tail is for.
    """
    return {**os.environ, "SVT_LOG": os.environ.get("SVT_LOG", "1")}


def loggable_argv(argv: list[str]) -> list[str]:
    """`argv` with content keys replaced (encrypted playback): what log lines may show."""
    return [_SECRET_OPTION.sub(r"\1=<redacted>", a) for a in argv]


def run_ffmpeg(
    argv: list[str],
    *,
    duration: float | None,
    on_progress: Callable[[Progress], None] | None,
    cancel: Callable[[], bool] | None = None,
    timeout: float | None = None,
    poll: Callable[[], None] | None = None,
    stdin=None,
    nice: int = 0,
    poll_interval: float = POLL_INTERVAL,
    hold: Callable[[], bool] | None = None,
) -> None:
    """Run `argv` to completion; raise Cancelled, or FFmpegError with a reason, otherwise return.

    `stdin`: a file (descriptor) ffmpeg reads as `pipe:0`, e.g. a live reader's output or the raw
    frames of the plugin chain; default none. `poll` may raise to stop ffmpeg (a plugin failed).
    `nice`: added to ffmpeg's niceness, so it yields the CPU to the worker's other encodes.
    `poll_interval`: seconds between `poll` calls (a live LL stream looks for new parts more often).
    `hold`: asked every poll; while it says True, ffmpeg is stopped (SIGSTOP) and then continued
    (SIGCONT): an encode that must not take CPU from another for a while (the chunked path's audio
    while chunk 0 makes its first segments). Niceness alone does not keep it off a core the other
    encode's threads leave idle for a moment.
    """
    # Source URLs may carry credentials (rtsp://user:pass@…) or tokens, argv content keys: never log them.
    log.info("ffmpeg: %s", redact(shlex.join(loggable_argv(argv))))
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        env=ffmpeg_env(),
    )
    if nice:
        # Set from here, not in preexec_fn (the child is forked from a thread): a few ms unniced at most.
        try:
            os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + nice)
        except OSError:  # already gone: its exit is read below
            pass
    stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
    lines: queue.Queue[str | None] = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, lines.put), kwargs={"mark_end": True}, daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, stderr_tail.append), daemon=True),
    ]
    for thread in readers:
        thread.start()
    block: dict[str, str] = {}
    stdout_done = False
    held = False
    try:
        while True:
            if stdout_done:
                time.sleep(0.02)  # only the exit is left to wait for
            else:
                stdout_done = _drain(lines, block, duration, on_progress, started, poll_interval)
            if poll is not None:
                poll()
            if hold is not None and hold() != held and proc.poll() is None:
                held = not held
                proc.send_signal(signal.SIGSTOP if held else signal.SIGCONT)
            if cancel is not None and cancel():
                _stop(proc)
                raise Cancelled("the encode was cancelled")
            if timeout is not None and time.monotonic() - started > timeout:
                _stop(proc)
                raise FFmpegError(f"the encode took longer than {timeout:.0f} s and was stopped", stderr_tail=_tail(stderr_tail))
            if stdout_done and proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:  # an exception from a callback: never leave ffmpeg behind
            _stop(proc)
        for thread in readers:
            thread.join(timeout=2)
    if proc.returncode != 0:
        tail = _tail(stderr_tail)
        raise FFmpegError(_reason(tail, proc.returncode), stderr_tail=tail, returncode=proc.returncode)


def _pump(stream, sink: Callable, *, mark_end: bool = False) -> None:
    for line in stream:
        sink(line.rstrip("\n"))
    if mark_end:
        sink(None)  # tells the main loop that stdout closed


def _drain(lines: queue.Queue, block: dict, duration, on_progress, started: float,
           interval: float = POLL_INTERVAL) -> bool:
    """Consume progress lines for up to `interval` s; True once stdout has closed."""
    deadline = time.monotonic() + interval
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if line is None:
            return True
        key, _, value = line.partition("=")
        block[key.strip()] = value.strip()
        if key == "progress":  # last key of every block
            if on_progress is not None:
                on_progress(parse_progress(block, duration))
            block.clear()


def parse_progress(block: dict[str, str], duration: float | None) -> Progress:
    """One `-progress` block (out_time_us, fps, speed, progress) -> Progress."""
    out_time = max(0.0, _float(block.get("out_time_us")) or 0.0) / 1_000_000
    speed_text = block.get("speed", "").rstrip("x")
    speed = _float(speed_text)
    finished = block.get("progress") == "end"
    percent = eta = None
    if duration and duration > 0:
        percent = 100.0 if finished else min(100.0, 100.0 * out_time / duration)
        eta = 0.0 if finished else (max(0.0, (duration - out_time) / speed) if speed else None)
    return Progress(out_time=out_time, percent=percent, fps=_float(block.get("fps")), speed=speed, eta=eta)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None


def _stop(proc: subprocess.Popen) -> None:
    """Terminate (ffmpeg finishes its files on SIGTERM), then kill if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    proc.send_signal(signal.SIGCONT)  # a held (stopped) ffmpeg acts on SIGTERM only once continued
    try:
        proc.wait(timeout=_TERMINATE_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL ffmpeg when the worker dies (OOM kill, SIGKILL).

    Otherwise an orphaned ffmpeg would keep encoding into a job directory
    that a retried job is also writing. Runs in the child between fork and
    exec. The signal fires when the *thread* that started ffmpeg ends; that
    is safe here because run_ffmpeg blocks that thread until ffmpeg exits.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent already died before prctl took effect
            os._exit(1)
    except OSError:
        pass


def _strip_context(line: str) -> str:
    """'[dash @ 0x55..] Conflicting ...' -> 'Conflicting ...'."""
    line = line.strip()
    while line.startswith("[") and "] " in line:
        line = line.split("] ", 1)[1]
    return line


def _tail(lines: deque[str]) -> str:
    # ffmpeg names its input in errors ("rtsp://user:pass@cam: Connection refused"); the tail
    # becomes a logged, stored and shown reason.
    return redact("\n".join(lines))


def _reason(tail: str, returncode: int) -> str:
    lowered = tail.lower()
    for fragment, reason in _REASONS:
        if fragment in lowered:
            kind = "audio" if "0:a" in lowered else "video"
            return reason.format(kind=kind)
    meaningful = [
        _strip_context(line)
        for line in tail.splitlines()
        if line.strip() and not any(noise in line for noise in _CASCADE)
    ]
    if meaningful:
        return f"ffmpeg failed: {meaningful[-1]}"
    return f"ffmpeg failed (exit status {returncode})"
