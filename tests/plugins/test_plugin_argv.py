"""Exact argv of the two ffmpeg processes around the frame plugins (decode to raw frames, encode raw frames)."""

from fractions import Fraction
from pathlib import Path

import pytest

from core.media.encode import EncodeJob, RawVideo, build_decode_argv, build_encode_argv
from core.media.model import Ladder, Rendition

SRC, OUT = Path("/in/src.mp4"), Path("/out/job")
AUDIO = Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000)
LADDER = Ladder("h264", (Rendition("h264-720p", "h264", 1280, 720, 3_000_000, 4_500_000, 6_000_000, Fraction(30)),
                         Rendition("h264-360p", "h264", 640, 360, 800_000, 1_200_000, 1_600_000, Fraction(30))))
RAW = RawVideo(1280, 720, "yuv420p", Fraction(30000, 1001))


def job(**kw) -> EncodeJob:
    return EncodeJob(SRC, OUT, LADDER, kw.pop("audio", AUDIO), 4.0, Fraction(30000, 1001), raw_video=RAW, **kw)


def test_decode_argv_normalises_once_and_writes_raw_frames():
    assert build_decode_argv("ffmpeg", job()) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-y",
        "-protocol_whitelist", "file,pipe", "-i", "/in/src.mp4",
        "-map", "0:v:0",
        "-vf", "fps=30000/1001:start_time=0,scale=1280:720:flags=bicubic,setsar=1,format=yuv420p",
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1",
    ]  # fmt: skip


VIDEO = [
    "-filter_complex",
    "[0:v]split=1[s0]"
    ";[s0]scale=1280:720:flags=lanczos,setsar=1,format=yuv420p,split=2[o0][c0_1]"
    ";[c0_1]scale=640:360:flags=lanczos,setsar=1,format=yuv420p[v1];[o0]null[v0]",
    "-map", "[v0]", "-map", "[v1]",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-sc_threshold", "0",
    # 720p is 80 % of the pixels: round(5 x 0.8) = 4 slice threads, motion search dia, no B-frames
    # (core/media/rungs.py LARGEST_RUNG_X264); the other rung rungs.SMALL_RUNG_PRESET and SMALL_RUNG_X264.
    "-x264-params:v:0", "sliced-threads=1:threads=4:stitchable=1:me=dia:bframes=0",
    "-x264-params:v:1", "sliced-threads=1:threads=1:stitchable=1:bframes=0", "-preset:v:1", "superfast",
    "-g", "120", "-keyint_min", "120", "-force_key_frames", "expr:gte(t,n_forced*4)",
    "-b:v:0", "3000000", "-maxrate:v:0", "4500000", "-bufsize:v:0", "6000000",
    "-b:v:1", "800000", "-maxrate:v:1", "1200000", "-bufsize:v:1", "1600000",
]  # fmt: skip
TAIL = ["-fflags", "+bitexact", "-f", "dash", "-seg_duration", "4", "-use_template", "1", "-use_timeline", "1",
        "-dash_segment_type", "auto", "-init_seg_name", "init-$RepresentationID$.$ext$",
        "-media_seg_name", "seg-$RepresentationID$-$Number%05d$.$ext$"]


@pytest.mark.parametrize(("encode", "expected"), [
    pytest.param(job(), [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
        "-probesize", "1382400",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", "1280x720", "-framerate", "30000/1001", "-i", "pipe:0",
        "-protocol_whitelist", "file,pipe", "-vn", "-i", "/in/src.mp4",
        "-map_metadata", "-1", "-map_chapters", "-1", *VIDEO,
        "-map", "1:a:0", "-c:a", "aac", "-b:a", "128000", "-ac", "2", "-ar", "48000",
        *TAIL, "-adaptation_sets", "id=0,streams=0 id=1,streams=1 id=2,streams=2", "/out/job/manifest.mpd",
    ], id="raw-video-and-source-audio"),
    pytest.param(job(audio=None), [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
        "-probesize", "1382400",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", "1280x720", "-framerate", "30000/1001", "-i", "pipe:0",
        "-map_metadata", "-1", "-map_chapters", "-1", *VIDEO,
        *TAIL, "-adaptation_sets", "id=0,streams=0 id=1,streams=1", "/out/job/manifest.mpd",
    ], id="raw-video-only"),
])  # fmt: skip
def test_encode_argv_reads_raw_frames_on_stdin(encode, expected):
    assert build_encode_argv("ffmpeg", encode) == expected


def test_raw_video_refuses_windows():
    with pytest.raises(ValueError, match="whole"):
        build_encode_argv("ffmpeg", job(start=4.0, length=4.0))


def test_live_decode_reads_the_reader_pipe_and_copies_audio_to_the_fifo():
    from core.live.encode import build_live_decode_argv

    argv = build_live_decode_argv("ffmpeg", job(), source_url="pipe:0", audio_fifo="/w/audio.nut",
                                  input_options=["-f", "nut", "-i", "pipe:0"])
    assert argv == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-y",
        "-f", "nut", "-i", "pipe:0", "-map", "0:v:0",
        "-vf", "fps=30000/1001:start_time=0,scale=1280:720:flags=bicubic,setsar=1,format=yuv420p",
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1",
        "-map", "0:a:0", "-c:a", "copy", "-f", "nut", "/w/audio.nut",
    ]  # fmt: skip


def test_live_raw_encode_reads_frames_and_the_audio_fifo():
    from core.live.encode import build_live_raw_argv

    argv = build_live_raw_argv("ffmpeg", job(), audio_fifo="/w/audio.nut", offset=0.1)
    assert argv[:argv.index("-map_metadata")] == [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
        "-stats_period", "0.5", "-probesize", "1382400",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", "1280x720", "-framerate", "30000/1001", "-i", "pipe:0",
        "-protocol_whitelist", "file,pipe", "-f", "nut", "-i", "/w/audio.nut",
    ]  # fmt: skip
    at = argv.index("1:a:0")
    assert argv[at - 1:at + 3] == ["-map", "1:a:0", "-af", "aresample=async=1:first_pts=0"]
    at = argv.index("-preset")  # the live x264 preset (core/live/encode.py LIVE_X264_PRESET)
    assert argv[at:at + 4] == ["-preset", "superfast", "-tune", "zerolatency"]
    assert argv[-7:] == ["-format_options", "movflags=+frag_discont", "-window_size", "6",
                         "-extra_window_size", "60", "/out/job/manifest.mpd"]
