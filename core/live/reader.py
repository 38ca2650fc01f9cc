"""Open a live source once: one ffmpeg reads it, reports its streams, and relays it to the encoder over a pipe.

Probing with a separate open (PyAV) and then encoding with another used up
sources that take one connection (`ffmpeg -listen 1`, many cameras with a
single session): the probe took the session and the encoder found nothing.
Now the reader ffmpeg is the only thing that connects. It copies the first
video and audio stream, unchanged, into NUT on stdout (NUT carries any codec
with its parameters and costs a few bytes per packet); the stream parameters
the ladder is planned from come from the same ffmpeg's own input dump on
stderr (`Stream #0:0: Video: h264 …, 640x360 [SAR 1:1 DAR 16:9], 25 fps`), so
nothing opens the source a second time. The encoder reads the pipe.

The reader's stderr is kept (redacted of credentials) for the log, and
`classify` turns it into a failure class the API user may see: the raw text
names internal addresses and ports.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from core.errors import AbrError, Cancelled
from core.live.encode import input_args
from core.live.probe import FALLBACK_RATE, LiveSourceInfo
from core.media.probe import AudioInfo
from core.media.runner import _die_with_parent
from core.redact import redact

log = logging.getLogger(__name__)

# Input options for the encoder, which reads the reader's NUT from stdin: NUT's header carries the
# stream parameters, so a small probe is enough and nothing else may be opened.
PIPE_INPUT = ["-f", "nut", "-fflags", "nobuffer", "-probesize", "65536", "-analyzeduration", "500000",
              "-protocol_whitelist", "pipe", "-i", "pipe:0"]  # fmt: skip

_STDERR_LINES = 60
def reader_argv(ffmpeg: str, url: str, extra_input: tuple[str, ...] = (), *, whitelist: str | None = None,
                formats: str | None = None) -> list[str]:
    """The reader ffmpeg (pure): `extra_input` are options before `-i` (e.g. `-rtmp_tcurl` of a pinned URL);
    `whitelist` replaces the scheme's protocol whitelist and `formats` limits the demuxers (a proxied
    http(s) source: core/live/hls_proxy.py)."""
    args = input_args(url)
    if whitelist is not None:
        args[args.index("-protocol_whitelist") + 1] = whitelist
    if formats is not None:
        extra_input = ("-format_whitelist", formats, *extra_input)
    args = args[:-2] + list(extra_input) + args[-2:]
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info", "-nostats", *args,
            "-map", "0:v:0?", "-map", "0:a?", "-c", "copy", "-flush_packets", "1",
            "-max_interleave_delta", "1000000", "-f", "nut", "pipe:1"]  # fmt: skip


# -- the input dump -----------------------------------------------------------------------------------

_STREAM = re.compile(r"^\s*Stream #0:\d+(\S*): (Video|Audio): (.*)$")
_LANGUAGE = re.compile(r"\(([A-Za-z]{2,3})\)")  # `Stream #0:1[0x101](fre): Audio: …`
_SIZE = re.compile(r"(?<![\w])(\d{2,5})x(\d{2,5})(?![\w])")  # 640x360, never a codec tag (0x001B)
_SAR = re.compile(r"\[SAR (\d+):(\d+)")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)\b")
_AUDIO = re.compile(r"(\d+) Hz, ([^,]+)")
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "4.1": 5, "5.0": 5,
                    "5.1": 6, "6.0": 6, "6.1": 7, "7.0": 7, "7.1": 8, "downmix": 2}


def _snap(rate: Fraction) -> Fraction:
    """ffmpeg prints 29.97 for 30000/1001: give the NTSC rates back their exact value."""
    for base in (24, 30, 48, 60, 120):
        ntsc = Fraction(base * 1000, 1001)
        if abs(rate - ntsc) < Fraction(1, 100):
            return ntsc
    return rate.limit_denominator(1001)


def parse_input_dump(lines: list[str]) -> LiveSourceInfo | None:
    """The first video and audio stream of `Input #0` (lines up to `Stream mapping:`); None if it has neither."""
    width = height = channels = sample_rate = 0
    rate = FALLBACK_RATE
    seen_video = seen_audio = False
    audio_streams: list[AudioInfo] = []
    for line in lines:
        if line.startswith(("Stream mapping:", "Output #")):
            break
        m = _STREAM.match(line)
        if not m:
            continue
        tag, kind, rest = m.groups()
        if kind == "Video" and not seen_video:
            seen_video = True
            if size := _SIZE.search(rest):
                width, height = int(size[1]), int(size[2])
            if (sar := _SAR.search(rest)) and int(sar[2]) and int(sar[1]) and sar[1] != sar[2]:
                width = round(width * int(sar[1]) / int(sar[2]))
            for value, kilo in _FPS.findall(rest):
                candidate = Fraction(value) * (1000 if kilo else 1)
                if 1 <= candidate <= 240:
                    rate = _snap(candidate)
                    break
        elif kind == "Audio":
            rate_hz, count = 0, 2
            if audio := _AUDIO.search(rest):
                rate_hz = int(audio[1])
                layout = audio[2].strip()
                count = _LAYOUT_CHANNELS.get(layout.split("(")[0], 0)
                if not count and (n := re.match(r"(\d+) channels", layout)):
                    count = int(n[1])
                count = count or 2
            language = _LANGUAGE.search(tag)
            # Every audio stream is relayed (`-map 0:a?`): position N is the encoder's `0:a:N`.
            audio_streams.append(AudioInfo(codec=rest.split(",")[0].split()[0], channels=count, channel_layout=None,
                                           sample_rate=rate_hz or 48000, bit_rate=None,
                                           language=language[1] if language else None, position=len(audio_streams)))
            if not seen_audio:
                seen_audio = True
                sample_rate, channels = rate_hz, count
    if not (seen_video and width and height) and not seen_audio:
        return None
    if not (width and height):
        width = height = 0  # audio only (or a picture size we could not read: planned as audio only)
    return LiveSourceInfo(width, height, rate, channels, sample_rate, tuple(audio_streams))


# -- failure classes ----------------------------------------------------------------------------------

REFUSED = "the source refused the connection"
UNREACHABLE = "the source is not reachable"
NO_MEDIA = "the source sent no media"
_CLASSES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("connection refused",), REFUSED),
    (("timed out", "timeout", "no route to host", "network is unreachable", "host is unreachable",
      "name or service not known", "temporary failure in name resolution", "failed to resolve",
      "connection reset"), UNREACHABLE),
)
_STATUS = re.compile(r"(?:server returned|failed:)\s*(\d{3})\b\s*([A-Za-z ]{0,40})", re.I)


def classify(stderr: str) -> str:
    """What kind of failure the reader met, in words safe to show (no addresses, no ffmpeg text)."""
    if status := _STATUS.search(stderr):
        return f"the source answered {status[1]} {status[2].strip()}".rstrip()
    lowered = stderr.lower()
    for fragments, words in _CLASSES:
        if any(f in lowered for f in fragments):
            return words
    return NO_MEDIA


class SourceError(AbrError):
    """The source could not be read; `message` is a class from `classify`."""

    code = "source_unreachable"
    status = 422


# -- the process ---------------------------------------------------------------------------------------


@dataclass
class SourceReader:
    """A running reader ffmpeg: `stdout` is the NUT stream for the encoder."""

    proc: subprocess.Popen
    lines: deque
    dump: list[str]
    dump_done: threading.Event

    @classmethod
    def start(cls, argv: list[str]) -> SourceReader:
        log.info("live reader: %s", redact(" ".join(argv)))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        reader = cls(proc, deque(maxlen=_STDERR_LINES), [], threading.Event())
        threading.Thread(target=reader._drain, daemon=True).start()
        return reader

    def _drain(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if not self.dump_done.is_set():
                self.dump.append(line)
                if line.startswith(("Stream mapping:", "Output #")):
                    self.dump_done.set()
        self.dump_done.set()

    @property
    def stderr_tail(self) -> str:
        return redact("\n".join(self.lines))

    def wait_info(self, *, timeout: float, cancel: Callable[[], bool],
                  check: Callable[[], None] | None = None) -> LiveSourceInfo:
        """Wait for the input dump; SourceError with the failure's class if none comes, Cancelled on stop.

        `check` may raise to end the wait early (the HLS proxy refusing an address).
        """
        deadline = time.monotonic() + timeout
        while not self.dump_done.wait(0.1):
            if check is not None:
                check()
            if cancel():
                self.stop()
                raise Cancelled("the stream was stopped")
            if time.monotonic() > deadline:
                break
        if check is not None:
            check()
        info = parse_input_dump(self.dump) if any(line.startswith("Stream mapping:") for line in self.dump) else None
        if info is None:
            self.stop()
            if check is not None:
                check()
            self._fail()
        return info

    def _fail(self) -> None:
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        tail = self.stderr_tail
        log.info("live source failed: %s", tail[-2000:])
        raise SourceError(classify(tail))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()
