"""Domain events: how services and live code say what happened, without importing who listens.

An emitter calls `emit(engine, type, asset_id=…, data=…)` once the state change
it reports has committed. Listeners are sinks that a process subscribes at its
entry point: the API (`api/app.py`) and the workers (`workers/tasks/webhooks.py`)
subscribe the webhooks service, which records one delivery per subscribed
endpoint and sends it. So no service imports another to report an event, and
a sink that fails never fails the state change (it is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

ASSET_CREATED = "asset.created"
ASSET_PLAYABLE = "asset.playable"
ASSET_READY = "asset.ready"
ASSET_ERRORED = "asset.errored"
ASSET_DELETED = "asset.deleted"
UPLOAD_COMPLETED = "upload.completed"
LIVE_STREAM_ACTIVE = "live_stream.active"
LIVE_STREAM_IDLE = "live_stream.idle"
LIVE_STREAM_ENDED = "live_stream.ended"
LIVE_STREAM_LAGGING = "live_stream.lagging"  # the frame plugins cannot keep real time (frames dropped)
LIVE_STREAM_PLUGIN_FAILED = "live_stream.plugin_failed"  # a frame plugin raised and was turned off
EVENTS = (ASSET_CREATED, ASSET_PLAYABLE, ASSET_READY, ASSET_ERRORED, ASSET_DELETED, UPLOAD_COMPLETED,
          LIVE_STREAM_ACTIVE, LIVE_STREAM_IDLE, LIVE_STREAM_ENDED, LIVE_STREAM_LAGGING, LIVE_STREAM_PLUGIN_FAILED)

# sink(engine, event_type, *, asset_id=None, data=None): data None means "the asset's current state"
EventSink = Callable[..., object]
_sinks: list[EventSink] = []


def subscribe(sink: EventSink) -> None:
    """Hear every event this process emits from now on (subscribing the same sink twice is a no-op)."""
    if sink not in _sinks:
        _sinks.append(sink)


def unsubscribe(sink: EventSink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def emit(engine: Engine, event_type: str, *, asset_id: str | None = None, data: dict | None = None) -> None:
    """Hand the event to every subscribed sink. Never raises."""
    for sink in tuple(_sinks):
        try:
            sink(engine, event_type, asset_id=asset_id, data=data)
        except Exception:
            log.exception("event sink %r failed on %s", sink, event_type)
