"""Webhook events for live state changes (`live_stream.active`, `.idle`, `.ended`, …).

`core.services.webhooks.emit(engine, type, data=…)` is another domain's and
never raises; live calls it only where it exists (imported lazily so core.live
does not depend on it at import time).
"""

from __future__ import annotations

import importlib
import logging

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def emit_live_event(engine: Engine, row, status: str) -> None:
    try:
        webhooks = importlib.import_module("core.services.webhooks")
    except ImportError:
        return
    emit = getattr(webhooks, "emit", None)
    if emit is None:
        return
    data = {"id": row.id, "status": status, "recording_asset_id": row.recording_asset_id,
            "passthrough": row.passthrough}
    try:
        emit(engine, f"live_stream.{status}", data=data)
    except Exception:
        log.warning("live %s: could not emit live_stream.%s", row.id, status, exc_info=True)
