"""Plan the adaptive bitrate ladder: a pure function of the source's display size and frame rate.

With `measurements` (the per-title analysis of the source, core/media/analysis.py)
the rungs are chosen from measured rate-quality curves instead of the fixed
table (core/media/pertitle.py); the fixed table's rungs are then the candidate
sizes and each one's bitrate is the most a per-title rung there may spend.

A rung is named by its SHORT side ("720p" is 1280x720 landscape and 720x1280
portrait), so a phone's portrait video gets the same quality as landscape;
players and the dashboard label rungs the same way.
"""

from __future__ import annotations

import math
from fractions import Fraction

from core.errors import Unprocessable
from core.media.model import AUDIO_RENDITION_ID, VIDEO_CODECS, Ladder, Rendition, RungQuality
from core.media.pertitle import QualityMeasurements, choose_rungs, same_size_rungs

# Nominal short side -> H.264 average bitrate (bits/s) at 30 fps.
H264_BITRATES: dict[int, int] = {
    2160: 16_000_000,
    1440: 9_000_000,
    1080: 5_000_000,
    720: 3_000_000,
    480: 1_500_000,
    360: 800_000,
    240: 400_000,
}
# HEVC reaches the same quality in ~60 % of the bits; VP8 (older than H.264's
# high profile tools in practice, no B-frames) needs ~20 % more. AV1 (SVT-AV1
# at the preset in encode.py vs x264 veryfast), measured with bench/quality_av1.py
# (10 s 720p30 testsrc2, 2 s GOPs, VMAF): its saving shrinks as quality nears the
# top of the scale. At 1 Mbit/s H.264 (VMAF 87.6) AV1 at 0.5x is already better
# (88.3); at the 720p table rate, 3 Mbit/s (VMAF 96.2), AV1 gives 94.1 at 0.6x,
# 94.6 at 0.75x and 95.6 at 0.9x. 0.75 keeps the top rung within ~1.5 VMAF for a
# fifth fewer bits and gives the lower rungs more quality than H.264's.
CODEC_FACTORS: dict[str, float] = {"h264": 1.0, "h265": 0.6, "vp8": 1.2, "av1": 0.75}
# Codecs whose capped-CRF rung has the same init segment as the fixed table's rung (x264 with
# `stitchable=1` and `-b:v` in the `btrt` box), so chunks of one track may be encoded either way.
# SVT-AV1's does not (its `btrt` carries the cap and no average: core/media/encode.py): on the
# chunked path (`keep_sizes`) an AV1 family keeps the fixed table.
STITCHABLE_CRF_CODECS = ("h264",)
MAX_FRAME_RATE = 60
# A source this much above a table size gets its own top rung instead of
# being scaled down to the table size (e.g. 2.39:1 at 1920x804).
SOURCE_RUNG_MARGIN = 1.10
# A planned rung whose short side is within 15 % of the rung above it is skipped:
# a 272p source rung over the 240p table rung is two nearly identical renditions
# (twice the encode and storage for no choice a player could use).
RUNG_MIN_STEP_PERCENT = 85
# Wider (or taller) than this after the sample aspect ratio is a broken header or
# a file made to hurt, not a picture: a 320x240 source with SAR 64:1 would
# otherwise plan a 20480x240 rung. 32:9 monitors are 3.6:1; 360-degree video 2:1.
MAX_ASPECT_RATIO = 8.0


def plan_ladder(
    *,
    codec: str,
    display_width: int,
    display_height: int,
    frame_rate: Fraction,
    explicit: list[dict] | None = None,
    max_rungs: int = 4,
    measurements: QualityMeasurements | None = None,
    keep_sizes: bool = False,
) -> Ladder:
    """The renditions to encode for `codec`, highest first, never above the source size.

    Planned rungs within 15 % of the one above are skipped (`skip_close_rungs`);
    an explicit ladder is taken as given (minus rungs above the source);
    `measurements` make it a per-title ladder (each rendition's quality in `Ladder.quality`);
    with `keep_sizes` it keeps the fixed table's rungs and only gives each its capped CRF
    (`same_size_rungs`: a rung without one stays exactly the table's).
    """
    if codec not in VIDEO_CODECS:
        raise Unprocessable(f"unknown video codec {codec!r}; use one of {', '.join(VIDEO_CODECS)}")
    if display_width <= 0 or display_height <= 0:
        raise Unprocessable("the source has no picture size")
    check_aspect(display_width, display_height)
    rate = output_frame_rate(frame_rate)
    short = min(display_width, display_height)
    quality: dict[int, RungQuality] = {}
    within: tuple[Rendition, ...] = ()
    crfs: dict[int, tuple[float, int]] = {}  # nominal -> (CRF, the table's bitrate: its cap)
    if explicit is not None:
        rungs = _explicit_rungs(explicit, short)
    else:
        rungs = skip_close_rungs(_table_rungs(codec, short, rate))[: max(1, max_rungs)]
        if measurements is not None and keep_sizes and codec in STITCHABLE_CRF_CODECS:
            table = dict(rungs)
            same = same_size_rungs(measurements, table)
            quality = {s: RungQuality(c.vmaf_mean, c.vmaf_p5, measurements.samples) for s, c in same.items() if c}
            crfs = {s: (c.crf, table[s]) for s, c in same.items() if c}
            rungs = [(s, same[s].bitrate if same[s] else b) for s, b in rungs]
        chosen = choose_rungs(measurements, dict(rungs), max_rungs) if measurements is not None and not keep_sizes else []
        if chosen:  # nothing measured (an analysis that scored no frame): the fixed table stays
            table = dict(rungs)
            # Its sizes are what the analysis encoded every trial within (presets, slices: core/media/rungs.py);
            # a ladder that drops some encodes the rest as they were measured, not as a ladder of its own
            # (measured: the animation's 240p, the smallest of 4 at veryfast, was superfast as the smaller of
            # 2 rungs: 7.5 VMAF lower at the same bits, bench/quality.py).
            if len(chosen) < len(rungs):
                within = tuple(_rendition(codec, n, b, display_width, display_height, rate) for n, b in rungs)
            rungs = [(c.short, c.bitrate) for c in chosen]
            quality = {c.short: RungQuality(c.vmaf_mean, c.vmaf_p5, measurements.samples) for c in chosen}
            crfs = {c.short: (c.crf, table[c.short]) for c in chosen if c.crf is not None}
    renditions = tuple(
        _rendition(codec, nominal, bitrate, display_width, display_height, rate, crf=crfs.get(nominal))
        for nominal, bitrate in rungs
    )
    by_id = {r.id: quality[nominal] for r, (nominal, _) in zip(renditions, rungs) if nominal in quality}
    return Ladder(codec=codec, renditions=renditions, quality=by_id, within=within)


def check_aspect(display_width: int, display_height: int) -> None:
    """Refuse a display aspect ratio beyond `MAX_ASPECT_RATIO` (either way round)."""
    long, short = max(display_width, display_height), min(display_width, display_height)
    if long > short * MAX_ASPECT_RATIO:
        raise Unprocessable(
            f"the picture displays at {display_width}x{display_height} (aspect ratio {long / short:.1f}:1, "
            f"after its sample aspect ratio); at most {MAX_ASPECT_RATIO:g}:1 is encoded")


def skip_close_rungs(rungs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop each (short side, bitrate) rung within 15 % of the last kept one above it (highest first)."""
    kept: list[tuple[int, int]] = []
    for nominal, bitrate in rungs:
        if kept and nominal * 100 > kept[-1][0] * RUNG_MIN_STEP_PERCENT:  # integers: 255 of 300 is kept
            continue
        kept.append((nominal, bitrate))
    return kept


def plan_audio(channels: int, sample_rate: int) -> Rendition:
    """The single AAC rendition shared by every video family (stereo at most: 5.1 is downmixed)."""
    out_channels = 1 if channels == 1 else 2
    return Rendition(
        id=AUDIO_RENDITION_ID,
        codec="aac",
        bitrate=64_000 if out_channels == 1 else 128_000,
        channels=out_channels,
        # Keep 44.1 kHz (music, CD rips) rather than resample; everything else -> 48 kHz.
        sample_rate=44_100 if sample_rate == 44_100 else 48_000,
    )


def output_frame_rate(source: Fraction) -> Fraction:
    """The source rate, divided by the smallest whole number that brings it to 60 fps or less.

    Above 60 fps costs bits that few screens show; dividing (119.88 -> 59.94,
    100 -> 50) instead of clamping keeps every output frame a source frame, so
    motion stays even.
    """
    source = Fraction(source) if source and source > 0 else Fraction(30)
    divisor = math.ceil(source / MAX_FRAME_RATE)
    return source / divisor


def frame_rate_factor(rate: Fraction) -> float:
    """Bitrate multiplier for frame rates other than 30.

    Not linear: at higher rates consecutive frames differ less, so motion
    compensation predicts them better and each extra frame costs fewer bits;
    the square root matches the usual guidance (60 fps ~1.4-1.5x of 30 fps).
    Clamped so 15 fps slideshows still get a usable bitrate (0.8x) and
    nothing gets more than 1.5x.
    """
    return min(max(math.sqrt(float(rate) / 30), 0.8), 1.5)


def _table_rungs(codec: str, short: int, rate: Fraction) -> list[tuple[int, int]]:
    factor = CODEC_FACTORS[codec] * frame_rate_factor(rate)
    fits = [n for n in H264_BITRATES if n <= short]  # dict keeps high -> low order
    if not fits:
        # Smaller than the smallest rung: one rung at source size, bits by area.
        smallest = min(H264_BITRATES)
        return [(short, _kbit(H264_BITRATES[smallest] * factor * (short / smallest) ** 2))]
    rungs = [(n, _kbit(H264_BITRATES[n] * factor)) for n in fits]
    if short > fits[0] * SOURCE_RUNG_MARGIN:
        area = (short / fits[0]) ** 2
        rungs.insert(0, (short, _kbit(H264_BITRATES[fits[0]] * factor * area)))
    return rungs


def _explicit_rungs(explicit: list[dict], short: int) -> list[tuple[int, int]]:
    rungs = []
    for item in explicit:
        height, bitrate = item.get("height"), item.get("bitrate")
        if not isinstance(height, int) or not isinstance(bitrate, int) or height < 2 or bitrate <= 0:
            raise Unprocessable(f"a ladder rung needs a positive integer height and bitrate: {item!r}")
        rungs.append((height, bitrate))
    heights = [h for h, _ in rungs]
    if len(set(heights)) != len(heights):
        raise Unprocessable("the ladder lists the same height twice")
    kept = sorted((r for r in rungs if r[0] <= short), reverse=True)
    if not kept:
        raise Unprocessable(f"every rung of the ladder is larger than the source ({short}p); videos are never upscaled")
    return kept


def _rendition(codec: str, nominal: int, bitrate: int, width: int, height: int, rate: Fraction,
               crf: tuple[float, int] | None = None) -> Rendition:
    """`crf`: (CRF, table bitrate) of a capped-CRF rung, whose VBV cap is the table's, as in its trials."""
    if width >= height:
        w, h = _even(nominal * width / height), _even(nominal)
    else:
        w, h = _even(nominal), _even(nominal * height / width)
    cap = crf[1] if crf is not None else bitrate
    return Rendition(
        id=f"{codec}-{min(w, h)}p",
        codec=codec,
        width=w,
        height=h,
        bitrate=bitrate,
        max_bitrate=cap * 3 // 2,
        buffer_size=cap * 2,
        frame_rate=rate,
        crf=crf[0] if crf is not None else None,
    )


def _even(value: float) -> int:
    """Nearest even integer, ties downwards (an odd 853 becomes 852, not an upscaled 854); at least 2."""
    return max(2, math.ceil(value / 2 - 0.5) * 2)


def _kbit(bits: float) -> int:
    return max(1, round(bits / 1000)) * 1000
