"""The MPD: schema-valid, exact for a small case, complete tracks only, token in every template."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import pytest

from core.errors import NotFound
from core.media.manifests import render_mpd
from core.media.manifests.dash import xs_duration
from core.media.model import Segment

from .mpd_schema import validate_mpd

NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}

SMALL = """\
<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" \
mediaPresentationDuration="PT10.5S" maxSegmentDuration="PT4S" minBufferTime="PT4S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" \
maxWidth="640" maxHeight="360" par="16:9" maxFrameRate="30">
      <Representation id="h264-360p" codecs="avc1.64001e" bandwidth="1000000" width="640" height="360" \
frameRate="30" sar="1:1">
        <SegmentTemplate timescale="90000" initialization="h264-360p/init.mp4?token=abc" \
media="h264-360p/$Number%05d$.m4s?token=abc" startNumber="1">
          <SegmentTimeline>
            <S t="0" d="360000" r="1" />
            <S d="225000" />
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="und" segmentAlignment="true" \
startWithSAP="1">
      <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2" />
      <Representation id="audio" codecs="mp4a.40.2" bandwidth="128000" audioSamplingRate="48000">
        <SegmentTemplate timescale="48000" initialization="audio/init.mp4?token=abc" \
media="audio/$Number%05d$.m4s?token=abc" startNumber="1">
          <SegmentTimeline>
            <S t="0" d="192000" r="1" />
            <S d="120000" />
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode())


def track(presentation, rid):
    return next(t for t in presentation.tracks if t.id == rid)


def test_small_mpd_exact(presentation):
    presentation.tracks = [track(presentation, "h264-360p"), track(presentation, "audio")]
    text = render_mpd(presentation, query="token=abc")
    assert text == SMALL
    validate_mpd(text)


def test_full_mpd_validates_and_groups_by_family(presentation):
    text = render_mpd(presentation)
    validate_mpd(text)
    sets = parse(text).findall("mpd:Period/mpd:AdaptationSet", NS)
    assert [
        (s.get("contentType"), s.get("mimeType"), [r.get("id") for r in s.findall("mpd:Representation", NS)])
        for s in sets
    ] == [
        ("video", "video/mp4", ["h264-360p", "h264-720p"]),
        ("video", "video/mp4", ["h265-720p"]),
        ("video", "video/webm", ["vp8-360p"]),
        ("audio", "audio/mp4", ["audio"]),
    ]
    assert sets[1].get("maxFrameRate") == "30000/1001"
    representations = parse(text).iter(f"{{{NS['mpd']}}}Representation")
    bandwidths = {r.get("id"): int(r.get("bandwidth")) for r in representations}
    assert bandwidths == {t.id: t.peak_bandwidth for t in presentation.tracks}


def test_token_is_in_every_template(presentation):
    query = "token=a.b-c_d&exp=17$0"  # `&` must be XML-escaped, `$` doubled in a template
    text = render_mpd(presentation, query=query)
    validate_mpd(text)
    templates = list(parse(text).iter(f"{{{NS['mpd']}}}SegmentTemplate"))
    assert len(templates) == 5
    for template in templates:
        assert template.get("initialization").endswith("?token=a.b-c_d&exp=17$$0")
        assert template.get("media").endswith(("m4s?token=a.b-c_d&exp=17$$0", "webm?token=a.b-c_d&exp=17$$0"))


def test_timeline_run_length_with_a_gap(presentation):
    t = track(presentation, "h264-720p")
    t.segments = [
        Segment(5, 900, 360_000, 1),
        Segment(6, 360_900, 360_000, 1),
        Segment(7, 720_900, 360_000, 1),
        Segment(8, 1_090_000, 360_000, 1),  # starts later than 7 ended: needs its own t
        Segment(9, 1_450_000, 90_000, 1),
    ]
    presentation.tracks = [t]
    text = render_mpd(presentation)
    validate_mpd(text)
    template = parse(text).find(".//mpd:SegmentTemplate", NS)
    assert template.get("startNumber") == "5"
    assert [s.attrib for s in template.findall("mpd:SegmentTimeline/mpd:S", NS)] == [
        {"t": "900", "d": "360000", "r": "2"},
        {"t": "1090000", "d": "360000"},
        {"d": "90000"},
    ]


def test_incomplete_tracks_are_left_out(presentation):
    track(presentation, "h265-720p").complete = False
    track(presentation, "vp8-360p").complete = False
    text = render_mpd(presentation)
    validate_mpd(text)
    assert "h265" not in text and "vp8" not in text and "h264-720p" in text


def test_not_ready_until_a_video_track_is_complete(presentation):
    for t in presentation.video_tracks:
        t.complete = False
    with pytest.raises(NotFound, match="DASH manifest not ready yet"):
        render_mpd(presentation)


def test_not_ready_until_audio_is_complete(presentation):
    track(presentation, "audio").complete = False
    with pytest.raises(NotFound, match="DASH manifest not ready yet"):
        render_mpd(presentation)


def test_audio_only_mpd_validates(presentation):
    presentation.tracks = [track(presentation, "audio")]
    validate_mpd(render_mpd(presentation))


def test_publish_time_from_now(presentation):
    now = datetime(2024, 5, 6, 9, 30, 15, 999, tzinfo=timezone(timedelta(hours=2)))
    text = render_mpd(presentation, now=now)
    validate_mpd(text)
    assert parse(text).get("publishTime") == "2024-05-06T07:30:15Z"
    assert "publishTime" not in render_mpd(presentation)  # same bytes per request otherwise


def test_gap_in_segment_numbers_is_an_error(presentation):
    del track(presentation, "h264-720p").segments[1]
    with pytest.raises(ValueError, match="gap"):
        render_mpd(presentation)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "PT0S"),
        (4, "PT4S"),
        (10.5, "PT10.5S"),
        (12.345, "PT12.345S"),
        (4.0001, "PT4.001S"),  # rounded up: never shorter than the media
        (3600.25, "PT3600.25S"),
    ],
)
def test_xs_duration(seconds, text):
    assert xs_duration(seconds) == text


def test_validate_mpd_rejects_a_broken_mpd(presentation):
    """The helper others rely on must fail, not pass, on a schema error."""
    broken = render_mpd(presentation).replace(' bandwidth="1000000"', "", 1)
    with pytest.raises(AssertionError, match="bandwidth"):
        validate_mpd(broken)
