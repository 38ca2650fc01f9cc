"""Object storage: a local directory or an S3-compatible bucket, one interface.

`open_storage(url)` picks the backend from `ABR_STORAGE_URL`-style URLs:
`file:///abs/path` or a plain path for a directory, `s3://bucket/prefix` for a
bucket (with `s3_endpoint_url` for stores other than AWS).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from core.errors import BadRequest
from core.storage.base import ObjectInfo, Storage, validate_key, validate_prefix
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage

__all__ = [
    "LocalStorage",
    "ObjectInfo",
    "S3Storage",
    "Storage",
    "open_storage",
    "validate_key",
    "validate_prefix",
]


def open_storage(url: str, *, s3_endpoint_url: str | None = None, presign: bool = False) -> Storage:
    """The backend for `url`; BadRequest if the URL names no backend we know."""
    if not url or not url.strip():
        raise BadRequest("storage URL is empty")
    url = url.strip()
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise BadRequest(f"storage URL {url!r} names no bucket (expected s3://bucket/prefix)")
        return S3Storage(
            parts.netloc, unquote(parts.path).strip("/"),
            endpoint_url=s3_endpoint_url, presign=presign,
        )
    if url.startswith("file:"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise BadRequest(f"storage URL {url!r} names a remote host; use file:///abs/path")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise BadRequest(f"storage URL {url!r} must hold an absolute path (file:///abs/path)")
        return LocalStorage(Path(path))
    if "://" in url:
        raise BadRequest(f"storage URL {url!r} has an unknown scheme (use file:// or s3://)")
    return LocalStorage(Path(url).expanduser())
