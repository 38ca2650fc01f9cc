"""Text tracks: SRT → WebVTT conversion and WebVTT validation (pure; no I/O).

What is stored and served is always WebVTT (UTF-8, `\\n` line ends). An SRT
upload is converted cue by cue: `,` → `.` in timestamps, SRT position
coordinates dropped, tags WebVTT has (`<i>`, `<b>`, `<u>`) kept and others
(`<font …>`) stripped, and `-->` inside cue text escaped (it would end a cue
in WebVTT). Every problem is a `Unprocessable` naming the line, so an upload
answers 422 with a reason a person can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import Unprocessable

MAX_TEXT_BYTES = 2 * 1024 * 1024  # a feature film's subtitles are ~100 KB
# BCP 47 in the shape players use: a 2-3 letter language, then subtags (pt-BR, zh-Hant-TW, es-419).
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")

_TIME = r"(?:(\d{1,3}):)?([0-5]\d):([0-5]\d)[.,](\d{1,3})"
_SRT_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_VTT_TIMING = re.compile(rf"^{_TIME}[ \t]+-->[ \t]+{_TIME}(?:[ \t]+.*)?$")
_VTT_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_KEPT_TAGS = re.compile(r"</?(?:i|b|u)>", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


@dataclass(frozen=True)
class WebVTT:
    """A validated WebVTT document: its text and what it holds."""

    text: str
    cues: tuple[Cue, ...]

    @property
    def last_end(self) -> float:
        return max((c.end for c in self.cues), default=0.0)


def check_language(language: str) -> str:
    language = language.strip()
    if len(language) > 35 or not LANGUAGE.match(language):
        raise Unprocessable(f"language must be a BCP 47 tag such as en, pt-BR or zh-Hant, got {language!r}")
    return language


def to_webvtt(data: bytes, filename: str = "") -> WebVTT:
    """WebVTT from an uploaded WebVTT or SRT file (detected by content, not by name)."""
    if len(data) > MAX_TEXT_BYTES:
        raise Unprocessable(f"the text track is larger than {MAX_TEXT_BYTES // 1024} KiB")
    if not data.strip():
        raise Unprocessable("the text track is empty")
    if b"\x00" in data:
        raise Unprocessable("the file is binary, not a WebVTT or SRT text track")
    text = _decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.lstrip("\n").startswith("WEBVTT"):
        return parse_webvtt(text.lstrip("\n"))
    if _looks_like_srt(text):
        return parse_webvtt(srt_to_webvtt(text))
    hint = f" ({filename})" if filename else ""
    raise Unprocessable(f"the file{hint} is neither WebVTT (first line 'WEBVTT') nor SRT (numbered cues with "
                        "'00:00:01,000 --> 00:00:02,000' timings)")


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Older SRT tools write Windows-1252; WebVTT is UTF-8 by definition.
        if data.lstrip().startswith(b"WEBVTT"):
            raise Unprocessable("a WebVTT file must be UTF-8") from None
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise Unprocessable("the text track is neither UTF-8 nor Windows-1252 text") from None


def _looks_like_srt(text: str) -> bool:
    head = [line for line in text.split("\n")[:6] if line.strip()]
    return any(_SRT_TIMING.match(line) for line in head[:3])


def _seconds(h: str | None, m: str, s: str, frac: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _clean_srt_text(line: str) -> str:
    line = _ANY_TAG.sub(lambda m: m.group(0).lower() if _KEPT_TAGS.fullmatch(m.group(0)) else "", line)
    return line.replace("-->", "--&gt;")


def srt_to_webvtt(text: str) -> str:
    """Convert SRT text (`\\n` line ends) to WebVTT text; Unprocessable on a malformed cue."""
    out = ["WEBVTT", ""]
    lines = text.split("\n")
    i, cues = 0, 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        if lines[i].strip().isdigit() and i + 1 < len(lines):
            i += 1  # the cue number
        m = _SRT_TIMING.match(lines[i])
        if m is None:
            raise Unprocessable(f"SRT line {i + 1}: expected a timing like '00:00:01,000 --> 00:00:02,500', "
                                f"got {lines[i].strip()[:60]!r}")
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        if end < start:
            raise Unprocessable(f"SRT line {i + 1}: the cue ends before it starts")
        i += 1
        body = []
        while i < len(lines) and lines[i].strip():
            body.append(_clean_srt_text(lines[i].rstrip()))
            i += 1
        if not body:
            raise Unprocessable(f"SRT line {block_start + 1}: the cue has no text")
        out += [f"{_stamp(start)} --> {_stamp(end)}", *body, ""]
        cues += 1
    if not cues:
        raise Unprocessable("the SRT file holds no cues")
    return "\n".join(out)


def parse_webvtt(text: str) -> WebVTT:
    """Validate WebVTT text (`\\n` line ends) and return it with its cues; Unprocessable otherwise."""
    lines = text.split("\n")
    if not _VTT_HEADER.match(lines[0]):
        raise Unprocessable("a WebVTT file must start with the line 'WEBVTT'")
    cues: list[Cue] = []
    i = 1
    while i < len(lines) and lines[i].strip():  # header metadata lines
        if "-->" in lines[i]:
            raise Unprocessable(f"WebVTT line {i + 1}: a blank line must separate the header from the first cue")
        i += 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block = []
        while i < len(lines) and lines[i].strip():
            block.append((i, lines[i]))
            i += 1
        first = block[0][1]
        if first.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in first:
            continue
        timing = block[0] if "-->" in first else (block[1] if len(block) > 1 else block[0])
        m = _VTT_TIMING.match(timing[1].strip())
        if m is None:
            raise Unprocessable(f"WebVTT line {timing[0] + 1}: expected a timing like "
                                f"'00:01.000 --> 00:02.500', got {timing[1].strip()[:60]!r}")
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        if end < start:
            raise Unprocessable(f"WebVTT line {timing[0] + 1}: the cue ends before it starts")
        body = [line for n, line in block if n > timing[0]]
        if any("-->" in line for line in body):
            raise Unprocessable(f"WebVTT line {timing[0] + 2}: cue text may not contain '-->'")
        cues.append(Cue(start, end, "\n".join(body)))
    if not cues:
        raise Unprocessable("the WebVTT file holds no cues")
    normalised = text if text.endswith("\n") else text + "\n"
    return WebVTT(normalised, tuple(cues))
