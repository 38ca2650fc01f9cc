"""The live stream state machine.

    idle ──▶ connecting ──▶ active ──▶ reconnecting ──▶ active …
      │          │            │             │
      └──────────┴────────────┴─────────────┴──▶ ended | errored   (terminal)

`idle`: created, no source yet (push streams wait for a publisher).
`connecting`: a publisher was let in (or a pull source is being opened).
`active`: segments are being published. `reconnecting`: the source dropped;
if it is back within the grace period the same playback continues after a
discontinuity, otherwise the stream ends. `connecting` may also fall back to
`idle` when a publisher left before any media arrived.
"""

from __future__ import annotations

from core.errors import Conflict

IDLE, CONNECTING, ACTIVE, RECONNECTING, ENDED, ERRORED = "idle", "connecting", "active", "reconnecting", "ended", "errored"
STATES = (IDLE, CONNECTING, ACTIVE, RECONNECTING, ENDED, ERRORED)
TERMINAL = frozenset({ENDED, ERRORED})
LIVE = frozenset({CONNECTING, ACTIVE, RECONNECTING})  # a worker owns the stream

TRANSITIONS: dict[str, frozenset[str]] = {
    IDLE: frozenset({CONNECTING, ENDED, ERRORED}),
    CONNECTING: frozenset({ACTIVE, IDLE, RECONNECTING, ENDED, ERRORED}),
    ACTIVE: frozenset({RECONNECTING, ENDED, ERRORED}),
    RECONNECTING: frozenset({CONNECTING, ACTIVE, ENDED, ERRORED}),
    ENDED: frozenset(),
    ERRORED: frozenset(),
}


def can_transition(current: str, new: str) -> bool:
    return current == new or new in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, new: str) -> None:
    if not can_transition(current, new):
        raise Conflict(f"a live stream cannot go from {current} to {new}")
