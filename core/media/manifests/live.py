"""Live manifests from a `LivePresentation`: sliding-window HLS and a dynamic (then static) MPD.

HLS media playlist (RFC 8216bis §6.2.2, live): the window's segments, each
with EXT-X-PROGRAM-DATE-TIME (wall clock of its first frame), an
EXT-X-DISCONTINUITY where a reconnect started a new period and
EXT-X-DISCONTINUITY-SEQUENCE counting those that slid out of the window; no
EXT-X-PLAYLIST-TYPE (segments leave the window), EXT-X-ENDLIST once ended.

DASH (ISO/IEC 23009-1 §5.4, dynamic): availabilityStartTime is the wall
clock of media time 0, every source connection is a Period starting at its
own wall clock (presentationTimeOffset maps the continuous media timeline
into it), with publishTime, minimumUpdatePeriod, timeShiftBufferDepth (the
DVR window), suggestedPresentationDelay and a UTCTiming element pointing at
our own clock (players otherwise ask a public time server). Once ended the
MPD is static: the periods back to back, with a mediaPresentationDuration.
"""

from __future__ import annotations

import dataclasses
import math
import posixpath
from datetime import UTC, datetime
from fractions import Fraction
from itertools import groupby
from xml.etree import ElementTree as ET

from core.errors import NotFound
from core.media.live_model import LivePresentation
from core.media.manifests.dash import (
    MPD_NAMESPACE,
    PROFILE_LIVE,
    _audio_set,
    _family,
    _sub,
    _video_set,
    xs_duration,
)
from core.media.manifests.hls import VERSION, build_multivariant_playlist, is_hls_track
from core.media.manifests.select import append_query
from core.media.model import Track

UTC_TIMING_SCHEME = "urn:mpeg:dash:utc:http-iso:2014"
PRESENTATION_DELAY_SEGMENTS = 3  # players stay this many segments behind the live edge


def iso_time(unix: float) -> str:
    """RFC 3339 UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME and xs:dateTime both accept."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- HLS ------------------------------------------------------------------------------------


def render_live_multivariant_playlist(live: LivePresentation, *, query: str = "") -> str:
    return build_multivariant_playlist(live.presentation, query=query).render()


def render_live_media_playlist(live: LivePresentation, rendition: str, *, query: str = "") -> str:
    track = next((t for t in live.presentation.tracks if t.id == rendition), None)
    if track is None:
        raise NotFound(f"no rendition {rendition} in this live stream")
    if not is_hls_track(track):
        raise NotFound("HLS has no VP8; use the DASH manifest")
    if not track.segments:
        raise NotFound(f"rendition {rendition} has no segments yet")

    def here(uri: str) -> str:
        return append_query(posixpath.basename(uri), query)

    durations = [Fraction(s.duration, track.timescale) for s in track.segments]
    # Fixed for the stream's life (it must not change): the segment duration,
    # unless a segment rounds above it.
    target = max(math.ceil(live.segment_duration), *(round(d) for d in durations))
    first_period = live.period_index(track, track.segments[0])
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{track.segments[0].number}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{first_period}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{here(track.init_uri)}"',
    ]
    period = first_period
    for segment, duration in zip(track.segments, durations, strict=True):
        index = live.period_index(track, segment)
        if index != period:
            lines.append("#EXT-X-DISCONTINUITY")
            period = index
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_time(live.wall_clock(track, segment))}")
        lines.append(f"#EXTINF:{float(duration):.6f},")
        lines.append(here(track.segment_uri(segment.number)))
    if live.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


# -- DASH -----------------------------------------------------------------------------------


def _split_by_period(live: LivePresentation) -> list[tuple[int, list[Track]]]:
    """(period index, the tracks' segments in that period) for every period with segments in the window."""
    out: dict[int, list[Track]] = {}
    for track in live.presentation.tracks:
        for index, segments in groupby(track.segments, key=lambda s, t=track: live.period_index(t, s)):
            out.setdefault(index, []).append(dataclasses.replace(track, segments=list(segments)))
    return sorted(out.items())


def render_live_mpd(live: LivePresentation, *, query: str = "", time_url: str | None = None) -> str:
    """Dynamic MPD while live, static once ended; `time_url` is the UTCTiming clock (an absolute URL)."""
    video = [t for t in live.presentation.video_tracks if t.segments]
    audio = live.presentation.audio
    if not live.periods or (live.presentation.video_tracks and not video) or (audio is not None and not audio.segments):
        raise NotFound("DASH manifest not ready yet")
    periods = _split_by_period(live)
    all_tracks = [t for _, tracks in periods for t in tracks]
    longest = max(Fraction(s.duration, t.timescale) for t in all_tracks for s in t.segments)
    base = min(t.segments[0].start / t.timescale for t in periods[0][1])  # static: media time at 0
    attrs: dict[str, object] = {"profiles": PROFILE_LIVE}
    if live.ended:
        end = max((t.segments[-1].start + t.segments[-1].duration) / t.timescale for t in all_tracks)
        attrs.update(type="static", mediaPresentationDuration=xs_duration(max(0.0, end - base)))
    else:
        attrs.update(
            type="dynamic",
            availabilityStartTime=iso_time(live.availability_start),
            publishTime=iso_time(live.published_at),
            minimumUpdatePeriod=xs_duration(live.segment_duration),
            timeShiftBufferDepth=xs_duration(live.dvr_window),
            suggestedPresentationDelay=xs_duration(PRESENTATION_DELAY_SEGMENTS * live.segment_duration),
        )
    attrs.update(maxSegmentDuration=xs_duration(longest), minBufferTime=xs_duration(longest))
    mpd = ET.Element("MPD", {"xmlns": MPD_NAMESPACE, **{k: str(v) for k, v in attrs.items()}})
    for index, tracks in periods:
        period = live.periods[index]
        start = period.start - base if live.ended else period.wall - live.availability_start
        element = _sub(mpd, "Period", id=period.id, start=xs_duration(max(0.0, start)))
        vids = [t for t in tracks if not t.rendition.is_audio]
        set_id = 0
        for _, family in groupby(sorted(vids, key=_family), key=_family):
            _video_set(element, set_id, list(family), query)
            set_id += 1
        audio = sorted((t for t in tracks if t.rendition.is_audio), key=lambda t: not t.rendition.default)
        for position, track in enumerate(audio):
            _audio_set(element, set_id, track, query, default=position == 0)
            set_id += 1
        _offsets(element, tracks, period.start if not live.ended else max(period.start, base))
    if time_url and not live.ended:
        _sub(mpd, "UTCTiming", schemeIdUri=UTC_TIMING_SCHEME, value=time_url)
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"


def _offsets(period: ET.Element, tracks: list[Track], start: float) -> None:
    """presentationTimeOffset: the media time at the period's start, in each track's timescale."""
    timescales = {t.rendition.id: t.timescale for t in tracks}
    for representation in period.iter("Representation"):
        template = representation.find("SegmentTemplate")
        template.set("presentationTimeOffset", str(round(start * timescales[representation.get("id")])))
