"""Webhook-facing events of a live stream's state changes (`live_stream.active`, `.idle`, `.ended`, …).

Live code never reaches for the webhooks service: `LiveRun` is handed an event
sink (`core.events.EventSink`, the worker passes `core.events.emit`) and calls
it with the stream's public state.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from core.events import EventSink

log = logging.getLogger(__name__)


def emit_live_event(sink: EventSink | None, engine: Engine, row, status: str) -> None:
    if sink is None:
        return
    data = {"id": row.id, "status": status, "recording_asset_id": row.recording_asset_id,
            "passthrough": row.passthrough}
    try:
        sink(engine, f"live_stream.{status}", data=data)
    except Exception:
        log.warning("live %s: could not emit live_stream.%s", row.id, status, exc_info=True)
