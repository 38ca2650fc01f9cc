"""Content keys of encrypted assets: made once per asset by the worker, stored wrapped, read by the key endpoint.

The key master comes from `ABR_KEY_MASTER`; outside production, when unset,
one is generated into `{data_dir}/key-master` (mode 0600) on first use, so
`abr dev` works without setup and keeps its keys across restarts. Nothing
here logs a key: `ContentKey`'s repr shows only its id.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from core import layout
from core.errors import NotFound
from core.media.encryption import ContentKey, parse_master_key, unwrap, wrap
from core.storage import Storage

log = logging.getLogger(__name__)
MASTER_FILE = "key-master"


def key_master(settings) -> bytes:
    if settings.key_master:
        return parse_master_key(settings.key_master)
    if settings.env == "production":
        raise ValueError("ABR_KEY_MASTER must be set for encrypted playback when ABR_ENV=production")
    path = Path(settings.data_dir) / MASTER_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            log.info("generated a key master at %s (set ABR_KEY_MASTER in production)", path)
    return parse_master_key(path.read_text())


def ensure_content_key(storage: Storage, master: bytes, asset_id: str) -> ContentKey:
    """The asset's key, made and stored on first call (a retried job reuses it: same segment bytes)."""
    key = layout.content_key_key(asset_id)
    if storage.exists(key):
        return unwrap(storage.get_bytes(key), master, asset_id)
    made = ContentKey.generate()
    storage.put_bytes(key, wrap(made, master, asset_id), content_type="application/json")
    log.info("asset %s: content key %s made", asset_id, made.kid_uuid)
    return made


def load_content_key(storage: Storage, master: bytes, asset_id: str) -> ContentKey:
    key = layout.content_key_key(asset_id)
    if not storage.exists(key):
        raise NotFound("this asset has no content key")
    return unwrap(storage.get_bytes(key), master, asset_id)


def store_content_key(storage: Storage, master: bytes, owner_id: str, key: ContentKey) -> None:
    """`key` for another owner (a live stream's recording): wrapped anew, bound to `owner_id`."""
    storage.put_bytes(layout.content_key_key(owner_id), wrap(key, master, owner_id), content_type="application/json")
    log.info("%s: content key %s stored", owner_id, key.kid_uuid)
