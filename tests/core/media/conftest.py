"""Shared fixtures: the ffmpeg binary and a per-session cache of tiny synthetic clips."""

from __future__ import annotations


import pytest

from core.media.ffmpeg import find_ffmpeg
from tests.media_fixtures import clip_maker


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return find_ffmpeg()


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """clip(name, **make_clip_kwargs) -> Path, made once per session per name."""
    return clip_maker(tmp_path_factory.mktemp("clips"))


@pytest.fixture
def slow_ffmpeg(ffmpeg, tmp_path) -> str:
    """An ffmpeg that reads its input at real-time speed (-readrate 1), for timing-sensitive tests."""
    wrapper = tmp_path / "ffmpeg-realtime"
    wrapper.write_text(f'#!/bin/sh\nexec "{ffmpeg}" -readrate 1 "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)
