"""Raw frames from one ffmpeg, through the frame-plugin chain, into another ffmpeg.

    decoder ffmpeg ──raw frames──▶ reader thread ─▶ ring of batch buffers ─▶ chain + writer thread ─▶ encoder ffmpeg
                                                                                     (audio: read by the encoder itself)

Why it is cheap: the pipes are sized for whole frames, the reader `readinto`s
a few preallocated batch buffers that are recycled for the whole encode,
plugins change the frames in place (numpy views, no copies), and the writer
hands the same memory to the encoder. Both threads spend their time in
system calls and in numpy/OpenCV, which release the GIL.

VOD never drops: the reader waits for a free buffer, so frame count out
equals frame count in. Live must not fall ever further behind the source:
the reader also waits for a free buffer (absorbing a burst, as an HLS source
delivers a segment at once), but once the frame it reads is more than
MAX_LAG behind real time it drops frames until the lag has halved (the
encoder gets the last processed frame again in place of each, so count,
timing and audio sync are kept, and a privacy plugin never lets an
unprocessed frame through); `lagging` tells the session.
"""

from __future__ import annotations

import fcntl
import math
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from core.errors import AbrError, FFmpegError
from core.media.plugins import installed, parse_options
from core.media.plugins.base import BatchInfo, FrameFormat, FramePlugin, PluginContext

log = logging.getLogger(__name__)
LAG_CLEAR_S = 5.0  # no drop for this long: not lagging any more
# Live: how far behind real time the chain may fall before frames are dropped. Above the
# burstiness of the sources (an HLS source delivers a whole segment at once), below what
# a viewer would call a stuck stream; the latency it adds is bounded by it.
MAX_LAG = 3.0


class PluginFailed(AbrError):
    """A frame plugin raised: the encode stops and the asset says which plugin and why."""

    code = "plugin_failed"
    status = 500

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"frame plugin {plugin} failed: {message}")
        self.plugin = plugin


@dataclass
class _Entry:
    name: str
    plugin: FramePlugin
    enabled: bool = True


@dataclass
class FrameChain:
    fmt: FrameFormat
    entries: list[_Entry]
    live: bool = False
    disabled: deque = field(default_factory=deque)  # (name, message) of live plugins turned off, for the session

    @property
    def batch_size(self) -> int:
        return max([e.plugin.batch_size for e in self.entries] + [1])

    def process(self, frames: np.ndarray, info: BatchInfo) -> None:
        for entry in self.entries:
            if not entry.enabled:
                continue
            try:
                entry.plugin.process(frames, info)
            except Exception as exc:
                message = str(exc) or exc.__class__.__name__
                if not self.live:
                    raise PluginFailed(entry.name, message) from exc
                log.warning("live frame plugin %s failed and is turned off: %s", entry.name, message)
                entry.enabled = False
                self.disabled.append((entry.name, message))

    def close(self) -> None:
        for entry in self.entries:
            try:
                entry.plugin.close()
            except Exception:
                log.exception("frame plugin %s failed to close", entry.name)


def build_chain(specs: list[dict], fmt: FrameFormat, *, live: bool = False, resolve=None) -> FrameChain:
    """Instantiate the plugins of validated `frame_plugins` settings (a failing setup names its plugin)."""
    context = PluginContext(format=fmt, live=live, **({"resolve": resolve} if resolve else {}))
    entries = []
    for spec in specs:
        found = installed().get(spec["name"])
        if found is None or not found.available:
            raise PluginFailed(spec["name"], "is not installed on this worker")
        options = parse_options(found.cls, spec.get("options") or {})
        try:
            entries.append(_Entry(spec["name"], found.cls(options, context)))
        except AbrError:
            raise
        except Exception as exc:
            raise PluginFailed(spec["name"], str(exc) or exc.__class__.__name__) from exc
    return FrameChain(fmt, entries, live=live)


def size_pipe(fd: int, frame_bytes: int) -> None:
    """Make a pipe hold a whole frame (64 KiB by default: a 720p frame would take 22 wake-ups)."""
    for size in (frame_bytes * 2, frame_bytes, 1 << 20):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)
            return
        except OSError:
            continue


class Pump:
    """Move frames from `src` (a decoder's stdout) through `chain` to `dst` (an encoder's stdin fd)."""

    def __init__(self, chain: FrameChain, src, dst: int, *, ring: int | None = None) -> None:
        self.chain, self.src, self.dst = chain, src, dst
        fmt = chain.fmt
        self.frame_bytes, n = fmt.frame_bytes, chain.batch_size
        if ring is None:  # about half a second of frames: smooths the encoder's start and hiccups
            ring = max(3, math.ceil(float(fmt.frame_rate) / 2 / n))
        self.buffers = [np.empty((n, *fmt.shape), dtype=np.uint8) for _ in range(ring)]
        self.free: queue.Queue = queue.Queue()
        for buf in self.buffers:
            self.free.put(buf)
        self.filled: queue.Queue = queue.Queue()
        self.last: np.ndarray | None = None  # live: the frame repeated in place of dropped ones
        self.frames_in = self.frames_out = self.dropped = 0
        self.error: BaseException | None = None
        self._last_drop = 0.0
        self._anchor: float | None = None
        self._frames_read = 0
        self._close_lock = threading.Lock()
        self._rate = float(fmt.frame_rate)
        self._threads = [threading.Thread(target=self._guard, args=(self._read,), daemon=True, name="frames-read"),
                         threading.Thread(target=self._guard, args=(self._write,), daemon=True, name="frames-write")]

    @property
    def lagging(self) -> bool:
        return self.dropped > 0 and time.monotonic() - self._last_drop < LAG_CLEAR_S

    def start(self) -> Pump:
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout)

    def _guard(self, target) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001  (handed to the thread that runs the encoder)
            if self.error is None:
                self.error = exc
            self.filled.put(None)  # unblock the writer
            self.free.put(None)  # unblock the reader

    def _read_frame(self, view: memoryview) -> bool:
        """Fill one frame; False at a clean end of stream."""
        got = 0
        while got < len(view):
            n = self.src.readinto(view[got:])
            if not n:
                if got:
                    raise FFmpegError(f"the decoder ended in the middle of a frame ({got} of {len(view)} bytes)")
                return False
            got += n
        return True

    def _read(self) -> None:
        """Fill batches; live: drop frames while the chain is more than MAX_LAG behind real time."""
        scratch = memoryview(bytearray(self.frame_bytes))
        batch, ended, dropping, pending = self.chain.batch_size, False, False, 0
        while not ended:
            buf = self.free.get()
            if buf is None:
                return  # an error elsewhere
            n, walls, before = 0, [], 0
            flat = memoryview(buf.reshape(-1))
            while n < batch:
                if not self._read_frame(scratch if dropping else flat[n * self.frame_bytes:(n + 1) * self.frame_bytes]):
                    ended = True
                    break
                late = self._lateness() if self.chain.live else 0.0
                if dropping or late > MAX_LAG:
                    # Behind: this frame is dropped here (the writer repeats the last processed
                    # one in its place) until the lag is down to half the limit.
                    dropping = late > MAX_LAG / 2
                    pending += 1
                    self.dropped += 1
                    self._last_drop = time.monotonic()
                    if n:
                        break  # close the batch: the drops belong between it and the next one
                    continue
                if n == 0:
                    before, pending = pending, 0
                walls.append(time.time())
                n += 1
            if n == 0:
                before, pending = pending, 0
            self.filled.put((buf, n, before, walls))
        self.filled.put(None)

    def _lateness(self) -> float:
        """Seconds the frame just read is behind the best schedule seen (frames since the start at the rate)."""
        now, due = time.monotonic(), self._frames_read / self._rate
        self._frames_read += 1
        if self._anchor is None or now - self._anchor < due:
            self._anchor = now - due  # on or ahead of schedule: that is the new reference
        return now - self._anchor - due

    def _write(self) -> None:
        while True:
            item = self.filled.get()
            if item is None:
                if self.error is None:
                    self.close_dst()  # end of stream: the encoder sees EOF and finishes
                return
            buf, n, dropped, walls = item
            self.frames_in += dropped
            if dropped and self.last is not None:  # else nothing processed yet to repeat: those are lost
                for _ in range(dropped):
                    self._send(memoryview(self.last.reshape(-1)))
            if buf is None:
                continue
            if n:
                first = self.frames_in
                info = BatchInfo(first, [(first + i) / self._rate for i in range(n)], walls)
                frames = buf[:n]
                self.chain.process(frames, info)
                self.frames_in += n
                self._send(memoryview(frames.reshape(-1)))
                if self.chain.live:
                    if self.last is None:
                        self.last = np.empty_like(frames[-1])
                    np.copyto(self.last, frames[-1])
            self.free.put(buf)

    def close_dst(self) -> None:
        with self._close_lock:
            if self.dst >= 0:
                os.close(self.dst)
                self.dst = -1

    def _send(self, data: memoryview) -> None:
        sent = 0
        while sent < len(data):
            sent += os.write(self.dst, data[sent:])
        self.frames_out += len(data) // self.frame_bytes
