"""Overlays: PNG pictures for the `watermark` frame plugin, and the resolver that hands plugins local files.

Stored under `overlays/{id}.png` (no table: an overlay is its file). A plugin
option that names a picture holds an overlay id (`ov_…`) or an http(s) URL,
which is fetched with the checked importer (SSRF rules, size and time caps).
"""

from __future__ import annotations

import io
import secrets
import string
from collections.abc import Callable
from pathlib import Path

import av

from core import layout
from core.errors import InvalidMedia, NotFound, TooLarge, Unprocessable
from core.services.url_import import fetch
from core.storage import Storage

MAX_OVERLAY_BYTES = 8 * 1024 * 1024
MAX_OVERLAY_SIDE = 4096
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ALPHABET = string.ascii_lowercase + string.digits


def _new_id() -> str:
    return "ov_" + "".join(secrets.choice(_ALPHABET) for _ in range(20))


def _valid_id(overlay_id: str) -> bool:
    return overlay_id.startswith("ov_") and len(overlay_id) == 23 and all(c in _ALPHABET for c in overlay_id[3:])


def check_png(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG we accept; InvalidMedia / TooLarge / Unprocessable otherwise."""
    if len(data) > MAX_OVERLAY_BYTES:
        raise TooLarge(f"an overlay may be at most {MAX_OVERLAY_BYTES // (1024 * 1024)} MiB")
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidMedia("an overlay must be a PNG file")
    try:
        with av.open(io.BytesIO(data), format="png_pipe") as container:
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            next(container.decode(video=0))
    except (av.FFmpegError, StopIteration, IndexError) as exc:
        raise InvalidMedia(f"the PNG cannot be decoded: {exc}") from exc
    if not (0 < width <= MAX_OVERLAY_SIDE and 0 < height <= MAX_OVERLAY_SIDE):
        raise Unprocessable(f"an overlay may be at most {MAX_OVERLAY_SIDE}x{MAX_OVERLAY_SIDE} pixels")
    return width, height


def create_overlay(storage: Storage, data: bytes) -> dict:
    width, height = check_png(data)
    overlay_id = _new_id()
    storage.put_bytes(layout.overlay_key(overlay_id), data, content_type="image/png")
    return {"id": overlay_id, "width": width, "height": height, "size": len(data)}


def get_overlay(storage: Storage, overlay_id: str) -> dict:
    if not _valid_id(overlay_id) or not storage.exists(layout.overlay_key(overlay_id)):
        raise NotFound(f"no overlay {overlay_id}")
    data = storage.get_bytes(layout.overlay_key(overlay_id))
    width, height = check_png(data)
    return {"id": overlay_id, "width": width, "height": height, "size": len(data)}


def delete_overlay(storage: Storage, overlay_id: str) -> None:
    get_overlay(storage, overlay_id)
    storage.delete(layout.overlay_key(overlay_id))


def check_references(storage: Storage, frame_plugins: list) -> None:
    """Before queueing: every overlay id a plugin names exists (URLs are checked when fetched)."""
    for i, spec in enumerate(frame_plugins):
        options = spec["options"] if isinstance(spec, dict) else spec.options
        ref = options.get("image")
        if isinstance(ref, str):
            if ref.startswith("ov_"):
                if not _valid_id(ref) or not storage.exists(layout.overlay_key(ref)):
                    raise Unprocessable(f"settings.frame_plugins.{i}.options.image: no overlay {ref}")
            elif not ref.startswith(("http://", "https://")):
                raise Unprocessable(f"settings.frame_plugins.{i}.options.image: "
                                    "give an overlay id (POST /v1/overlays) or an http(s) URL")


def resolver(storage: Storage, work_dir: Path, *, allow_private: bool = False,
             timeout: float = 60.0) -> Callable[[str], Path]:
    """ref -> local file: overlay ids from storage, http(s) URLs through the checked importer."""
    work_dir.mkdir(parents=True, exist_ok=True)

    def resolve(ref: str) -> Path:
        if _valid_id(ref):
            key = layout.overlay_key(ref)
            if not storage.exists(key):
                raise NotFound(f"no overlay {ref}")
            local = storage.local_path(key)
            if local is not None and local.exists():
                return local
            dest = work_dir / f"{ref}.png"
            storage.download_to(key, dest)
            return dest
        if ref.startswith(("http://", "https://")):
            dest = work_dir / f"resource-{secrets.token_hex(6)}"
            fetch(ref, dest, max_bytes=MAX_OVERLAY_BYTES, timeout=timeout, allow_private=allow_private)
            return dest
        raise Unprocessable(f"{ref!r} is neither an overlay id nor an http(s) URL")

    return resolve
