from __future__ import annotations

import pytest

from core.errors import BadRequest, NotFound
from core.origin.paths import Kind, Target, check_playback_id, classify, segment_content_type


@pytest.mark.parametrize(("path", "expected"), [
    pytest.param("master.m3u8", Target(Kind.MASTER), id="master"),
    pytest.param("manifest.mpd", Target(Kind.MPD), id="mpd"),
    pytest.param("h264-720p/index.m3u8", Target(Kind.MEDIA_PLAYLIST, "h264-720p"), id="media-playlist"),
    pytest.param("h264-720p/init.mp4", Target(Kind.SEGMENT, "h264-720p", "init.mp4"), id="init"),
    pytest.param("audio/00001.m4s", Target(Kind.SEGMENT, "audio", "00001.m4s"), id="segment"),
    pytest.param("vp8-360p/init.webm", Target(Kind.SEGMENT, "vp8-360p", "init.webm"), id="webm-init"),
    pytest.param("vp8-360p/00012.webm", Target(Kind.SEGMENT, "vp8-360p", "00012.webm"), id="webm"),
])
def test_classify(path, expected):
    assert classify(path) == expected


@pytest.mark.parametrize("path", [
    pytest.param("../../sources/as_x/original", id="dotdot"),
    pytest.param("h264-720p/../../presentation.json", id="dotdot-inside"),
    pytest.param("./master.m3u8", id="dot"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("h264-720p\\init.mp4", id="backslash"),
    pytest.param("..\\..\\x", id="backslash-dotdot"),
    pytest.param("h264-720p/init.mp4\x00.m3u8", id="nul"),
    pytest.param("%2e%2e/%2e%2e/sources/a/original", id="still-encoded"),
    pytest.param("%252e%252e/x", id="double-encoded"),
    pytest.param("a" * 201, id="overlong"),
    pytest.param("h264-720p/init.mp4\n", id="newline"),
])
def test_hostile_paths_are_bad_requests(path):
    with pytest.raises(BadRequest):
        classify(path)


@pytest.mark.parametrize("path", [
    "presentation.json", "original", "sources/as_x/original", "h264-720p/", "h264-720p",
    "h264-720p/1.m4s", "h264-720p/00001.mp4", "H264/init.mp4", "-x/init.mp4", "a/b/init.mp4",
    "h264-720p/index.m3u8x", "master.m3u8/", "", "x" * 41 + "/init.mp4", "h264-720p/init.mp4.bak",
])
def test_anything_else_is_not_found(path):
    with pytest.raises(NotFound):
        classify(path)


@pytest.mark.parametrize("pid", ["", "ABC", "a" * 41, "a.b", "a-b", "..", "a%2f"])
def test_playback_id_shape(pid):
    with pytest.raises(NotFound):
        check_playback_id(pid)
    assert check_playback_id("abc123") == "abc123"


@pytest.mark.parametrize(("path", "content_type"), [
    ("h264-720p/init.mp4", "video/mp4"), ("h264-720p/00001.m4s", "video/mp4"),
    ("audio/init.mp4", "audio/mp4"), ("audio/00003.m4s", "audio/mp4"),
    ("vp8-360p/init.webm", "video/webm"), ("vp8-360p/00002.webm", "video/webm"),
])
def test_segment_content_types(path, content_type):
    assert segment_content_type(classify(path)) == content_type
