"""The storage interface shared by the local-directory and S3 backends.

Keys are `/`-separated relative strings (`assets/abc/h264-720p/00001.m4s`).
Every public method validates its key first, so no key can name anything
outside the backend's root: see `validate_key`.

Prefixes (for `list`, `delete_prefix`, `publish`) are directory-like: the
prefix `assets/a` means "everything under `assets/a/`" and never matches
`assets/ab/...`.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.errors import BadRequest

MAX_KEY_BYTES = 1024  # S3's limit on a whole key, in UTF-8 bytes
CHUNK_SIZE = 256 * 1024  # what open_range yields at a time
# Names starting with this are the local backend's in-flight temp files; keys
# may not use it so a listing can always tell the two apart.
TEMP_MARKER = ".abr-tmp-"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # one C-level scan (a per-character generator cost ~50 µs a key)

_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/mp4",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".webm": "video/webm",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".vtt": "text/vtt",
}


@dataclass(frozen=True)
class ObjectInfo:
    """What `stat` knows about one object.

    `etag` is an opaque strong validator without surrounding quotes: it changes
    whenever the object's bytes may have changed.
    """

    size: int
    mtime: datetime  # timezone-aware, UTC
    etag: str


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative key, else raise BadRequest.

    Refused: empty keys, a leading `/`, empty segments (`a//b`, trailing `/`),
    `.` and `..` segments, backslashes, control characters (NUL included),
    text that is not valid UTF-8, more than 1024 UTF-8 bytes, and segments
    starting with the reserved temp-file marker.
    """
    if not isinstance(key, str) or not key:
        raise BadRequest("storage key must be a non-empty string")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("storage key is not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise BadRequest(f"storage key is longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise BadRequest("storage key contains a control character")
    if "\\" in key:
        raise BadRequest("storage key contains a backslash")
    if key.startswith("/"):
        raise BadRequest("storage key must be relative (no leading '/')")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise BadRequest(f"storage key has an empty, '.' or '..' segment: {key!r}")
        if segment.startswith(TEMP_MARKER):
            raise BadRequest(f"storage key segments may not start with {TEMP_MARKER!r}")
    return key


def validate_prefix(prefix: str, *, allow_root: bool = False) -> str:
    """Normalise a directory-like prefix (one trailing `/` allowed) and validate it.

    Returns the prefix without a trailing slash; `""` means the whole root and
    is accepted only with `allow_root` (listing everything is fine, deleting
    everything by accident is not).
    """
    if prefix in ("", "/") and allow_root:
        return ""
    if isinstance(prefix, str) and prefix.endswith("/"):
        prefix = prefix[:-1]
    return validate_key(prefix)


def check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise BadRequest("range start must be >= 0")
    if end is not None and end < start:
        raise BadRequest("range end must be >= start")


def check_publish_prefixes(staging_prefix: str, final_prefix: str) -> tuple[str, str]:
    staging = validate_prefix(staging_prefix)
    final = validate_prefix(final_prefix)
    if staging == final or final.startswith(staging + "/") or staging.startswith(final + "/"):
        raise BadRequest("staging and final prefixes must not contain each other")
    return staging, final


def guess_content_type(key: str) -> str:
    dot = key.rfind(".")
    return _CONTENT_TYPES.get(key[dot:].lower(), "application/octet-stream") if dot >= 0 else "application/octet-stream"


class Storage(abc.ABC):
    """A flat object store with directory-like prefixes; see the module docstring."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store `data` atomically: readers see the old object or the new one, never a part."""

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        """Store a local file atomically; with `move`, the source file is gone afterwards."""

    @abc.abstractmethod
    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store a stream in flat memory, atomically; return the number of bytes written.

        If `chunks` raises, nothing is stored and the error propagates.
        """

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object; NotFound if missing."""

    @abc.abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes `start..end` inclusive (like HTTP ranges), in chunks of about 256 KiB.

        The object is opened before this returns, so a missing key raises
        NotFound here, not on the first `next()`. `end` past the object is
        clipped; a `start` past the end yields nothing (callers that answer
        HTTP should `stat` first and send 416).
        """

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size, mtime and etag; NotFound if missing."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def local_path(self, key: str) -> Path | None:
        """The object's filesystem path on local storage (existing or not); None elsewhere."""

    @abc.abstractmethod
    def download_to(self, key: str, dest: Path) -> None:
        """Copy the object to `dest` (atomically replaced; parents created); NotFound if missing."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key under `prefix/` (recursive), sorted; `""` lists everything."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; deleting a missing key is not an error."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove everything under `prefix/`; return how many objects went."""

    def remove_partial_writes(self, prefix: str) -> int:
        """Remove the temp files of writes that never finished under `prefix/` (a writer killed
        between its temp file and the rename); returns how many. Call it only when nothing writes
        there any more. Stores whose writes are atomic by nature have none: the default."""
        return 0

    @abc.abstractmethod
    def publish(self, staging_prefix: str, final_prefix: str) -> None:
        """Make everything under `staging_prefix/` visible under `final_prefix/`, then drop staging.

        Objects already under `final_prefix/` that staging lacks are kept, and
        those it has are replaced. Only publishing into an empty final prefix
        on local storage is a single atomic step; otherwise each object moves
        atomically but the set does not, so the manifest written after
        `publish` returns is the real commit point. NotFound if staging is empty.
        """

    @abc.abstractmethod
    def presigned_url(self, key: str, expires: int) -> str | None:
        """A time-limited direct GET URL where the backend offers one, else None."""

    @abc.abstractmethod
    def check(self) -> None:
        """Readiness probe: StorageError with a clear message if the store cannot be used."""
