"""Run a decoder ffmpeg and an encoder ffmpeg joined by the frame-plugin pump (see core/media/framepipe.py)."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable

from core.errors import FFmpegError
from core.redact import redact
from core.media.framepipe import FrameChain, Pump, size_pipe
from core.media.runner import _die_with_parent, _reason, _stop, run_ffmpeg

log = logging.getLogger(__name__)


def run_with_plugins(decode_argv: list[str], encode_argv: list[str], chain: FrameChain, *,
                     poll: Callable[[], None] | None = None, on_pump: Callable[[Pump], None] | None = None,
                     pass_fds: tuple[int, ...] = (), decoder_stdin=None, **run_kwargs) -> Pump:
    """Decode → chain → encode; raise PluginFailed, FFmpegError or Cancelled like run_ffmpeg; return the pump.

    `decoder_stdin`: what the decoder reads as `pipe:0` (a live source reader's output); default none.
    """
    # A live decoder's argv holds the source URL, which may carry credentials: never log them.
    log.info("ffmpeg (decode for frame plugins): %s", redact(shlex.join(decode_argv)))
    decoder = subprocess.Popen(decode_argv, stdin=subprocess.DEVNULL if decoder_stdin is None else decoder_stdin,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, bufsize=0, pass_fds=pass_fds,
                               preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    for fd in pass_fds:
        os.close(fd)  # the decoder has its copy (the write end of a pipe to the encoder)
    size_pipe(decoder.stdout.fileno(), chain.fmt.frame_bytes)
    tail: deque[str] = deque(maxlen=40)
    drain = threading.Thread(target=lambda: [tail.append(line.decode(errors="replace").rstrip())
                                             for line in decoder.stderr], daemon=True)
    drain.start()
    read_end, write_end = os.pipe()
    size_pipe(write_end, chain.fmt.frame_bytes)
    pump = Pump(chain, decoder.stdout, write_end).start()
    if on_pump is not None:
        on_pump(pump)

    def check() -> None:
        # A plugin or the reader failed: stop the encoder now (it would wait for frames forever).
        # A broken pipe means the encoder itself died: run_ffmpeg reports its reason.
        if pump.error is not None and not isinstance(pump.error, BrokenPipeError):
            raise pump.error
        if poll is not None:
            poll()

    def decoder_error() -> FFmpegError | None:
        try:
            decoder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None
        drain.join(timeout=2)
        if decoder.returncode == 0:
            return None
        text = redact("\n".join(tail))
        return FFmpegError(_reason(text, decoder.returncode), stderr_tail=text, returncode=decoder.returncode)

    try:
        try:
            run_ffmpeg(encode_argv, stdin=read_end, poll=check, **run_kwargs)
        except FFmpegError as exc:
            # The encoder failed because the decoder did (a corrupt source): its reason is the one to show.
            if decoder.poll() is not None and (cause := decoder_error()) is not None:
                raise cause from exc
            raise
        finally:
            os.close(read_end)
        pump.join(timeout=5)
        if pump.error is not None:
            raise pump.error
        if (cause := decoder_error()) is not None:
            raise cause
    except BrokenPipeError as exc:
        raise FFmpegError("the encoder stopped reading frames", stderr_tail=redact("\n".join(tail))) from exc
    finally:
        _stop(decoder)
        pump.close_dst()
        chain.close()
        pump.join(timeout=2)
    return pump
