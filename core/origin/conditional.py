"""HTTP validators and the request headers that depend on them (RFC 9110, RFC 9111).

- Entity tags are strong and quoted: `"<opaque>"`. Segments use the storage
  etag; manifests a hash of their rendered bytes (plus `-gzip`/`-br` for a
  compressed representation, since strong tags name exact bytes).
- `If-None-Match` wins over `If-Modified-Since`; either can turn a GET or
  HEAD into 304.
- `Range`: one `bytes=` range (first bytes, open-ended or suffix) → 206;
  one that starts past the end → 416 with `Content-Range: bytes */size`.
  Several ranges (`bytes=0-1,5-9`) and anything unparsable are *ignored*
  and answered 200 with the whole object, as RFC 9110 §14.2 allows: players
  never ask for multipart ranges, and a multipart/byteranges body is what
  CDNs and MSE handle worst. `If-Range` that does not match also means 200.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

try:  # brotli is optional: gzip is always there
    import brotli  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

_RANGE = re.compile(r"^\s*bytes\s*=\s*(?:(\d{1,19})\s*-\s*(\d{0,19})|-\s*(\d{1,19}))\s*$", re.IGNORECASE)
_ETAG_LIST = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')


def strong_etag(opaque: str) -> str:
    return f'"{opaque}"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def etag_list(header: str) -> list[str]:
    """The quoted tags of an `If-None-Match`/`If-Match` value, `W/` dropped (weak comparison)."""
    return _ETAG_LIST.findall(header)


def is_not_modified(headers: Mapping[str, str], etag: str, last_modified: datetime | None) -> bool:
    """Whether a GET/HEAD with these request headers gets 304 Not Modified."""
    inm = headers.get("if-none-match")
    if inm is not None:
        return inm.strip() == "*" or etag in etag_list(inm)
    since = parse_http_date(headers.get("if-modified-since"))
    if since is None or last_modified is None:
        return False
    return last_modified.replace(microsecond=0) <= since


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable:
    """Sentinel result of `parse_range`: answer 416 with `Content-Range: bytes */size`."""

    def __repr__(self) -> str:
        return "UNSATISFIABLE"


UNSATISFIABLE = Unsatisfiable()


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """The single byte range asked for, `UNSATISFIABLE`, or None for "send it all"."""
    if not header:
        return None
    m = _RANGE.match(header)
    if m is None:
        return None  # several ranges, another unit, or junk: ignored (200)
    first, last, suffix = m.groups()
    if suffix is not None:
        length = int(suffix)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - length), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid range-spec: ignore the header
    if start >= size:
        return UNSATISFIABLE
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end)


def if_range_allows(header: str | None, etag: str, last_modified: datetime | None) -> bool:
    """Whether `Range` may be honoured given `If-Range` (strong comparison, exact date)."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith(('"', "W/")):
        return header == etag
    when = parse_http_date(header)
    return when is not None and last_modified is not None and last_modified.replace(microsecond=0) == when


def available_encodings() -> tuple[str, ...]:
    return ("br", "gzip") if brotli is not None else ("gzip",)


def choose_encoding(accept_encoding: str | None, available: tuple[str, ...] | None = None) -> str | None:
    """The content coding to send (`br`, `gzip`) or None for identity.

    Highest q-value wins; ties go to the order of `available` (brotli first).
    """
    if not accept_encoding:
        return None
    available = available_encodings() if available is None else available
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name:
            weights[name] = q
    best, best_q = None, 0.0
    for coding in available:
        q = weights.get(coding, weights.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


def compress(body: bytes, coding: str) -> bytes:
    if coding == "br":
        assert brotli is not None
        return brotli.compress(body, quality=5)
    import gzip

    # mtime=0: the same bytes (and so the same strong ETag) in every process.
    return gzip.compress(body, compresslevel=6, mtime=0)


@dataclass(frozen=True)
class Plan:
    """How to answer a GET/HEAD for a representation: 200, 206 (with `range`), 304 or 416."""

    status: int
    range: ByteRange | None = None


def plan_response(headers: Mapping[str, str], *, size: int, etag: str, last_modified: datetime | None) -> Plan:
    if is_not_modified(headers, etag, last_modified):
        return Plan(304)
    wanted = headers.get("range")
    if wanted is None or not if_range_allows(headers.get("if-range"), etag, last_modified):
        return Plan(200)
    byte_range = parse_range(wanted, size)
    if byte_range is UNSATISFIABLE:
        return Plan(416)
    if byte_range is None:
        return Plan(200)
    assert isinstance(byte_range, ByteRange)
    return Plan(206, byte_range)
