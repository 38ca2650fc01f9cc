"""HLS playlists: exact text, bandwidth truth, token carrying, what HLS refuses."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from core.errors import BadRequest, NotFound
from core.media.manifests import render_media_playlist, render_multivariant_playlist
from core.media.model import Presentation, Protection, Segment

MULTIVARIANT = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=4128000,AVERAGE-BANDWIDTH=3556572,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"
h264-720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1128000,AVERAGE-BANDWIDTH=1004191,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO="audio"
h264-360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2628000,AVERAGE-BANDWIDTH=2299429,CODECS="hvc1.1.6.L93.B0,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="audio"
h265-720p/index.m3u8
"""

VOD_720P = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
00001.m4s
#EXTINF:4.000000,
00002.m4s
#EXTINF:2.500000,
00003.m4s
#EXT-X-ENDLIST
"""

# Still encoding: EVENT, no ENDLIST; a 4.004 s segment makes the target 5 (ceil).
EVENT_720P = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:5
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
00001.m4s
#EXTINF:4.004000,
00002.m4s
"""


def track(presentation: Presentation, rid: str):
    return next(t for t in presentation.tracks if t.id == rid)


def test_multivariant_playlist_exact(presentation):
    assert render_multivariant_playlist(presentation) == MULTIVARIANT


def test_media_playlist_vod_exact(presentation):
    assert render_media_playlist(track(presentation, "h264-720p"), ended=True) == VOD_720P


def test_media_playlist_event_exact(presentation):
    t = track(presentation, "h264-720p")
    t.segments = [Segment(1, 0, 360_000, 1), Segment(2, 360_000, 360_360, 1)]
    t.complete = False
    assert render_media_playlist(t, ended=False) == EVENT_720P


def test_media_sequence_is_first_segment_number(presentation):
    t = track(presentation, "audio")
    t.segments = [dataclasses.replace(s, number=s.number + 9) for s in t.segments]
    text = render_media_playlist(t, ended=True)
    assert "#EXT-X-MEDIA-SEQUENCE:10\n" in text
    assert text.splitlines()[-2] == "00012.m4s"


def test_event_playlist_stops_at_a_missing_segment(presentation):
    t = track(presentation, "h264-720p")
    del t.segments[1]
    text = render_media_playlist(t, ended=False)
    assert "00001.m4s" in text and "00003.m4s" not in text


def test_ended_playlist_with_a_missing_segment_is_an_error(presentation):
    t = track(presentation, "h264-720p")
    del t.segments[1]
    with pytest.raises(ValueError, match="gap"):
        render_media_playlist(t, ended=True)


def test_rounded_extinf_never_exceeds_target_duration(presentation):
    t = track(presentation, "h265-720p")
    t.segments = [Segment(1, 0, 30_000 * 4 + 15_000, 1), Segment(2, 135_000, 59_999, 1)]  # 4.5 s, 1.99 s
    lines = render_media_playlist(t, ended=True).splitlines()
    target = int(next(x for x in lines if x.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
    extinfs = [float(x[8:-1]) for x in lines if x.startswith("#EXTINF:")]
    assert target == 5 and all(round(d) <= target for d in extinfs)


def test_bandwidth_covers_peak_segment_bitrate(presentation):
    """BANDWIDTH ≥ the highest bitrate of any video segment + any audio segment, recomputed here."""
    def peak(t):
        return max(s.size * 8 * t.timescale / s.duration for s in t.segments)

    audio_peak = peak(track(presentation, "audio"))
    lines = render_multivariant_playlist(presentation).splitlines()
    checked = 0
    for tag, uri in zip(lines, lines[1:]):
        if tag.startswith("#EXT-X-STREAM-INF:"):
            bandwidth = int(re.search(r"BANDWIDTH=(\d+)", tag).group(1))
            average = int(re.search(r"AVERAGE-BANDWIDTH=(\d+)", tag).group(1))
            video = track(presentation, uri.split("/")[0])
            assert bandwidth >= math.ceil(peak(video) + audio_peak)
            assert average <= bandwidth
            checked += 1
    assert checked == 3


def test_token_is_carried_into_every_uri(presentation):
    query = "token=eyJhbGciOi.J9-x_y&exp=1700000000"
    texts = [render_multivariant_playlist(presentation, query=query)]
    cmaf = [t for t in presentation.tracks if t.container == "mp4"]
    texts += [render_media_playlist(t, ended=True, query=query) for t in cmaf]
    uris = []
    for text in texts:
        for line in text.splitlines():
            if line and not line.startswith("#"):
                uris.append(line)
            uris += re.findall(r'URI="([^"]*)"', line)
    # multivariant: audio EXT-X-MEDIA + 3 variants; 4 CMAF tracks × (EXT-X-MAP + 3 segments)
    assert len(uris) == 4 + 4 * 4
    assert all(uri.endswith("?" + query) for uri in uris), uris


def test_leading_question_mark_is_not_doubled(presentation):
    text = render_media_playlist(track(presentation, "audio"), ended=True, query="?token=a")
    assert '#EXT-X-MAP:URI="init.mp4?token=a"' in text


@pytest.mark.parametrize("query", ['token="x"', "token=a b", "token=a\nb", "token=a#frag"])
def test_unsafe_query_is_refused(presentation, query):
    with pytest.raises(BadRequest):
        render_multivariant_playlist(presentation, query=query)


def test_vp8_track_has_no_hls_playlist(presentation):
    with pytest.raises(NotFound, match="HLS has no VP8"):
        render_media_playlist(track(presentation, "vp8-360p"), ended=True)


def test_vp8_only_presentation_has_no_multivariant(presentation):
    presentation.tracks = [t for t in presentation.tracks if t.rendition.codec in ("vp8", "aac")]
    with pytest.raises(NotFound, match="use the DASH manifest"):
        render_multivariant_playlist(presentation)


def test_audio_only_presentation_is_one_variant(presentation):
    presentation.tracks = [track(presentation, "audio")]
    assert render_multivariant_playlist(presentation, query="t=1") == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"\n'
        "audio/index.m3u8?t=1\n"
    )


def test_video_without_audio_has_no_audio_group(presentation):
    presentation.tracks = [track(presentation, "h264-360p")]
    assert render_multivariant_playlist(presentation).splitlines()[3:] == [
        '#EXT-X-STREAM-INF:BANDWIDTH=1000000,AVERAGE-BANDWIDTH=876191,CODECS="avc1.64001e",'
        "RESOLUTION=640x360,FRAME-RATE=30.000",
        "h264-360p/index.m3u8",
    ]


def test_only_renditions_with_segments_are_listed(presentation):
    track(presentation, "h264-720p").segments = []
    text = render_multivariant_playlist(presentation)
    assert "h264-720p" not in text and "h264-360p/index.m3u8" in text


def test_no_video_segments_yet_is_not_found(presentation):
    for t in presentation.video_tracks:
        t.segments = []
    with pytest.raises(NotFound, match="not ready"):
        render_multivariant_playlist(presentation)


def test_audio_without_segments_is_not_ready(presentation):
    """Variants written before the audio exists would play silent: wait for it."""
    track(presentation, "audio").segments = []
    with pytest.raises(NotFound, match="audio"):
        render_multivariant_playlist(presentation)


def test_media_playlist_without_segments_is_not_found(presentation):
    t = track(presentation, "h264-720p")
    t.segments = []
    with pytest.raises(NotFound):
        render_media_playlist(t, ended=False)


def test_same_text_after_json_round_trip(presentation):
    again = Presentation.from_dict(presentation.to_dict())
    assert render_multivariant_playlist(again) == MULTIVARIANT


ENCRYPTED_720P = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,ABEiM0RVZneImaq7zN3u/w==",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"
#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="../keys/identity?token=t",KEYFORMAT="identity",KEYFORMATVERSIONS="1"
#EXT-X-MAP:URI="init.mp4?token=t"
#EXTINF:4.000000,
00001.m4s?token=t
#EXTINF:4.000000,
00002.m4s?token=t
#EXTINF:2.500000,
00003.m4s?token=t
#EXT-X-ENDLIST
"""


def test_encrypted_media_playlist_exact(presentation):
    """CENC segments as SAMPLE-AES-CTR: the KID (public) for EME ClearKey, the key URL (with the token) for identity."""
    protection = Protection(default_kid="00112233-4455-6677-8899-aabbccddeeff")
    got = render_media_playlist(track(presentation, "h264-720p"), ended=True, query="token=t", protection=protection)
    assert got == ENCRYPTED_720P


def test_encrypted_presentation_has_a_multivariant_playlist(presentation):
    clear = render_multivariant_playlist(presentation)
    presentation.protection = Protection(default_kid="00112233-4455-6677-8899-aabbccddeeff")
    assert render_multivariant_playlist(presentation) == clear  # the keys are in the media playlists
