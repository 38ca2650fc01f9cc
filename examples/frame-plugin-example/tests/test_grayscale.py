"""Test a frame plugin the way the pipeline calls it: a context, a batch of frames, in place."""

from fractions import Fraction

import numpy as np
import pytest
from pydantic import ValidationError

from abr_example_plugin import Grayscale, GrayscaleOptions
from core.media.plugins.base import BatchInfo, FrameFormat, PluginContext, planes

FMT = FrameFormat(width=64, height=48, pix_fmt="yuv420p", frame_rate=Fraction(30))


def batch(n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(n, *FMT.shape), dtype=np.uint8)


def test_full_strength_leaves_no_colour_and_keeps_the_luma():
    frames = batch()
    before = frames.copy()
    plugin = Grayscale(GrayscaleOptions(strength=1.0), PluginContext(format=FMT))
    plugin.process(frames, BatchInfo(0, [0.0] * 3, [0.0] * 3))
    for frame, old in zip(frames, before):
        y, u, v = planes(frame, FMT.width, FMT.height)
        assert (u == 128).all() and (v == 128).all()
        assert (y == planes(old, FMT.width, FMT.height)[0]).all()


def test_zero_strength_changes_nothing():
    frames = batch()
    before = frames.copy()
    Grayscale(GrayscaleOptions(strength=0.0), PluginContext(format=FMT)).process(frames, BatchInfo(0, [], []))
    assert (frames == before).all()


def test_options_are_checked():
    with pytest.raises(ValidationError):
        GrayscaleOptions(strength=2)
