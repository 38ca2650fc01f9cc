"""The DASH MPD (ISO/IEC 23009-1) written from what was produced.

One static MPD, one Period; an AdaptationSet per video codec family (H.264
and H.265 and AV1 as CMAF, VP8 as WebM) and one AAC audio set per audio track (language, Role). Each
Representation has its own SegmentTemplate because its files live in its own
directory. A track appears only once it is complete: a static MPD promises
every segment it describes.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from fractions import Fraction
from itertools import groupby
from xml.etree import ElementTree as ET

from core.errors import NotFound
from core.media.encryption import CLEARKEY, KEY_SYSTEMS, MP4_PROTECTION_SCHEME
from core.media.model import VIDEO_CODECS, Presentation, Protection, TextTrack, Track
from core.media.manifests.select import append_query

MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILE_LIVE = "urn:mpeg:dash:profile:isoff-live:2011"  # SegmentTemplate with $Number$
AUDIO_CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
TEXT_BANDWIDTH = 256  # bits/s: a nominal figure (the schema requires one); a WebVTT file is tiny


def xs_duration(seconds: Fraction | float) -> str:
    """`PT12.345S`: rounded up to the millisecond so a duration never cuts media off."""
    # A float goes through its shortest repr: Fraction(12.345) is a hair above 12.345.
    exact = Fraction(repr(seconds)) if isinstance(seconds, float) else Fraction(seconds)
    millis = math.ceil(exact * 1000)
    whole, frac = divmod(millis, 1000)
    if not frac:
        return f"PT{whole}S"
    return f"PT{whole}.{frac:03d}".rstrip("0") + "S"


def _ratio(width: int, height: int) -> str:
    g = math.gcd(width, height)
    return f"{width // g}:{height // g}"


def _template_literal(text: str) -> str:
    # In a SegmentTemplate, `$` opens an identifier; a literal one is written `$$`.
    return text.replace("$", "$$")


def _sub(parent: ET.Element, tag: str, **attrs: object) -> ET.Element:
    # Tags stay unqualified: the root's default `xmlns` puts them in the MPD namespace.
    return ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})


def _segment_timeline(parent: ET.Element, track: Track) -> None:
    """`S t d r`, run-length encoded; `t` on the first S and after any gap or overlap."""
    timeline = _sub(parent, "SegmentTimeline")
    expected: int | None = None
    runs: list[dict] = []
    for seg in sorted(track.segments, key=lambda s: s.number):
        last = runs[-1] if runs else None
        if last and seg.start == expected and seg.duration == last["d"]:
            last["r"] += 1
        else:
            runs.append({"t": None if seg.start == expected else seg.start, "d": seg.duration, "r": 0})
        expected = seg.start + seg.duration
    for run in runs:
        attrs = {}
        if run["t"] is not None:
            attrs["t"] = run["t"]
        attrs["d"] = run["d"]
        if run["r"]:
            attrs["r"] = run["r"]
        _sub(timeline, "S", **attrs)


def _segment_template(parent: ET.Element, track: Track, query: str) -> None:
    numbers = sorted(s.number for s in track.segments)
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        # $Number$ counts S entries, so a missing number would misaddress the rest.
        raise ValueError(f"rendition {track.id} has a gap in its segment numbers")
    media = f"{track.id}/$Number%05d$.{track.extension}"
    template = _sub(
        parent,
        "SegmentTemplate",
        timescale=track.timescale,
        initialization=append_query(_template_literal(track.init_uri), _template_literal(query)),
        media=append_query(media, _template_literal(query)),
        startNumber=numbers[0],
    )
    _segment_timeline(template, track)


def _representation(parent: ET.Element, track: Track, query: str) -> None:
    r = track.rendition
    attrs: dict[str, object] = {"id": r.id, "codecs": track.codecs, "bandwidth": track.peak_bandwidth}
    if r.is_audio:
        if r.sample_rate:
            attrs["audioSamplingRate"] = r.sample_rate
    else:
        if r.width and r.height:
            attrs.update(width=r.width, height=r.height)
        if r.frame_rate:
            attrs["frameRate"] = str(r.frame_rate)  # "30" or "30000/1001", as the schema wants
        attrs["sar"] = "1:1"  # the encoder scales to square pixels
    representation = _sub(parent, "Representation", **attrs)
    _segment_template(representation, track, query)


CENC_NAMESPACE = "urn:mpeg:cenc:2013"
DASHIF_NAMESPACE = "https://dashif.org/CPS"  # dashif:Laurl: the licence URL (dash.js, Shaka)
CLEARKEY_VALUE = "ClearKey1.0"


def _content_protection(adaptation_set: ET.Element, protection: Protection | None, mime_type: str,
                        query: str) -> None:
    """CENC signalling (DASH-IF IOP 7.7.2): the mp4protection descriptor with the KID, then one per key system."""
    if protection is None or not mime_type.endswith("/mp4"):
        return
    _sub(adaptation_set, "ContentProtection", schemeIdUri=MP4_PROTECTION_SCHEME, value=protection.scheme,
         **{"cenc:default_KID": protection.default_kid})
    for name in protection.key_systems:
        system = KEY_SYSTEMS[name]
        descriptor = _sub(adaptation_set, "ContentProtection", schemeIdUri=f"urn:uuid:{system.system_id}",
                          value=CLEARKEY_VALUE if system is CLEARKEY else name)
        _sub(descriptor, "dashif:Laurl").text = append_query(system.license_path, query)


def absolute_licence_urls(mpd: ET.Element, playback_root: str) -> None:
    """Every `dashif:Laurl` made absolute under `playback_root` (`https://host/play/{id}`).

    A relative Laurl is not resolved against the MPD's URL by the players: dash.js
    5.2.1 requests its text as is and Shaka resolves it against the page, so a
    player page not under `/play/{id}/` would post its licence request elsewhere.
    """
    if not playback_root:
        return
    for laurl in mpd.iter("dashif:Laurl"):
        laurl.text = f"{playback_root.rstrip('/')}/{laurl.text}"


def protection_namespaces(protection: Protection | None) -> dict[str, str]:
    """The MPD's namespace declarations for `_content_protection`'s elements (none when clear)."""
    return {"xmlns:cenc": CENC_NAMESPACE, "xmlns:dashif": DASHIF_NAMESPACE} if protection else {}


# ISO/IEC 23009-1 @selectionPriority (default 1): among the video sets a player can decode, the
# higher one is chosen first. AV1 needs the fewest bits for the picture, so a player that decodes it
# should take it: dash.js honours this (Shaka does not: the embed player sets its preferredVideo),
# and a player that cannot decode AV1 drops the set and plays H.264.
SELECTION_PRIORITY: dict[str, int] = {"av1": 2}


def _video_set(period: ET.Element, set_id: int, tracks: list[Track], query: str,
               protection: Protection | None = None) -> None:
    tracks = sorted(tracks, key=lambda t: t.peak_bandwidth)  # ascending, as players list them
    biggest = max(tracks, key=lambda t: t.rendition.width * t.rendition.height)
    attrs: dict[str, object] = {
        "id": set_id,
        "contentType": "video",
        "mimeType": tracks[0].mime_type,
        "segmentAlignment": "true",  # closed GOPs aligned at every boundary in every rung
        "startWithSAP": 1,
    }
    if biggest.rendition.width and biggest.rendition.height:
        attrs.update(
            maxWidth=max(t.rendition.width for t in tracks),
            maxHeight=max(t.rendition.height for t in tracks),
            # Rungs are rounded to even sizes, so take the top rung's shape as the set's.
            par=_ratio(biggest.rendition.width, biggest.rendition.height),
        )
    rates = [t.rendition.frame_rate for t in tracks if t.rendition.frame_rate]
    if rates:
        attrs["maxFrameRate"] = str(max(rates))
    priority = SELECTION_PRIORITY.get(tracks[0].rendition.codec)
    if priority:
        attrs["selectionPriority"] = priority
    adaptation_set = _sub(period, "AdaptationSet", **attrs)
    _content_protection(adaptation_set, protection, tracks[0].mime_type, query)
    for track in tracks:
        _representation(adaptation_set, track, query)


# Audio description for the blind (DVB / DASH-IF IOP 6.6.4: AudioPurposeCS value 1).
AUDIO_PURPOSE_SCHEME = "urn:tva:metadata:cs:AudioPurposeCS:2007"


def _audio_role(audio: Track, default: bool) -> str | None:
    """The Role of one audio set; None for the classic single, unlabelled track (output unchanged)."""
    r = audio.rendition
    if r.role:
        return r.role
    if r.language or r.name or r.default:
        return "main" if default else "alternate"
    return None


def _audio_set(period: ET.Element, set_id: int, audio: Track, query: str, default: bool = True,
               protection: Protection | None = None) -> None:
    """One AdaptationSet per audio track: `lang` and `Role` are what dash.js/Shaka build their menus from."""
    r = audio.rendition
    adaptation_set = _sub(
        period,
        "AdaptationSet",
        id=set_id,
        contentType="audio",
        mimeType=audio.mime_type,
        lang=r.language or "und",
        segmentAlignment="true",
        startWithSAP=1,
    )
    if r.channels:
        _sub(
            adaptation_set,
            "AudioChannelConfiguration",
            schemeIdUri=AUDIO_CHANNEL_SCHEME,
            value=r.channels,
        )
    _content_protection(adaptation_set, protection, audio.mime_type, query)
    if r.name:
        _sub(adaptation_set, "Label").text = r.name
    if r.role == "description":
        _sub(adaptation_set, "Accessibility", schemeIdUri=AUDIO_PURPOSE_SCHEME, value=1)
    role = _audio_role(audio, default)
    if role is not None:
        _sub(adaptation_set, "Role", schemeIdUri=ROLE_SCHEME, value=role)
    _representation(adaptation_set, audio, query)


def _text_set(period: ET.Element, set_id: int, text: TextTrack, query: str) -> None:
    """A side-loaded WebVTT file: one Representation whose BaseURL is the whole file (dash.js, Shaka)."""
    adaptation_set = _sub(period, "AdaptationSet", id=set_id, contentType="text", mimeType="text/vtt",
                          lang=text.language)
    role = "main" if text.default else "subtitle"
    _sub(adaptation_set, "Role", schemeIdUri=ROLE_SCHEME, value=role)
    representation = _sub(adaptation_set, "Representation", id=f"text-{text.id}", bandwidth=TEXT_BANDWIDTH)
    if text.name:
        _sub(representation, "Label").text = text.name
    _sub(representation, "BaseURL").text = append_query(text.uri, query)


def _published(presentation: Presentation) -> tuple[list[Track], list[Track]]:
    """The complete video tracks and audio tracks, or NotFound while the MPD cannot be written yet."""
    video = [t for t in presentation.video_tracks if t.complete and t.segments]
    audio = presentation.audio_tracks
    if presentation.video_tracks and not video:
        raise NotFound("DASH manifest not ready yet")
    if any(not (t.complete and t.segments) for t in audio):
        # Video without its audio would be cached and played silent.
        raise NotFound("DASH manifest not ready yet")
    if not video and not audio:
        raise NotFound("DASH manifest not ready yet")
    return video, audio


def _family(track: Track) -> int:
    codec = track.rendition.codec
    return VIDEO_CODECS.index(codec) if codec in VIDEO_CODECS else len(VIDEO_CODECS)


def render_mpd(presentation: Presentation, *, query: str = "", now: datetime | None = None,
               playback_root: str = "") -> str:
    """The static MPD of every complete track, each URI template carrying `query`.

    `now` becomes `publishTime`; left out, the MPD is a pure function of the
    presentation (same bytes, same ETag on every request). `playback_root`: the
    absolute URL of `/play/{id}`, for an encrypted asset's licence URL.
    """
    video, audio = _published(presentation)
    tracks = video + audio
    duration = max(Fraction(sum(s.duration for s in t.segments), t.timescale) for t in tracks)
    longest = max(Fraction(s.duration, t.timescale) for t in tracks for s in t.segments)
    attrs = {
        "profiles": PROFILE_LIVE,
        "type": "static",
        "mediaPresentationDuration": xs_duration(duration),
        "maxSegmentDuration": xs_duration(longest),
        # A player needs one whole segment before it can play without stalling.
        "minBufferTime": xs_duration(longest),
    }
    if now is not None:
        attrs["publishTime"] = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # The stdlib writer (no runtime lxml): `xmlns` set as a plain attribute avoids
    # ElementTree's process-wide namespace registry.
    protection = presentation.protection
    mpd = ET.Element("MPD", {"xmlns": MPD_NAMESPACE, **protection_namespaces(protection), **attrs})
    period = _sub(mpd, "Period", id="0", start="PT0S")
    set_id = 0
    for _, family in groupby(sorted(video, key=_family), key=_family):
        _video_set(period, set_id, list(family), query, protection)
        set_id += 1
    for position, track in enumerate(audio):
        _audio_set(period, set_id, track, query, default=position == 0, protection=protection)
        set_id += 1
    for text in presentation.text_tracks:
        _text_set(period, set_id, text, query)
        set_id += 1
    absolute_licence_urls(mpd, playback_root)
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"
