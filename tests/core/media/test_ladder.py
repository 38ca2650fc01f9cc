from fractions import Fraction

import pytest

from core.errors import Unprocessable
from core.media.ladder import frame_rate_factor, output_frame_rate, plan_audio, plan_ladder
from core.media.model import Ladder, Rendition


def rung(rid: str, width: int, height: int, bitrate: int, rate) -> Rendition:
    codec = rid.split("-")[0]
    return Rendition(
        id=rid,
        codec=codec,
        width=width,
        height=height,
        bitrate=bitrate,
        max_bitrate=bitrate * 3 // 2,
        buffer_size=bitrate * 2,
        frame_rate=Fraction(rate),
    )


@pytest.mark.parametrize(
    ("codec", "width", "height", "rate", "explicit", "expected"),
    [
        pytest.param("h264", 1920, 1080, 30, None, [
            rung("h264-1080p", 1920, 1080, 5_000_000, 30),
            rung("h264-720p", 1280, 720, 3_000_000, 30),
            rung("h264-480p", 854, 480, 1_500_000, 30),
            rung("h264-360p", 640, 360, 800_000, 30),
        ], id="1080p30"),
        pytest.param("h264", 1280, 720, 60, None, [
            rung("h264-720p", 1280, 720, 4_243_000, 60),
            rung("h264-480p", 854, 480, 2_121_000, 60),
            rung("h264-360p", 640, 360, 1_131_000, 60),
            rung("h264-240p", 426, 240, 566_000, 60),
        ], id="720p60"),
        pytest.param("h264", 3840, 2160, 30, None, [
            rung("h264-2160p", 3840, 2160, 16_000_000, 30),
            rung("h264-1440p", 2560, 1440, 9_000_000, 30),
            rung("h264-1080p", 1920, 1080, 5_000_000, 30),
            rung("h264-720p", 1280, 720, 3_000_000, 30),
        ], id="4k"),
        pytest.param("h264", 1080, 1920, 30, None, [
            rung("h264-1080p", 1080, 1920, 5_000_000, 30),
            rung("h264-720p", 720, 1280, 3_000_000, 30),
            rung("h264-480p", 480, 854, 1_500_000, 30),
            rung("h264-360p", 360, 640, 800_000, 30),
        ], id="portrait-1080x1920"),
        pytest.param("h264", 853, 480, 30, None, [
            rung("h264-480p", 852, 480, 1_500_000, 30),  # 853 -> 852: even, and no upscale
            rung("h264-360p", 640, 360, 800_000, 30),
            rung("h264-240p", 426, 240, 400_000, 30),
        ], id="odd-853x480"),
        pytest.param("h264", 160, 120, 30, None, [
            rung("h264-120p", 160, 120, 100_000, 30),
        ], id="tiny-160x120"),
        pytest.param("h264", 1920, 804, 24, None, [
            rung("h264-804p", 1920, 804, 3_346_000, 24),  # > 10 % above 720: own top rung
            # 720p is within 15 % of 804p (0.90): skipped, so the ladder reaches down to 240p
            rung("h264-480p", 1146, 480, 1_342_000, 24),
            rung("h264-360p", 860, 360, 716_000, 24),
            rung("h264-240p", 574, 240, 358_000, 24),
        ], id="scope-2.39"),
        pytest.param("h264", 272, 640, 30, None, [
            rung("h264-272p", 272, 640, 514_000, 30),  # 240p would be within 15 % (0.88): one rung
        ], id="rotated-640x272"),
        pytest.param("h264", 1920, 1200, 30, None, [
            rung("h264-1200p", 1920, 1200, 6_173_000, 30),  # 16:10; 1080 is 0.90 of 1200: skipped
            rung("h264-720p", 1152, 720, 3_000_000, 30),
            rung("h264-480p", 768, 480, 1_500_000, 30),
            rung("h264-360p", 576, 360, 800_000, 30),
        ], id="16:10-skips-1080p"),
        pytest.param("h264", 1280, 800, 30, None, [
            rung("h264-800p", 1280, 800, 3_704_000, 30),  # 720 is 0.90 of 800: skipped
            rung("h264-480p", 768, 480, 1_500_000, 30),
            rung("h264-360p", 576, 360, 800_000, 30),
            rung("h264-240p", 384, 240, 400_000, 30),
        ], id="1280x800"),
        pytest.param("h265", 1920, 1080, 30, None, [
            rung("h265-1080p", 1920, 1080, 3_000_000, 30),
            rung("h265-720p", 1280, 720, 1_800_000, 30),
            rung("h265-480p", 854, 480, 900_000, 30),
            rung("h265-360p", 640, 360, 480_000, 30),
        ], id="h265-1080p30"),
        pytest.param("vp8", 1280, 720, 30, None, [
            rung("vp8-720p", 1280, 720, 3_600_000, 30),
            rung("vp8-480p", 854, 480, 1_800_000, 30),
            rung("vp8-360p", 640, 360, 960_000, 30),
            rung("vp8-240p", 426, 240, 480_000, 30),
        ], id="vp8-720p30"),
        pytest.param("av1", 1280, 720, 30, None, [
            rung("av1-720p", 1280, 720, 2_250_000, 30),
            rung("av1-480p", 854, 480, 1_125_000, 30),
            rung("av1-360p", 640, 360, 600_000, 30),
            rung("av1-240p", 426, 240, 300_000, 30),
        ], id="av1-720p30"),
        pytest.param("h264", 1280, 720, Fraction(120000, 1001), None, [
            rung("h264-720p", 1280, 720, 4_241_000, Fraction(60000, 1001)),
            rung("h264-480p", 854, 480, 2_120_000, Fraction(60000, 1001)),
            rung("h264-360p", 640, 360, 1_131_000, Fraction(60000, 1001)),
            rung("h264-240p", 426, 240, 565_000, Fraction(60000, 1001)),
        ], id="119.88fps-halved"),
        pytest.param("h264", 1920, 1080, 30, [
            {"height": 360, "bitrate": 700_000},
            {"height": 1080, "bitrate": 4_000_000},
            {"height": 1440, "bitrate": 9_000_000},  # above the source: dropped
        ], [
            rung("h264-1080p", 1920, 1080, 4_000_000, 30),
            rung("h264-360p", 640, 360, 700_000, 30),
        ], id="explicit"),
    ],
)  # fmt: skip
def test_plan_ladder(codec, width, height, rate, explicit, expected):
    ladder = plan_ladder(
        codec=codec, display_width=width, display_height=height, frame_rate=Fraction(rate), explicit=explicit
    )
    assert ladder == Ladder(codec=codec, renditions=tuple(expected))


def test_explicit_above_source_is_refused():
    with pytest.raises(Unprocessable, match="never upscaled"):
        plan_ladder(
            codec="h264",
            display_width=640,
            display_height=360,
            frame_rate=Fraction(30),
            explicit=[{"height": 720, "bitrate": 3_000_000}],
        )


@pytest.mark.parametrize(
    "explicit",
    [
        pytest.param([{"height": 360, "bitrate": 1}, {"height": 360, "bitrate": 2}], id="duplicate"),
        pytest.param([{"height": 360}], id="no-bitrate"),
        pytest.param([{"height": "360", "bitrate": 1}], id="not-int"),
        pytest.param([{"height": 360, "bitrate": -5}], id="negative"),
    ],
)
def test_explicit_invalid(explicit):
    with pytest.raises(Unprocessable):
        plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30), explicit=explicit)


def test_unknown_codec():
    with pytest.raises(Unprocessable):
        plan_ladder(codec="vp9", display_width=1280, display_height=720, frame_rate=Fraction(30))


def test_max_rungs_keeps_the_highest():
    ladder = plan_ladder(codec="h264", display_width=3840, display_height=2160, frame_rate=Fraction(30), max_rungs=2)
    assert [r.id for r in ladder.renditions] == ["h264-2160p", "h264-1440p"]


def test_frame_rate_rules():
    assert frame_rate_factor(Fraction(15)) == 0.8  # clamped
    assert frame_rate_factor(Fraction(30)) == 1.0
    assert output_frame_rate(Fraction(50)) == 50
    assert output_frame_rate(Fraction(100)) == 50
    assert output_frame_rate(Fraction(240)) == 60


@pytest.mark.parametrize(
    ("channels", "rate", "expected"),
    [
        pytest.param(6, 48000, Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000), id="5.1-downmix"),
        pytest.param(2, 44100, Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=44100), id="stereo-44.1k"),
        pytest.param(1, 22050, Rendition("audio", "aac", bitrate=64_000, channels=1, sample_rate=48000), id="mono-22k"),
    ],
)
def test_plan_audio(channels, rate, expected):
    assert plan_audio(channels, rate) == expected


@pytest.mark.parametrize(
    ("width", "height"),
    [
        pytest.param(20480, 240, id="320x240-with-SAR-64:1"),
        pytest.param(240, 20480, id="tall"),
        pytest.param(1930, 240, id="just-over-8:1"),
    ],
)
def test_absurd_aspect_ratios_are_refused(width, height):
    with pytest.raises(Unprocessable, match=r"aspect ratio .*at most 8:1"):
        plan_ladder(codec="h264", display_width=width, display_height=height, frame_rate=Fraction(30))


def test_wide_but_sane_aspect_is_planned():
    ladder = plan_ladder(codec="h264", display_width=1920, display_height=240, frame_rate=Fraction(30))
    assert [(r.id, r.width, r.height) for r in ladder.renditions] == [("h264-240p", 1920, 240)]


@pytest.mark.parametrize(
    ("rungs", "kept"),
    [
        pytest.param([(272, 1), (240, 2)], [(272, 1)], id="272-over-240"),
        pytest.param([(1080, 1), (720, 2), (480, 3)], [(1080, 1), (720, 2), (480, 3)], id="table-steps-kept"),
        pytest.param([(300, 1), (256, 2), (240, 3)], [(300, 1), (240, 3)], id="compares-with-the-kept-rung"),
        pytest.param([(300, 1), (255, 2)], [(300, 1), (255, 2)], id="exactly-15-percent-kept"),
    ],
)
def test_skip_close_rungs(rungs, kept):
    from core.media.ladder import skip_close_rungs

    assert skip_close_rungs(rungs) == kept
