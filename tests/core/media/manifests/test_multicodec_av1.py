"""AV1 beside H.264 in one multivariant playlist and one MPD (issue #17).

Players choose the family: hls.js and Shaka by what MSE can decode and which
family needs fewer bits, dash.js by @selectionPriority among the sets it can
decode. The AV1 track is added to the hand-built presentation of conftest.py.
"""

from __future__ import annotations

from fractions import Fraction
from xml.etree import ElementTree as ET

from core.media.manifests import render_multivariant_playlist
from core.media.manifests.dash import render_mpd

from .conftest import video
from .mpd_schema import validate_mpd

NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}


def with_av1(presentation):
    # peak 2 000 000 (segment 2), average 18.4e6 bits / 10.5 s = 1 752 381 (ceil)
    av1 = video("av1-720p", "av1", "av01.0.05M.08", 1280, 720, Fraction(30), 1_800_000, 15_360,
                [800_000, 1_000_000, 500_000])
    presentation.tracks = [t for t in presentation.tracks if t.rendition.codec in ("h264", "aac")] + [av1]
    return presentation


def test_multivariant_lists_both_families_with_the_audio_group(presentation):
    text = render_multivariant_playlist(with_av1(presentation))
    variants = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert variants == [
        '#EXT-X-STREAM-INF:BANDWIDTH=4128000,AVERAGE-BANDWIDTH=3556572,CODECS="avc1.64001f,mp4a.40.2",'
        'RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"',
        '#EXT-X-STREAM-INF:BANDWIDTH=1128000,AVERAGE-BANDWIDTH=1004191,CODECS="avc1.64001e,mp4a.40.2",'
        'RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO="audio"',
        '#EXT-X-STREAM-INF:BANDWIDTH=2128000,AVERAGE-BANDWIDTH=1880381,CODECS="av01.0.05M.08,mp4a.40.2",'
        'RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"',
    ]
    assert "av1-720p/index.m3u8" in text.splitlines()


def test_mpd_validates_and_prefers_the_av1_set(presentation):
    text = render_mpd(with_av1(presentation))
    validate_mpd(text)
    sets = ET.fromstring(text.split("\n", 1)[1]).findall("mpd:Period/mpd:AdaptationSet", NS)
    assert [
        ([r.get("codecs") for r in s.findall("mpd:Representation", NS)], s.get("selectionPriority"))
        for s in sets
    ] == [
        (["avc1.64001e", "avc1.64001f"], None),  # the schema's default, 1
        (["av01.0.05M.08"], "2"),
        (["mp4a.40.2"], None),
    ]
    assert sets[1].get("mimeType") == "video/mp4"
