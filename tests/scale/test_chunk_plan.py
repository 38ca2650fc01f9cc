"""Exact outputs of the chunk planner and of the windowed encode argv (pure: nothing runs)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from core.media.chunks import Chunk, chunk_length, chunkable, plan_chunks
from core.media.encode import EncodeJob, build_encode_argv
from core.media.model import Ladder, Rendition


@pytest.mark.parametrize(("duration", "segment", "chunk", "expected"), [
    pytest.param(24.0, 2.0, 8.0, [Chunk(0, 0.0, 8.0, 1), Chunk(1, 8.0, 8.0, 5), Chunk(2, 16.0, None, 9)],
                 id="three-even-chunks"),
    pytest.param(26.0, 2.0, 8.0, [Chunk(0, 0.0, 8.0, 1), Chunk(1, 8.0, 8.0, 5), Chunk(2, 16.0, 8.0, 9),
                                  Chunk(3, 24.0, None, 13)], id="remainder-of-a-segment-is-a-chunk"),
    pytest.param(24.5, 2.0, 8.0, [Chunk(0, 0.0, 8.0, 1), Chunk(1, 8.0, 8.0, 5), Chunk(2, 16.0, None, 9)],
                 id="remainder-under-a-segment-joins-the-last"),
    pytest.param(5.0, 2.0, 8.0, [Chunk(0, 0.0, None, 1)], id="shorter-than-a-chunk"),
    pytest.param(600.0, 4.0, 60.0, [Chunk(k, 60.0 * k, None if k == 9 else 60.0, 15 * k + 1) for k in range(10)],
                 id="ten-minutes-default"),
    pytest.param(7.5, 2.5, 5.0, [Chunk(0, 0.0, 5.0, 1), Chunk(1, 5.0, None, 3)], id="fractional-segments"),
])
def test_plan_chunks(duration, segment, chunk, expected):
    assert plan_chunks(duration, segment, chunk) == expected


def test_plan_chunks_refuses_a_chunk_that_is_not_whole_segments():
    with pytest.raises(ValueError, match="multiple"):
        plan_chunks(60, 4, 10)


@pytest.mark.parametrize(("chunk", "segment", "expected"), [(60, 4, 60), (10, 4, 8), (3, 4, 4), (7.5, 2.5, 7.5)])
def test_chunk_length_rounds_down_to_whole_segments(chunk, segment, expected):
    assert chunk_length(chunk, segment) == expected


def test_global_segment_numbers():
    assert [Chunk(2, 16.0, 8.0, 9).segment_number(n) for n in (1, 4)] == [9, 12]


@pytest.mark.parametrize(("kwargs", "reason"), [
    pytest.param({}, None, id="cfr-h264"),
    pytest.param({"variable_frame_rate": True}, "variable frame rate", id="vfr"),
    pytest.param({"codecs": ["h264", "vp8"]}, "a family other than H.264/H.265 (WebM segments carry no tfdt)",
                 id="vp8"),
    pytest.param({"output_rate": Fraction(30)}, "the output frame rate differs from the source's", id="rate-change"),
    pytest.param({"source_rate": Fraction(30000, 1001), "output_rate": Fraction(30000, 1001)},
                 "chunk starts would fall between frames (239.760 frames per chunk)", id="ntsc"),
    pytest.param({"source_rate": None}, "no video", id="audio-only"),
])
def test_chunkable(kwargs, reason):
    args = {"codecs": ["h264", "h265"], "variable_frame_rate": False, "source_rate": Fraction(60),
            "output_rate": Fraction(60), "chunk_duration": 8.0, **kwargs}
    assert chunkable(**args) == reason


SRC, OUT = Path("/in/src.mp4"), Path("/out/job")
LADDER = Ladder("h264", (Rendition("h264-240p", "h264", 320, 240, 400_000, 600_000, 800_000, Fraction(30)),))
AUDIO = Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000)


def whole(job: EncodeJob) -> list[str]:
    """The unwindowed argv (its own exact tests live in tests/core/media/test_encode_argv.py)."""
    return build_encode_argv("ffmpeg", replace(job, start=None, length=None, output_ts_offset=None))


def windowed(base: list[str], window: list[str], *, output: list[str] = (), audio_input: bool = False) -> list[str]:
    """`base` with the window before `-i`, output options before `-f dash`, audio from a second (whitelisted) input."""
    at = base.index("-i")
    second = ["-protocol_whitelist", "file,pipe", "-i", base[at + 1]] if audio_input else []
    argv = base[:at] + window + base[at:at + 2] + second + base[at + 2:]
    if audio_input:
        argv[argv.index("0:a:0")] = "1:a:0"
    f = argv.index("-fflags") if "-fflags" in argv else argv.index("-f")  # muxer flags stay beside the muxer
    return argv[:f] + list(output) + argv[f:]


OFFSET = ["-format_options", "movflags=+frag_discont"]
MIDDLE = EncodeJob(SRC, OUT, LADDER, None, 2.0, Fraction(30), start=8.0, length=8.0, output_ts_offset=8.0)
LAST = EncodeJob(SRC, OUT, LADDER, None, 2.0, Fraction(30), start=16.0, output_ts_offset=16.0)
FIRST = EncodeJob(SRC, OUT, LADDER, None, 2.0, Fraction(30), start=0.0, length=8.0)
FIRST_AUDIO = EncodeJob(SRC, OUT, LADDER, AUDIO, 2.0, Fraction(30), start=0.0, length=8.0)


@pytest.mark.parametrize(("job", "window", "output", "audio_input"), [
    pytest.param(MIDDLE, ["-ss", "8", "-t", "8"], ["-output_ts_offset", "8", *OFFSET], False, id="middle-chunk"),
    pytest.param(LAST, ["-ss", "16"], ["-output_ts_offset", "16", *OFFSET], False, id="last-chunk-to-the-end"),
    pytest.param(FIRST, ["-t", "8"], [], False, id="first-chunk"),
    pytest.param(FIRST_AUDIO, ["-t", "8"], [], True, id="first-chunk-with-whole-audio"),
])
def test_windowed_encode_argv(job, window, output, audio_input):
    expected = windowed(whole(job), window, output=output, audio_input=audio_input)
    assert build_encode_argv("ffmpeg", job) == expected


def test_window_args_in_place():
    argv = build_encode_argv("ffmpeg", MIDDLE)
    i = argv.index("-i")
    assert argv[i - 4:i + 2] == ["-ss", "8", "-t", "8", "-i", "/in/src.mp4"]
    o = argv.index("-output_ts_offset")
    assert argv[o:o + 4] == ["-output_ts_offset", "8", "-format_options", "movflags=+frag_discont"]
    assert o < argv.index("-f") and argv[argv.index("-f") + 1] == "dash"


def test_no_window_by_default():
    argv = build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, LADDER, AUDIO, 2.0, Fraction(30)))
    assert "-ss" not in argv and "-t" not in argv and "-output_ts_offset" not in argv and argv.count("-i") == 1


def test_audio_cannot_take_an_offset():
    with pytest.raises(ValueError, match="audio"):
        build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, LADDER, AUDIO, 2.0, Fraction(30), start=8.0,
                                              output_ts_offset=8.0))


@pytest.mark.parametrize(("duration", "segment", "chunk", "expected"), [
    # Chunk 0 holds 1 s + 1 s + 2 s + 2 s + 2 s (one segment more); the chunk starts stay where they were.
    pytest.param(24.0, 2.0, 8.0, [Chunk(0, 0.0, 8.0, 1), Chunk(1, 8.0, 8.0, 6), Chunk(2, 16.0, None, 10)],
                 id="three-even-chunks"),
    pytest.param(600.0, 4.0, 60.0, [Chunk(k, 60.0 * k, None if k == 9 else 60.0, 15 * k + 1 + (k > 0))
                                    for k in range(10)], id="ten-minutes-default"),
    pytest.param(5.0, 2.0, 8.0, [Chunk(0, 0.0, None, 1)], id="shorter-than-a-chunk"),
])
def test_plan_chunks_with_a_short_first_segment(duration, segment, chunk, expected):
    assert plan_chunks(duration, segment, chunk, short_first=True) == expected


FIRST_SHORT = replace(FIRST, first_segment_duration=1.0)


def test_chunk_0_takes_the_short_first_segment_and_the_window():
    expected = windowed(whole(FIRST_SHORT), ["-t", "8"])
    argv = build_encode_argv("ffmpeg", FIRST_SHORT)
    assert argv == expected
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,if(lt(n_forced,2),n_forced*1,(n_forced-1)*2))"


def test_later_chunks_are_encoded_as_without_a_short_first_segment():
    """What ChunkPlan.first_segment gives each chunk: chunk 0 the short first, every later one nothing."""
    from core.services.chunked import ChunkPlan

    chunks = plan_chunks(24.0, 2.0, 8.0, short_first=True)
    plan = ChunkPlan(2.0, chunks, [LADDER], AUDIO, first_segment_duration=1.0)
    assert [plan.first_segment(c) for c in chunks] == [1.0, None, None]
    assert ChunkPlan.from_json(plan.to_json()) == plan
    # A plan written before the setting existed reads as equal segments.
    old = ChunkPlan.from_json(ChunkPlan(2.0, plan_chunks(24.0, 2.0, 8.0), [LADDER], AUDIO).to_json()
                              .replace(b', "first_segment_duration": null', b""))
    assert old.first_segment_duration is None
