"""HLS playlists (RFC 8216bis) written from what was produced.

One dataclass per spec construct, each naming the tag it models; `build_*`
turns a `Track`/`Presentation` into them and `.render()` writes the text.
Only CMAF (fMP4) tracks go to HLS: HLS has no VP8 or WebM.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from core.errors import NotFound
from core.media.encryption import HLS_KEY_FORMATS, hls_key_uri
from core.media.model import VIDEO_CODECS, Presentation, Protection, Segment, TextTrack, Track
from core.media.manifests.select import append_query, clean_query

VERSION = 7  # EXT-X-MAP in a non-I-frame playlist needs 6; 7 is what CMAF players expect
MEDIA_PLAYLIST_NAME = "index.m3u8"  # lives beside the segments: `{rendition id}/index.m3u8`
AUDIO_GROUP_ID = "audio"
SUBTITLES_GROUP_ID = "subs"


def media_playlist_uri(track: Track) -> str:
    """Relative to the playback root, like every URI of the model."""
    return f"{track.id}/{MEDIA_PLAYLIST_NAME}"


def is_hls_track(track: Track) -> bool:
    return track.container == "mp4"


@dataclass(frozen=True)
class Map:
    """# EXT-X-MAP: the init segment of every segment that follows."""

    uri: str

    def render(self) -> str:
        return f'#EXT-X-MAP:URI="{self.uri}"'


@dataclass(frozen=True)
class Key:
    """# EXT-X-KEY: how the segments that follow are encrypted, and where a player of `key_format` gets the key.

    CENC (`cenc`, AES-CTR) CMAF segments are `SAMPLE-AES-CTR` in HLS: the same
    files the MPD lists, so one set serves both protocols.
    """

    uri: str
    key_format: str
    method: str = "SAMPLE-AES-CTR"

    def render(self) -> str:
        return f'#EXT-X-KEY:METHOD={self.method},URI="{self.uri}",KEYFORMAT="{self.key_format}",KEYFORMATVERSIONS="1"'


@dataclass(frozen=True)
class MediaSegment:
    """# EXTINF: one segment's duration, then its URI line."""

    duration: Fraction  # seconds, exact
    uri: str

    def render(self) -> str:
        return f"#EXTINF:{float(self.duration):.6f},\n{self.uri}"


@dataclass(frozen=True)
class MediaPlaylist:
    """# EXT-X-TARGETDURATION, EXT-X-MEDIA-SEQUENCE, EXT-X-PLAYLIST-TYPE, …, EXT-X-ENDLIST."""

    target_duration: int
    media_sequence: int
    playlist_type: Literal["VOD", "EVENT"]
    map: Map
    segments: tuple[MediaSegment, ...]
    ended: bool
    keys: tuple[Key, ...] = ()

    def render(self) -> str:
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{VERSION}",
            f"#EXT-X-TARGETDURATION:{self.target_duration}",
            f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}",
            f"#EXT-X-PLAYLIST-TYPE:{self.playlist_type}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            *(k.render() for k in self.keys),
            self.map.render(),
            *(s.render() for s in self.segments),
        ]
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


def _contiguous(segments: list[Segment]) -> list[Segment]:
    """The run of consecutive numbers from the first segment.

    HLS numbers segments implicitly (media sequence + position), so a missing
    number would shift every later URI; publishing only the run before it is
    the safe reading of a track that is still being written.
    """
    ordered = sorted(segments, key=lambda s: s.number)
    run = ordered[:1]
    for seg in ordered[1:]:
        if seg.number != run[-1].number + 1:
            break
        run.append(seg)
    return run


def build_keys(protection: Protection | None, query: str) -> tuple[Key, ...]:
    """One EXT-X-KEY per key format players need (hls.js: ClearKey via EME; Shaka: `identity`)."""
    if protection is None:
        return ()
    # Key URIs are relative to the playback root; the media playlist is one level down.
    return tuple(Key(uri if uri.startswith("data:") else append_query(f"../{uri}", query), fmt)
                 for fmt in HLS_KEY_FORMATS for uri in [hls_key_uri(fmt, protection.default_kid)])


def build_media_playlist(track: Track, *, ended: bool, query: str = "",
                         protection: Protection | None = None, segment_duration: float = 0) -> MediaPlaylist:
    """`segment_duration`: the asset's planned one, a floor for EXT-X-TARGETDURATION.

    The target must not change in a playlist (RFC 8216 6.2.1), and with a short
    first segment (ABR_FIRST_SEGMENT_DURATION) the longest segment published so far
    is 1 s while the first one alone is out: without the floor the target would go
    from 1 to 4 as the track grows.
    """
    if not is_hls_track(track):
        raise NotFound("HLS has no VP8; use the DASH manifest")
    segments = _contiguous(track.segments)
    if not segments:
        raise NotFound(f"rendition {track.id} has no segments yet")
    if ended and len(segments) != len(track.segments):
        raise ValueError(f"rendition {track.id} has a gap in its segment numbers")

    def here(uri: str) -> str:
        # Relative to the playlist, which sits in the rendition's directory.
        return append_query(posixpath.basename(uri), query)

    longest = max(Fraction(s.duration, track.timescale) for s in segments)
    return MediaPlaylist(
        # Ceil, not round: every EXTINF, rounded, must be ≤ the target duration.
        target_duration=max(1, math.ceil(longest), math.ceil(segment_duration)),
        media_sequence=segments[0].number,
        # EVENT: segments are only appended; players reload until the ENDLIST.
        playlist_type="VOD" if ended else "EVENT",
        map=Map(here(track.init_uri)),
        segments=tuple(
            MediaSegment(Fraction(s.duration, track.timescale), here(track.segment_uri(s.number)))
            for s in segments
        ),
        ended=ended,
        keys=build_keys(protection, query),
    )


def render_media_playlist(track: Track, *, ended: bool, query: str = "", protection: Protection | None = None,
                          segment_duration: float = 0) -> str:
    return build_media_playlist(track, ended=ended, query=query, protection=protection,
                                segment_duration=segment_duration).render()


def _quoted(value: str) -> str:
    return f'"{value}"'


# The HLS characteristic of an audio-description track (Apple's HLS authoring spec).
DESCRIBES_VIDEO = "public.accessibility.describes-video"


@dataclass(frozen=True)
class Media:
    """# EXT-X-MEDIA:TYPE=AUDIO: one audio track of the group every variant refers to."""

    uri: str
    channels: int
    group_id: str = AUDIO_GROUP_ID
    name: str = "Audio"
    language: str = ""
    default: bool = True
    characteristics: str = ""

    def render(self) -> str:
        attrs = [
            "TYPE=AUDIO",
            f"GROUP-ID={_quoted(self.group_id)}",
            f"NAME={_quoted(self.name)}",
        ]
        if self.language:
            attrs.append(f"LANGUAGE={_quoted(self.language)}")
        attrs += [f"DEFAULT={'YES' if self.default else 'NO'}", "AUTOSELECT=YES"]
        if self.characteristics:
            attrs.append(f"CHARACTERISTICS={_quoted(self.characteristics)}")
        if self.channels:
            attrs.append(f"CHANNELS={_quoted(str(self.channels))}")
        attrs.append(f"URI={_quoted(self.uri)}")
        return "#EXT-X-MEDIA:" + ",".join(attrs)


def build_audio_media(audio: list[Track], query: str = "") -> tuple[Media, ...]:
    """One EXT-X-MEDIA per audio track; exactly one DEFAULT=YES (the presentation's default)."""
    media = []
    for position, track in enumerate(audio):
        r = track.rendition
        # NAME must be unique in the group (RFC 8216 §4.4.6.1): fall back to the language, then the id.
        name = _attribute_text(r.name or r.language or ("Audio" if len(audio) == 1 else track.id))
        media.append(Media(
            uri=append_query(media_playlist_uri(track), query), channels=r.channels, name=name,
            language=r.language, default=position == 0,
            characteristics=DESCRIBES_VIDEO if r.role == "description" else "",
        ))
    return tuple(media)


@dataclass(frozen=True)
class SubtitlesMedia:
    """# EXT-X-MEDIA:TYPE=SUBTITLES: one WebVTT text track of the `subs` group."""

    uri: str
    name: str
    language: str
    default: bool = False
    group_id: str = SUBTITLES_GROUP_ID

    def render(self) -> str:
        attrs = [
            "TYPE=SUBTITLES",
            f"GROUP-ID={_quoted(self.group_id)}",
            f"NAME={_quoted(self.name)}",
            f"LANGUAGE={_quoted(self.language)}",
            # AUTOSELECT lets a player pick the track matching the user's language.
            f"DEFAULT={'YES' if self.default else 'NO'}",
            "AUTOSELECT=YES",
            f"URI={_quoted(self.uri)}",
        ]
        return "#EXT-X-MEDIA:" + ",".join(attrs)


def _attribute_text(value: str) -> str:
    # A quoted-string may hold neither `"` nor a line break (RFC 8216 §4.2).
    return "".join(" " if c in "\r\n" else "'" if c == '"' else c for c in value)


def build_subtitles_media(presentation: Presentation, query: str = "") -> tuple[SubtitlesMedia, ...]:
    return tuple(
        SubtitlesMedia(uri=append_query(t.playlist_uri, query), name=_attribute_text(t.name or t.language),
                       language=t.language, default=t.default)
        for t in presentation.text_tracks
    )


@dataclass(frozen=True)
class StreamInf:
    """# EXT-X-STREAM-INF: one variant, then its media playlist URI line."""

    bandwidth: int
    average_bandwidth: int
    codecs: str
    uri: str
    resolution: tuple[int, int] | None = None
    frame_rate: Fraction | None = None
    audio: str | None = None
    subtitles: str | None = None

    def render(self) -> str:
        attrs = [
            f"BANDWIDTH={self.bandwidth}",
            f"AVERAGE-BANDWIDTH={self.average_bandwidth}",
            f"CODECS={_quoted(self.codecs)}",
        ]
        if self.resolution:
            attrs.append(f"RESOLUTION={self.resolution[0]}x{self.resolution[1]}")
        if self.frame_rate:
            attrs.append(f"FRAME-RATE={float(self.frame_rate):.3f}")
        if self.audio:
            attrs.append(f"AUDIO={_quoted(self.audio)}")
        if self.subtitles:
            attrs.append(f"SUBTITLES={_quoted(self.subtitles)}")
        return "#EXT-X-STREAM-INF:" + ",".join(attrs) + "\n" + self.uri


@dataclass(frozen=True)
class MultivariantPlaylist:
    """# EXTM3U with EXT-X-MEDIA renditions and EXT-X-STREAM-INF variants."""

    media: tuple[Media | SubtitlesMedia, ...]
    variants: tuple[StreamInf, ...]

    def render(self) -> str:
        lines = [
            "#EXTM3U",
            f"#EXT-X-VERSION:{VERSION}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            *(m.render() for m in self.media),
            *(v.render() for v in self.variants),
        ]
        return "\n".join(lines) + "\n"


def _family_then_bandwidth(track: Track) -> tuple[int, int]:
    codec = track.rendition.codec
    family = VIDEO_CODECS.index(codec) if codec in VIDEO_CODECS else len(VIDEO_CODECS)
    return family, -track.peak_bandwidth


def build_multivariant_playlist(presentation: Presentation, *, query: str = "") -> MultivariantPlaylist:
    clean_query(query)  # refuse an unsafe query even when nothing would carry it
    audio_tracks = [t for t in presentation.audio_tracks if is_hls_track(t)]
    audio = audio_tracks[0] if audio_tracks else None
    if any(not t.segments for t in audio_tracks):
        # Variants written now without audio would play silent for as long as a
        # player keeps this playlist (it is not reloaded), so wait for audio.
        raise NotFound("HLS playlist not ready yet: audio has no segments")
    produced = [t for t in presentation.video_tracks if t.segments]
    video = sorted((t for t in produced if is_hls_track(t)), key=_family_then_bandwidth)
    if produced and not video:
        raise NotFound("HLS has no VP8; use the DASH manifest")
    if presentation.video_tracks and not video:
        raise NotFound("HLS playlist not ready yet: no video rendition has segments")
    if audio is None and not video:
        raise NotFound("HLS playlist not ready yet: nothing has been produced")

    subtitles = build_subtitles_media(presentation, query)
    subtitles_group = SUBTITLES_GROUP_ID if subtitles else None
    if not video:  # audio-only asset: the default audio playlist is the one variant, the others its group
        only = StreamInf(
            bandwidth=audio.peak_bandwidth,
            average_bandwidth=audio.average_bandwidth,
            codecs=audio.codecs,
            uri=append_query(media_playlist_uri(audio), query),
            audio=AUDIO_GROUP_ID if len(audio_tracks) > 1 else None,
            subtitles=subtitles_group,
        )
        group = build_audio_media(audio_tracks, query) if len(audio_tracks) > 1 else ()
        return MultivariantPlaylist(media=group + subtitles, variants=(only,))

    media: tuple[Media | SubtitlesMedia, ...] = build_audio_media(audio_tracks, query) + subtitles
    # A variant must be playable with any track of its group: count the most demanding one.
    audio_peak = max((t.peak_bandwidth for t in audio_tracks), default=0)
    audio_average = max((t.average_bandwidth for t in audio_tracks), default=0)
    audio_codecs = ",".join(dict.fromkeys(t.codecs for t in audio_tracks))
    variants = []
    for track in video:
        r = track.rendition
        variants.append(
            StreamInf(
                # Peak of any segment, plus the audio's: what a client must sustain.
                bandwidth=track.peak_bandwidth + audio_peak,
                average_bandwidth=track.average_bandwidth + audio_average,
                codecs=f"{track.codecs},{audio_codecs}" if audio else track.codecs,
                resolution=(r.width, r.height) if r.width and r.height else None,
                frame_rate=r.frame_rate,
                audio=AUDIO_GROUP_ID if audio else None,
                subtitles=subtitles_group,
                uri=append_query(media_playlist_uri(track), query),
            )
        )
    return MultivariantPlaylist(media=media, variants=tuple(variants))


def render_multivariant_playlist(presentation: Presentation, *, query: str = "") -> str:
    return build_multivariant_playlist(presentation, query=query).render()


def render_subtitles_playlist(presentation: Presentation, text: TextTrack, *, query: str = "") -> str:
    """The media playlist of a WebVTT track: one segment, the whole file, as long as the presentation.

    It sits at `text/{id}/index.m3u8`, so the file (`text/{id}.vtt`) is one level up.
    """
    duration = Fraction(presentation.duration).limit_denominator(1_000_000)
    if duration <= 0:
        raise NotFound("subtitles not ready yet: nothing has been produced")
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        MediaSegment(duration, append_query(f"../{posixpath.basename(text.uri)}", query)).render(),
        "#EXT-X-ENDLIST",
    ]
    return "\n".join(lines) + "\n"
