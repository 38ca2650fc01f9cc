"""Frame plugins on a live stream: decoder → chain → encoder per session, health reported, failures contained.

Differences from VOD (core/media/framepipe.py says how frames move):
- the chain must keep real time: when it falls behind, frames are dropped at
  the chain's input and the last processed frame is sent in their place
  (count, timing and audio sync kept; latency bounded by the pump's ring);
  the stream says `lagging` while that happens;
- a plugin that raises (or cannot start) is turned off for the rest of the
  stream with an event, and the stream goes on without it;
- the source is opened once (by the decoder); its audio reaches the encoder
  through a FIFO as copied packets, never through Python.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from core.errors import AbrError
from core.live.encode import build_live_decode_argv, build_live_raw_argv
from core.media.encode import EncodeJob
from core.media.family import plugin_job
from core.media.framepipe import FrameChain, Pump, build_chain, size_pipe
from core.media.plugins.base import FrameFormat
from core.media.pluginrun import run_with_plugins

log = logging.getLogger(__name__)
OnHealth = Callable[[str, dict], None]  # ("lagging" | "plugin_failed", details)


class LivePlugins:
    """The plugin chain of one live stream, across its sessions (reconnects keep what was turned off)."""

    def __init__(self, specs: list[dict], *, resolve=None, on_health: OnHealth | None = None) -> None:
        self.specs, self.resolve, self.on_health = specs, resolve, on_health or (lambda kind, details: None)
        self.turned_off: dict[str, str] = {}
        self.lagging = False

    @property
    def active(self) -> list[dict]:
        return [s for s in self.specs if s["name"] not in self.turned_off]

    def _turn_off(self, name: str, message: str) -> None:
        if name not in self.turned_off:
            self.turned_off[name] = message
            self.on_health("plugin_failed", {"plugin": name, "message": message})

    def _chain(self, fmt: FrameFormat) -> FrameChain:
        entries = []
        for spec in self.active:  # one at a time: a plugin that cannot start is turned off, the rest run
            try:
                entries += build_chain([spec], fmt, live=True, resolve=self.resolve).entries
            except AbrError as exc:
                self._turn_off(spec["name"], exc.message)
        return FrameChain(fmt, entries, live=True)

    def run(self, ffmpeg: str, job: EncodeJob, *, source_url: str, offset: float, poll: Callable[[], None],
            input_options: list[str] | None = None, stdin=None, part_target: float | None = None,
            **run_kwargs) -> None:
        """One session: like run_ffmpeg on the plain live argv, with the chain between decode and encode.

        `input_options` and `stdin`: the decoder reads the worker's source reader (core/live/reader.py).
        """
        job = plugin_job(job, self.specs)
        raw = job.raw_video
        chain = self._chain(FrameFormat(raw.width, raw.height, raw.pix_fmt, raw.frame_rate))
        fifo, keep = None, None
        if job.audio is not None:
            fifo = Path(job.out_dir) / "audio.nut"
            fifo.unlink(missing_ok=True)
            os.mkfifo(fifo, 0o600)
            # A reader that never reads: the decoder's open() of the FIFO returns at once (it would
            # block until the encoder opens it, which waits for the decoder's first frames).
            keep = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            size_pipe(keep, 1 << 20)  # room for seconds of audio while the encoder starts
        pumps: list[Pump] = []

        def check() -> None:
            poll()
            while chain.disabled:
                self._turn_off(*chain.disabled.popleft())
            if pumps:
                self._report_lag(pumps[0])

        decode = build_live_decode_argv(ffmpeg, job, source_url=source_url, audio_fifo=str(fifo) if fifo else None,
                                        input_options=input_options)
        encode = build_live_raw_argv(ffmpeg, job, audio_fifo=str(fifo) if fifo else "", offset=offset,
                                     part_target=part_target)
        try:
            run_with_plugins(decode, encode, chain, poll=check, on_pump=pumps.append, decoder_stdin=stdin,
                             **run_kwargs)
        finally:
            if keep is not None:
                os.close(keep)
            if pumps:
                self._report_lag(pumps[0], ended=True)

    def _report_lag(self, pump: Pump, *, ended: bool = False) -> None:
        lagging = pump.lagging and not ended
        if lagging != self.lagging:
            self.lagging = lagging
            self.on_health("lagging", {"lagging": lagging, "dropped_frames": pump.dropped})
            log.warning("live frame plugins %s (%d frames dropped)", "lagging" if lagging else "caught up",
                        pump.dropped)
