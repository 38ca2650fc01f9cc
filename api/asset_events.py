"""The protocol of `GET /v1/assets/{id}/events` (server-sent events), as a pure step function.

The stream polls the asset's public state and sends:

- `retry: 2000` first (how long a browser's EventSource waits before reconnecting);
- `event: asset` with the whole asset whenever it changed, its `id:` a digest of
  that state, so a client reconnecting with `Last-Event-ID` gets the asset again
  only if it changed meanwhile;
- `event: deleted` if the asset is gone;
- then, always last, `event: end` with `{"id", "status"}` (`ready`, `errored` or
  `deleted`), and the body ends cleanly. A stream that stops without `end` was
  cut (a restart, a proxy): reconnect with the last id;
- `: keep-alive` comments every 15 s (sse-starlette's ping), so proxies and
  clients with read timeouts keep the connection while nothing happens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent

RETRY_MS = 2000
POLL_S = 0.5
KEEPALIVE_S = 15.0
FINAL = ("ready", "errored")
SEP = "\n"  # one line ending on the wire, as before sse-starlette (its default is \r\n)


def state_id(asset: dict) -> str:
    """The event id of one public state of the asset: equal states, equal ids, in any API process."""
    return hashlib.sha256(json.dumps(asset, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def keep_alive() -> ServerSentEvent:
    return ServerSentEvent(comment="keep-alive", sep=SEP)


def response(events: AsyncIterator[ServerSentEvent], *, keepalive: float = KEEPALIVE_S) -> EventSourceResponse:
    """The streaming response: `: keep-alive` every `keepalive` seconds, ends when `events` does."""
    return EventSourceResponse(events, ping=keepalive, ping_message_factory=keep_alive, sep=SEP,
                               headers={"Cache-Control": "no-store"})


def opening() -> ServerSentEvent:
    return ServerSentEvent(retry=RETRY_MS, sep=SEP)


def step(asset_id: str, last_id: str | None, asset: dict | None) -> tuple[list[ServerSentEvent], str | None, bool]:
    """(events to send now, the last id sent, whether the stream is over) for the asset's current state.

    `asset` is the public asset, or None once it is deleted; `last_id` the id the
    client saw last (this stream's, or `Last-Event-ID` on a reconnect).
    """
    if asset is None:
        return [ServerSentEvent(json.dumps({"id": asset_id}), event="deleted", id="deleted", sep=SEP),
                _end(asset_id, "deleted", "deleted")], "deleted", True
    current = state_id(asset)
    events = []
    if current != last_id:
        events.append(ServerSentEvent(json.dumps(asset), event="asset", id=current, sep=SEP))
    if asset["status"] in FINAL:
        events.append(_end(asset_id, asset["status"], current))
        return events, current, True
    return events, current, False


def _end(asset_id: str, status: str, event_id: str) -> ServerSentEvent:
    return ServerSentEvent(json.dumps({"id": asset_id, "status": status}), event="end", id=event_id, sep=SEP)
