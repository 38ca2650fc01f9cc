"""What one manifest request selects: a rendition filter and the query carried into URIs.

Both are parsed from the request by the origin and applied here, so the HLS
and DASH writers stay pure functions of a `Presentation`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import BadRequest, NotFound
from core.media.model import VIDEO_CODECS, Presentation, Track

# Characters that would break out of a quoted HLS attribute, a playlist line,
# an XML attribute's meaning or a URI (fragment). A token never needs them.
_UNSAFE_QUERY = re.compile(r'[\s"#<>\\\x00-\x1f\x7f]')
_MAX_DIGITS = 12


def _parse_int(mapping: Mapping[str, str], key: str) -> int | None:
    raw = (mapping.get(key) or "").strip()
    if not raw:
        return None  # `?max_height=` means "no limit", as a form would send it
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"{key} must be a whole number ≥ 0, got {raw[:40]!r}")
    # No ladder value has more digits; int() of thousands of digits is slow, then refused by Python.
    return int(raw) if len(raw) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _parse_codecs(mapping: Mapping[str, str]) -> frozenset[str] | None:
    raw = (mapping.get("codecs") or "").strip()
    if not raw:
        return None
    names = [c.strip().lower() for c in raw.split(",") if c.strip()]
    unknown = sorted(set(names) - set(VIDEO_CODECS))
    if unknown:
        raise BadRequest(
            f"unknown codec {', '.join(unknown)} in codecs; use a comma-separated list of "
            f"{', '.join(VIDEO_CODECS)}"
        )
    return frozenset(names) or None


_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")  # BCP 47, loosely


def _parse_languages(mapping: Mapping[str, str]) -> tuple[str, ...] | None:
    raw = (mapping.get("audio_lang") or "").strip()
    if not raw:
        return None
    names = [c.strip() for c in raw.split(",") if c.strip()]
    bad = [n for n in names if not _LANGUAGE.match(n)]
    if bad:
        raise BadRequest(f"audio_lang must be comma-separated language tags (en, pt-BR), got {bad[0]!r}")
    return tuple(dict.fromkeys(n.lower() for n in names)) or None


def _language_matches(track_language: str, wanted: str) -> bool:
    """`en` matches `en` and `en-GB`; `en-gb` only `en-GB` (case-insensitive, as BCP 47 is)."""
    have = track_language.lower()
    return have == wanted or have.startswith(wanted + "-")


@dataclass(frozen=True)
class ManifestFilter:
    """Which video renditions and audio tracks a manifest lists.

    Audio is always kept unless `audio_lang` names languages: then only the
    audio tracks in those languages, the first-listed language's first track
    becoming the default.

    `max_bitrate` compares with the rendition's planned average bitrate, not
    the measured one, so a rung does not flip in and out of a manifest as
    its segments arrive.
    """

    codecs: frozenset[str] | None = None
    min_height: int | None = None
    max_height: int | None = None
    max_bitrate: int | None = None
    audio_lang: tuple[str, ...] | None = None

    @classmethod
    def from_query(cls, mapping: Mapping[str, str]) -> ManifestFilter:
        """Parse `?codecs=vp8,h264&min_height=&max_height=720&max_bitrate=&audio_lang=en,fr`.

        Other keys (the playback token...) are ignored; empty values mean no limit.
        """
        selected = cls(
            codecs=_parse_codecs(mapping),
            min_height=_parse_int(mapping, "min_height"),
            max_height=_parse_int(mapping, "max_height"),
            max_bitrate=_parse_int(mapping, "max_bitrate"),
            audio_lang=_parse_languages(mapping),
        )
        if (
            selected.min_height is not None
            and selected.max_height is not None
            and selected.min_height > selected.max_height
        ):
            raise BadRequest(
                f"min_height ({selected.min_height}) is above max_height ({selected.max_height})"
            )
        return selected

    @property
    def is_empty(self) -> bool:
        return self == ManifestFilter()

    def matches(self, track: Track) -> bool:
        r = track.rendition
        if r.is_audio:
            return self.audio_lang is None or any(_language_matches(r.language, w) for w in self.audio_lang)
        return (
            (self.codecs is None or r.codec in self.codecs)
            and (self.min_height is None or r.height >= self.min_height)
            and (self.max_height is None or r.height <= self.max_height)
            and (self.max_bitrate is None or r.bitrate <= self.max_bitrate)
        )

    def selection(self, presentation: Presentation) -> frozenset[str] | tuple | None:
        """The ids of the video tracks this filter keeps, None when it keeps them all.

        This, not the numbers in the query, identifies the manifest a filter
        selects: `?max_height=700` and `?max_height=719` over a 720/480/360
        ladder both keep 480 and 360, so they are one cached manifest, and
        the variants of one presentation are bounded by its subsets of
        renditions whatever integers viewers send.
        """
        if self.is_empty:
            return None
        video = presentation.video_tracks
        kept = frozenset(t.id for t in video if self.matches(t))
        video_key = None if len(kept) == len(video) else kept
        if self.audio_lang is None:
            return video_key
        # `audio_lang` picks audio tracks and which one is the default: both shape the manifest.
        audio = [t for t in presentation.tracks if t.rendition.is_audio and self.matches(t)]
        chosen = self._default_first_language(audio) if audio else []
        return video_key, tuple(sorted((t.id, t.rendition.default) for t in chosen))

    def apply(self, presentation: Presentation) -> Presentation:
        """A copy of `presentation` with the matching video and audio tracks only."""
        kept = [t for t in presentation.tracks if self.matches(t)]
        if presentation.video_tracks and not any(not t.rendition.is_audio for t in kept):
            raise NotFound(f"no rendition matches {self.describe()}")
        if self.audio_lang is not None:
            if presentation.audio_tracks and not any(t.rendition.is_audio for t in kept):
                raise NotFound(f"no audio track matches {self.describe()}")
            kept = self._default_first_language(kept)
        return dataclasses.replace(presentation, tracks=kept)

    def _default_first_language(self, tracks: list[Track]) -> list[Track]:
        """The first audio track of the first-listed language that has one becomes the default."""
        audio = [t for t in tracks if t.rendition.is_audio]
        ranked = sorted(audio, key=lambda t: (
            next(i for i, w in enumerate(self.audio_lang) if _language_matches(t.rendition.language, w)),
            not t.rendition.default,
        ))
        chosen = ranked[0]
        out = []
        for t in tracks:
            if t.rendition.is_audio and t.rendition.default != (t is chosen):
                t = dataclasses.replace(t, rendition=dataclasses.replace(t.rendition, default=t is chosen))
            out.append(t)
        return out

    def describe(self) -> str:
        parts = []
        if self.codecs is not None:
            parts.append("codecs=" + ",".join(c for c in VIDEO_CODECS if c in self.codecs))
        for name in ("min_height", "max_height", "max_bitrate"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        if self.audio_lang is not None:
            parts.append("audio_lang=" + ",".join(self.audio_lang))
        return "&".join(parts) or "the request"


def clean_query(query: str) -> str:
    """The query to append to manifest URIs, without a leading `?`; refuses unsafe text."""
    query = query.lstrip("?")
    if _UNSAFE_QUERY.search(query):
        raise BadRequest("the query string holds characters that cannot go into a manifest URI")
    return query


def append_query(uri: str, query: str) -> str:
    """`uri` with `query` appended (signed playback: every child URL carries the token)."""
    query = clean_query(query)
    if not query:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{query}"
