import json
import subprocess
from fractions import Fraction

import pytest

from core.errors import InvalidMedia
from core.media.probe import probe
from tests.media_fixtures import make_clip, truncate


def test_plain_clip(clip):
    info = probe(clip("plain", duration=2.0))
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.size > 0
    v, a = info.video, info.audio
    assert (v.codec, v.width, v.height, v.display_width, v.display_height) == ("h264", 320, 240, 320, 240)
    assert (v.rotation, v.sample_aspect_ratio, v.frame_rate, v.variable_frame_rate) == (0, 1, 30, False)
    assert v.pix_fmt == "yuv420p"
    assert (a.codec, a.channels, a.channel_layout, a.sample_rate) == ("aac", 2, "stereo", 48000)
    assert json.loads(json.dumps(info.to_dict()))["video"]["frame_rate"] == "30"


@pytest.mark.parametrize(
    ("rotate", "rotation"),
    [pytest.param(90, 270, id="ccw90"), pytest.param(-90, 90, id="cw90"), pytest.param(180, 180, id="180")],
)
def test_rotation_swaps_display_size(clip, rotate, rotation):
    v = probe(clip(f"rot{rotate}", rotate=rotate)).video
    assert v.rotation == rotation
    assert (v.width, v.height) == (320, 240)
    expected = (320, 240) if rotation == 180 else (240, 320)
    assert (v.display_width, v.display_height) == expected


def test_non_square_pixels(clip):
    v = probe(clip("sar43", sar="4:3")).video
    assert v.sample_aspect_ratio == Fraction(4, 3)
    assert (v.display_width, v.display_height) == (427, 240)


def test_odd_dimensions(clip):
    v = probe(clip("odd", width=321, height=241, audio_channels=None)).video
    assert (v.width, v.height, v.display_width, v.display_height) == (321, 241, 321, 241)


def test_variable_frame_rate(clip):
    assert probe(clip("vfr", vfr=True)).video.variable_frame_rate is True


def test_surround_audio(clip):
    a = probe(clip("51", audio_channels=6)).audio
    assert (a.channels, a.channel_layout) == (6, "5.1")


def test_audio_only(clip):
    info = probe(clip("audio", video=False, container="m4a"))
    assert info.video is None and info.audio.channels == 2


def test_cover_art_is_not_video(clip, ffmpeg, tmp_path):
    png = tmp_path / "cover.png"
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(png)], check=True)
    out = tmp_path / "song.m4a"
    audio = clip("audio", video=False, container="m4a")
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(audio), "-i", str(png), "-map", "0", "-map", "1",
         "-c", "copy", "-disposition:v:0", "attached_pic", str(out)],
        check=True,
    )  # fmt: skip
    info = probe(out)
    assert info.video is None and info.audio is not None


def test_vp8_webm(clip):
    info = probe(clip("webm", codec="libvpx", container="webm"))
    assert info.video.codec == "vp8" and info.audio.codec == "opus"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "empty", id="zero-bytes"),
        pytest.param(b"hello, this is not a video\n" * 20, "not a video or audio file", id="text"),
        pytest.param(b"\x00" * 4096, "not a video or audio file", id="zeros"),
        pytest.param(b"#EXTM3U\n#EXTINF:10,\nhttp://example.com/a.ts\n", "playlist|not a video", id="hls-playlist"),
    ],
)
def test_not_media(tmp_path, content, message):
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)
    with pytest.raises(InvalidMedia, match=message):
        probe(path)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_still_image_is_not_video(ffmpeg, tmp_path, suffix):
    path = tmp_path / f"img.{suffix}"
    subprocess.run([ffmpeg, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", str(path)], check=True)
    renamed = path.rename(tmp_path / "img.mp4")  # the extension must not fool it
    with pytest.raises(InvalidMedia, match="still image"):
        probe(renamed)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidMedia, match="cannot be read"):
        probe(tmp_path / "nope.mp4")


def test_truncated_mp4_is_refused_clearly(tmp_path):
    # ffmpeg writes the moov index last: cut in half, the file has no index.
    path = truncate(make_clip(tmp_path / "cut", duration=2.0), 0.5)
    with pytest.raises(InvalidMedia, match="truncated"):
        probe(path)


def test_truncated_matroska_still_probes(tmp_path):
    path = truncate(make_clip(tmp_path / "cut", duration=2.0, container="mkv"), 0.5)
    info = probe(path)
    assert info.video is not None and info.duration > 0
