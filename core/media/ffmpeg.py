"""Finding the ffmpeg binary, once.

The binary comes from the `imageio-ffmpeg` wheel unless a path is configured
(a distribution's ffmpeg, a static build). It is checked once per process by
running `-version`: a missing or broken binary fails at the first use with a
clear message instead of deep inside an encode.
"""

from __future__ import annotations

import functools
import logging
import subprocess

from core.errors import FFmpegError

log = logging.getLogger(__name__)


def find_ffmpeg(configured: str | None = None) -> str:
    """Path of a working ffmpeg: `configured` if given, else the wheel's."""
    if configured:
        path = configured
    else:
        import imageio_ffmpeg  # imported lazily: it reads the filesystem

        path = imageio_ffmpeg.get_ffmpeg_exe()
    ffmpeg_version(path)  # cached: raises once if the binary is unusable
    return path


@functools.cache
def ffmpeg_version(path: str) -> str:
    """The version string (`9.0.2`) of the ffmpeg at `path`; checked once per path."""
    try:
        done = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FFmpegError(f"ffmpeg at {path} cannot be run: {exc}") from exc
    first = done.stdout.splitlines()[0] if done.stdout else ""
    if done.returncode != 0 or not first.startswith("ffmpeg version"):
        raise FFmpegError(f"{path} is not a working ffmpeg", stderr_tail=done.stderr[-2000:], returncode=done.returncode)
    version = first.split()[2]
    log.info("using ffmpeg %s at %s", version, path)
    return version
