"""Plan an asset's audio tracks: which source streams, in which language, under which name and role.

Pure: a probed `MediaInfo`'s audio streams plus the `audio` settings in, the
AAC `Rendition`s out. The first planned track is the default unless the
settings name another; it keeps the id `audio`, so a single-audio asset is
planned exactly as before multi-audio existed.

Source tags are ISO 639-2 (`eng`, `fre`/`fra`, as Matroska and MP4 write
them); manifests want BCP 47, whose rule is "the shortest code": the
two-letter ISO 639-1 code where one exists. The table covers the languages
of the common dubbing/subtitling markets; any other well-formed code passes
through as it is (a three-letter code is valid BCP 47).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from core.media.ladder import plan_audio
from core.media.model import AUDIO_ROLES, Rendition, audio_rendition_id
from core.media.probe import AudioInfo

_ISO639_2_TO_1 = {
    "ara": "ar", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "chi": "zh", "zho": "zh", "dan": "da",
    "deu": "de", "ger": "de", "ell": "el", "gre": "el", "eng": "en", "spa": "es", "est": "et", "fin": "fi",
    "fra": "fr", "fre": "fr", "heb": "he", "hin": "hi", "hrv": "hr", "hun": "hu", "ind": "id", "ita": "it",
    "jpn": "ja", "kor": "ko", "lit": "lt", "lav": "lv", "msa": "ms", "may": "ms", "nld": "nl", "dut": "nl",
    "nor": "no", "nob": "nb", "nno": "nn", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru",
    "slk": "sk", "slo": "sk", "slv": "sl", "srp": "sr", "swe": "sv", "tha": "th", "tur": "tr", "ukr": "uk",
    "vie": "vi", "cym": "cy", "wel": "cy", "gle": "ga", "eus": "eu", "baq": "eu", "glg": "gl", "isl": "is",
    "ice": "is", "fas": "fa", "per": "fa", "ben": "bn", "tam": "ta", "tel": "te", "urd": "ur",
}
_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def bcp47(tag: str | None) -> str:
    """A source language tag as BCP 47 (`eng` -> `en`, `pt-BR` kept); "" when absent or malformed."""
    if not tag or not _TAG.match(tag.strip()):
        return ""
    primary, *rest = tag.strip().split("-")
    primary = _ISO639_2_TO_1.get(primary.lower(), primary.lower())
    if primary in ("und", "mul", "zxx", "mis"):
        return ""
    return "-".join([primary, *rest])


@dataclass(frozen=True)
class TrackLabel:
    """A settings override for one source stream (all optional)."""

    language: str | None = None
    name: str | None = None
    role: str | None = None


def plan_audio_tracks(streams: Sequence[AudioInfo], *, tracks: str | Sequence[int] = "all",
                      default: int | None = None,
                      labels: Mapping[int, TrackLabel] | None = None) -> list[Rendition]:
    """The AAC renditions for the chosen source streams (`tracks`: "all" or audio-stream positions).

    `default` and the keys of `labels` are source audio-stream positions too. A
    position not in the source is a ValueError (the caller turns it into a 422).
    """
    labels = labels or {}
    by_position = {s.position: s for s in streams}
    chosen = [s.position for s in streams] if tracks == "all" else list(tracks)
    missing = sorted({p for p in [*chosen, *labels, *([default] if default is not None else [])]
                      if p not in by_position})
    if missing:
        raise ValueError(f"the source has no audio stream {missing[0]} (it has {len(streams)}: "
                         f"{', '.join(str(p) for p in sorted(by_position)) or 'none'})")
    if default is not None and default not in chosen:
        raise ValueError(f"the default audio stream {default} is not among the chosen tracks")
    if not chosen:
        return []
    default = chosen[0] if default is None else default
    # The default track comes first: it takes the id `audio` (and the single-track output of old).
    ordered = [default] + [p for p in chosen if p != default]
    several = len(ordered) > 1
    renditions = []
    for i, position in enumerate(ordered):
        stream, label = by_position[position], labels.get(position, TrackLabel())
        if label.role is not None and label.role not in AUDIO_ROLES:
            raise ValueError(f"audio role must be one of {', '.join(AUDIO_ROLES)}")
        base = plan_audio(stream.channels, stream.sample_rate)
        language = bcp47(label.language) if label.language is not None else bcp47(stream.language)
        name = label.name if label.name is not None else (stream.title or "")
        labelled = bool(language or name or label.role)
        renditions.append(replace(
            base, id=audio_rendition_id(i), language=language, name=name.strip()[:100],
            role=label.role or "", source_stream=position,
            # Only the first is the default; a lone unlabelled track stays the classic one (no flags).
            default=i == 0 and (several or labelled),
        ))
    return _unique_names(renditions)


def _unique_names(renditions: list[Rendition]) -> list[Rendition]:
    """HLS needs a unique NAME in the group: number repeats (`English`, `English 2`)."""
    seen: dict[str, int] = {}
    out = []
    for r in renditions:
        key = r.name or r.language or r.id
        seen[key] = seen.get(key, 0) + 1
        out.append(r if seen[key] == 1 else replace(r, name=f"{key} {seen[key]}"))
    return out
