"""Manifests of a presentation whose first segment is shorter (ABR_FIRST_SEGMENT_DURATION): exact text.

Video at 90 kHz: segments of 1, 3, 4 and 2 s (keyframes at 0, 1, 4, 8; 10 s in
all); audio at 48 kHz in whole 4 s segments (4, 4, 2). HLS: EXT-X-TARGETDURATION
is the longest segment, each EXTINF its own; DASH: the SegmentTimeline lists
each duration (no `duration` + `$Number$` arithmetic, which a short first
segment would put off by 3 s from the second segment on).
"""

from __future__ import annotations

from fractions import Fraction

from core.media.manifests import render_media_playlist, render_mpd
from core.media.model import Presentation, Rendition, Segment, Track

from .conftest import segments
from .mpd_schema import validate_mpd


def _segments(timescale: int, seconds: list[float], size: int) -> list[Segment]:
    """The shared builder, with each segment's size proportional to its length (`size` bytes per second)."""
    return segments(timescale, [int(size * secs) for secs in seconds], seconds=seconds)


def short_first() -> Presentation:
    video = Track(Rendition("h264-360p", "h264", width=640, height=360, bitrate=800_000, frame_rate=Fraction(30)),
                  "avc1.64001e", "mp4", 90_000, _segments(90_000, [1, 3, 4, 2], 100_000), complete=True)
    audio = Track(Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48_000), "mp4a.40.2", "mp4",
                  48_000, _segments(48_000, [4, 4, 2], 16_000), complete=True)
    return Presentation(segment_duration=4.0, tracks=[video, audio], complete=True)


HLS_VIDEO = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:1.000000,
00001.m4s
#EXTINF:3.000000,
00002.m4s
#EXTINF:4.000000,
00003.m4s
#EXTINF:2.000000,
00004.m4s
#EXT-X-ENDLIST
"""

MPD = """\
<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" \
mediaPresentationDuration="PT10S" maxSegmentDuration="PT4S" minBufferTime="PT4S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" \
maxWidth="640" maxHeight="360" par="16:9" maxFrameRate="30">
      <Representation id="h264-360p" codecs="avc1.64001e" bandwidth="800000" width="640" height="360" \
frameRate="30" sar="1:1">
        <SegmentTemplate timescale="90000" initialization="h264-360p/init.mp4" \
media="h264-360p/$Number%05d$.m4s" startNumber="1">
          <SegmentTimeline>
            <S t="0" d="90000" />
            <S d="270000" />
            <S d="360000" />
            <S d="180000" />
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="und" segmentAlignment="true" \
startWithSAP="1">
      <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" \
value="2" />
      <Representation id="audio" codecs="mp4a.40.2" bandwidth="128000" audioSamplingRate="48000">
        <SegmentTemplate timescale="48000" initialization="audio/init.mp4" media="audio/$Number%05d$.m4s" \
startNumber="1">
          <SegmentTimeline>
            <S t="0" d="192000" r="1" />
            <S d="96000" />
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""


def test_hls_media_playlist_with_a_short_first_segment_exact():
    assert render_media_playlist(short_first().tracks[0], ended=True) == HLS_VIDEO


def test_hls_target_duration_does_not_change_as_the_track_grows():
    """RFC 8216 6.2.1: the target must not change. With only the 1 s first segment out, the asset's segment
    duration (4 s) is the floor, so it stays 4 from the first playlist to the last."""
    presentation = short_first()
    track = presentation.tracks[0]
    segments = track.segments
    targets = set()
    for n in range(1, len(segments) + 1):
        track.segments, track.complete = segments[:n], n == len(segments)
        text = render_media_playlist(track, ended=track.complete, segment_duration=presentation.segment_duration)
        targets.add(text.split("#EXT-X-TARGETDURATION:")[1].split("\n")[0])
    assert targets == {"4"}
    # Without the floor, the first playlist would say 1 (the origin always passes it).
    track.segments, track.complete = segments[:1], False
    assert "#EXT-X-TARGETDURATION:1\n" in render_media_playlist(track, ended=False)


def test_mpd_with_a_short_first_segment_exact():
    text = render_mpd(short_first())
    assert text == MPD
    validate_mpd(text)
