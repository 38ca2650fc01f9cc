"""Live manifests from a `LivePresentation`: sliding-window HLS and a dynamic (then static) MPD.

HLS media playlist (RFC 8216bis §6.2.2, live): the window's segments, each
with EXT-X-PROGRAM-DATE-TIME (wall clock of its first frame), an
EXT-X-DISCONTINUITY where a reconnect started a new period and
EXT-X-DISCONTINUITY-SEQUENCE counting those that slid out of the window; no
EXT-X-PLAYLIST-TYPE (segments leave the window), EXT-X-ENDLIST once ended.

Low-latency HLS (RFC 8216bis §4.4.3.7-8, §4.4.4.9, §4.4.5.2-3, §6.2.5), when
the stream has parts: EXT-X-SERVER-CONTROL (blocking reload, delta updates
back to CAN-SKIP-UNTIL = 6 target durations, PART-HOLD-BACK = 3 part
targets), EXT-X-PART-INF, EXT-X-PART for the parts of the last segments and
of the one being written, an EXT-X-PRELOAD-HINT for the next part and an
EXT-X-RENDITION-REPORT per sibling rendition (so a player switching rungs
knows where their edge is without a round trip). A delta update (`skip`)
replaces the segments before the skip boundary with EXT-X-SKIP.

DASH (ISO/IEC 23009-1 §5.4, dynamic): availabilityStartTime is the wall
clock of media time 0, every source connection is a Period starting at its
own wall clock (presentationTimeOffset maps the continuous media timeline
into it), with publishTime, minimumUpdatePeriod, timeShiftBufferDepth (the
DVR window), suggestedPresentationDelay and a UTCTiming element pointing at
our own clock (players otherwise ask a public time server). Once ended the
MPD is static: the periods back to back, with a mediaPresentationDuration.

Low-latency DASH (DASH-IF "Low-latency Modes for DASH", from the same CMAF
parts as LL-HLS), while a stream with parts is live: each SegmentTemplate
gets availabilityTimeOffset = segment duration - part duration (a segment
can be requested once its first part is out: the origin answers it with
chunked transfer as its parts are published) and
availabilityTimeComplete="false"; the timeline announces the segment being
written (one more S, the previous segment's duration: fixed GOPs; the next
MPD corrects it if the encoder cut it otherwise), since a player requests
only segments its timeline lists; a ServiceDescription gives the latency
target and the catch-up playback rates (`service_latency`).
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
from core.media.live_model import LivePresentation, Part, part_uri
from core.media.manifests.dash import (
    MPD_NAMESPACE,
    PROFILE_LIVE,
    _audio_set,
    _family,
    _sub,
    _video_set,
    xs_duration,
)
from core.media.manifests.dash import absolute_licence_urls, protection_namespaces
from core.media.manifests.hls import MEDIA_PLAYLIST_NAME, VERSION, build_keys, build_multivariant_playlist, is_hls_track
from core.media.manifests.select import append_query
from core.media.model import Track

UTC_TIMING_SCHEME = "urn:mpeg:dash:utc:http-iso:2014"
PRESENTATION_DELAY_SEGMENTS = 3  # players stay this many segments behind the live edge
LL_VERSION = 9  # EXT-X-SKIP needs 9 (RFC 8216bis §7)
PART_HOLD_BACK_PARTS = 3  # the spec's minimum is 2; Apple and the issue ask for 3
SKIP_TARGET_DURATIONS = 6  # CAN-SKIP-UNTIL: the spec's minimum
# LL-DASH catch-up: ±4 % is not heard on speech or music (the DASH-IF LL example's values); dash.js
# speeds up to this rate while behind the latency target and slows down when ahead of it.
CATCHUP_RATES = (0.96, 1.04)


def iso_time(unix: float) -> str:
    """RFC 3339 UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME and xs:dateTime both accept."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- HLS ------------------------------------------------------------------------------------


def render_live_multivariant_playlist(live: LivePresentation, *, query: str = "") -> str:
    return build_multivariant_playlist(live.presentation, query=query).render()


def part_target_duration(live: LivePresentation) -> float:
    """EXT-X-PART-INF's PART-TARGET: the configured target, or the longest part if the muxer rounded above it.

    The dash muxer cuts fragments on whole frames (0.25 s at 30 fps gives 8
    frames, 0.267 s) and every part must be at most PART-TARGET; for a fixed
    frame rate that longest part is the same from the first part on.
    """
    longest = 0.0
    for track in live.presentation.tracks:
        for part in live.parts.get(track.id, ()):
            longest = max(longest, part.duration / track.timescale)
    return math.ceil(max(live.part_target or 0.0, longest) * 1000 - 1e-6) / 1000


def last_part(live: LivePresentation, track: Track) -> tuple[int, int] | None:
    """(media sequence number, part index) of the newest part of `track`, None without parts."""
    parts = live.parts.get(track.id)
    if not parts:
        return None
    return parts[-1].segment, parts[-1].index


def next_part(live: LivePresentation, track: Track) -> tuple[int, int]:
    """(msn, part) of the part the encoder writes next: the preload hint, and what blocking requests wait for."""
    parts = live.parts.get(track.id)
    complete = track.segments[-1].number if track.segments else 0
    if parts and parts[-1].segment > complete:
        return parts[-1].segment, parts[-1].index + 1
    return complete + 1, 0


def _media_track(live: LivePresentation, rendition: str) -> Track:
    track = next((t for t in live.presentation.tracks if t.id == rendition), None)
    if track is None:
        raise NotFound(f"no rendition {rendition} in this live stream")
    if not is_hls_track(track):
        raise NotFound("HLS has no VP8; use the DASH manifest")
    if not track.segments:
        raise NotFound(f"rendition {rendition} has no segments yet")
    return track


def render_live_media_playlist(live: LivePresentation, rendition: str, *, query: str = "",
                               skip: bool = False) -> str:
    """The live media playlist; LL-HLS tags when the stream has parts; `skip`: a delta update (§6.2.5.1)."""
    track = _media_track(live, rendition)
    low = live.low_latency and not live.ended

    def here(uri: str) -> str:
        return append_query(posixpath.basename(uri), query)

    durations = [Fraction(s.duration, track.timescale) for s in track.segments]
    # Fixed for the stream's life (it must not change): the segment duration,
    # unless a segment rounds above it.
    target = max(math.ceil(live.segment_duration), *(round(d) for d in durations))
    first_period = live.period_index(track, track.segments[0])
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{max(VERSION, LL_VERSION) if low else VERSION}",
             f"#EXT-X-TARGETDURATION:{target}"]
    skipped = 0
    if low:
        part_target = part_target_duration(live)
        skip_until = SKIP_TARGET_DURATIONS * target
        lines.append(f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until:.1f},"
                     f"PART-HOLD-BACK={PART_HOLD_BACK_PARTS * part_target:.3f}")
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={part_target:.3f}")
        if skip:
            skipped = _skippable(durations, skip_until)
    lines += [
        f"#EXT-X-MEDIA-SEQUENCE:{track.segments[0].number}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{first_period}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        # An encrypted stream: the VOD key tags (they apply to every segment and part; before any
        # EXT-X-SKIP, so a delta update keeps them).
        *(k.render() for k in build_keys(live.presentation.protection, query)),
        f'#EXT-X-MAP:URI="{here(track.init_uri)}"',
    ]
    if skipped:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    parts: dict[int, list[Part]] = {}
    for part in live.parts.get(track.id, ()) if low else ():
        parts.setdefault(part.segment, []).append(part)

    def part_lines(number: int) -> list[str]:
        return [f'#EXT-X-PART:DURATION={p.duration / track.timescale:.5f},URI="{here(p.uri(track))}"'
                + (",INDEPENDENT=YES" if p.independent else "") for p in parts.get(number, ())]

    period = live.period_index(track, track.segments[skipped]) if skipped else first_period
    for segment, duration in list(zip(track.segments, durations, strict=True))[skipped:]:
        index = live.period_index(track, segment)
        if index != period:
            lines.append("#EXT-X-DISCONTINUITY")
            period = index
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso_time(live.wall_clock(track, segment))}")
        lines += part_lines(segment.number)
        lines.append(f"#EXTINF:{float(duration):.6f},")
        lines.append(here(track.segment_uri(segment.number)))
    if low:
        msn, index = next_part(live, track)
        lines += part_lines(msn)  # the segment being written (no EXTINF yet)
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{here(part_uri(track, msn, index))}"')
        for sibling in live.presentation.tracks:
            report = last_part(live, sibling) if sibling.id != track.id and is_hls_track(sibling) else None
            if report is not None:
                uri = append_query(f"../{sibling.id}/{MEDIA_PLAYLIST_NAME}", query)
                lines.append(f'#EXT-X-RENDITION-REPORT:URI="{uri}",LAST-MSN={report[0]},LAST-PART={report[1]}')
    if live.ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _skippable(durations: list[Fraction], skip_until: float) -> int:
    """How many leading segments a delta update may skip: those that end before the skip boundary."""
    remaining = sum(durations, Fraction(0))
    skipped = 0
    for duration in durations:
        if remaining - duration < skip_until:  # this segment reaches into the last CAN-SKIP-UNTIL seconds
            break
        remaining -= duration
        skipped += 1
    return skipped


# -- DASH -----------------------------------------------------------------------------------


def _split_by_period(live: LivePresentation) -> list[tuple[int, list[Track]]]:
    """(period index, the tracks' segments in that period) for every period with segments in the window."""
    out: dict[int, list[Track]] = {}
    for track in live.presentation.tracks:
        for index, segments in groupby(track.segments, key=lambda s, t=track: live.period_index(t, s)):
            out.setdefault(index, []).append(dataclasses.replace(track, segments=list(segments)))
    return sorted(out.items())


def render_live_mpd(live: LivePresentation, *, query: str = "", time_url: str | None = None,
                    playback_root: str = "") -> str:
    """Dynamic MPD while live, static once ended; `time_url` is the UTCTiming clock (an absolute URL);
    `playback_root` the public URL of `/play/{id}` (an encrypted stream's licence URL goes under it)."""
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
    low = live.low_latency and not live.ended
    if low:
        latency = service_latency(live)
        attrs["suggestedPresentationDelay"] = xs_duration(latency[1] / 1000)  # players without ServiceDescription
    protection = live.presentation.protection  # an encrypted stream: ContentProtection as for VOD
    mpd = ET.Element("MPD", {"xmlns": MPD_NAMESPACE, **protection_namespaces(protection),
                             **{k: str(v) for k, v in attrs.items()}})
    if low:  # before the Periods, as the schema orders MPD's children
        service = _sub(mpd, "ServiceDescription", id=0)
        _sub(service, "Latency", min=latency[0], target=latency[1], max=latency[2])
        _sub(service, "PlaybackRate", min=CATCHUP_RATES[0], max=CATCHUP_RATES[1])
    for index, tracks in periods:
        period = live.periods[index]
        start = period.start - base if live.ended else period.wall - live.availability_start
        element = _sub(mpd, "Period", id=period.id, start=xs_duration(max(0.0, start)))
        vids = [t for t in tracks if not t.rendition.is_audio]
        set_id = 0
        for _, family in groupby(sorted(vids, key=_family), key=_family):
            _video_set(element, set_id, list(family), query, protection)
            set_id += 1
        audio = sorted((t for t in tracks if t.rendition.is_audio), key=lambda t: not t.rendition.default)
        for position, track in enumerate(audio):
            _audio_set(element, set_id, track, query, default=position == 0, protection=protection)
            set_id += 1
        _offsets(element, tracks, period.start if not live.ended else max(period.start, base))
        if low and index == periods[-1][0]:
            _low_latency_templates(element, tracks, live)
    if time_url and not live.ended:
        _sub(mpd, "UTCTiming", schemeIdUri=UTC_TIMING_SCHEME, value=time_url)
    absolute_licence_urls(mpd, playback_root)
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"


def _offsets(period: ET.Element, tracks: list[Track], start: float) -> None:
    """presentationTimeOffset: the media time at the period's start, in each track's timescale."""
    timescales = {t.rendition.id: t.timescale for t in tracks}
    for representation in period.iter("Representation"):
        template = representation.find("SegmentTemplate")
        template.set("presentationTimeOffset", str(round(start * timescales[representation.get("id")])))


def service_latency(live: LivePresentation) -> tuple[int, int, int]:
    """ServiceDescription Latency (min, target, max) in ms, for dash.js's catch-up.

    target: the LL-HLS hold-back (PART-HOLD-BACK, 3 parts) plus one part, so
    both protocols aim at the same latency: HLS counts its hold-back from
    the newest part published, which on average is half a part old, while
    dash.js counts from the wall clock now, and a frame is only published
    once the part holding it is whole. min: 2 parts (RFC 8216bis's least
    PART-HOLD-BACK; closer, the player waits on the part being written).
    max: a standard-latency player's delay (PRESENTATION_DELAY_SEGMENTS
    segments): past it low latency has failed and dash.js seeks to the target.
    """
    part = part_target_duration(live)
    target = (PART_HOLD_BACK_PARTS + 1) * part
    maximum = max(PRESENTATION_DELAY_SEGMENTS * live.segment_duration, 2 * target)
    return round(2 * part * 1000), round(target * 1000), round(maximum * 1000)


def _low_latency_templates(period: ET.Element, tracks: list[Track], live: LivePresentation) -> None:
    """availabilityTimeOffset/Complete on each SegmentTemplate, and the segment being written in its timeline."""
    offset = max(0.0, live.segment_duration - part_target_duration(live))
    by_id = {t.rendition.id: t for t in tracks}
    for representation in period.iter("Representation"):
        template = representation.find("SegmentTemplate")
        template.set("availabilityTimeOffset", f"{offset:.3f}".rstrip("0").rstrip("."))
        template.set("availabilityTimeComplete", "false")
        last = by_id[representation.get("id")].segments[-1]
        timeline = template.find("SegmentTimeline")
        run = timeline[-1]
        if int(run.get("d")) == last.duration:
            run.set("r", str(int(run.get("r", "0")) + 1))
        else:
            _sub(timeline, "S", d=last.duration)
