"""A live stream survives its worker: leases, the takeover pass, and the reload of what was published.

The live stream's row is the lease. The run that owns the stream (`worker_id`)
refreshes `heartbeat_at` every `heartbeat_interval` seconds; a row that is live
(connecting, active, reconnecting) but whose heartbeat is older than
`takeover_after` belongs to a worker that died (SIGKILL, OOM, a lost host).
`reclaim`, run by every worker's reconciler, frees such a row (worker_id -> NULL,
a conditional UPDATE, so with several reconcilers exactly one sends) and sends
the stream's task again; the run that claims it reloads the published state from
storage (`restore_state`) and continues the timeline after a discontinuity.

Why storage, not the row: `live.json` (rewritten on every segment) holds the
window, `recording.json` (every RECORDING_EVERY segments) every segment up to
its last write; together they hold every segment the dead run published, when
the window is longer than the recording's write period, which the publisher
guarantees (core/live/publisher.py writes recording.json early otherwise).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import layout
from core.db.models import utcnow
from core.db.models_live import LiveStream
from core.errors import AbrError
from core.live import state
from core.media.live_model import LIVE_PRESENTATION, RECORDING_PRESENTATION, LivePresentation, Period
from core.media.model import Presentation, Track
from core.storage import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeasePolicy:
    heartbeat_interval: float = 2.0  # s between the owning run's heartbeats
    takeover_after: float = 6.0  # s without a heartbeat before another worker takes the stream
    # At most this many takeovers within takeover_window seconds; one more and the stream is errored
    # (`worker_lost`). A stream whose input kills its worker (a plugin that exhausts memory, a decoder
    # crash in-process) would otherwise take every worker down in turn, forever. Rare deaths (a
    # rolling deploy, a lost host) stay far below the cap, so a 24/7 stream survives any number of them.
    max_takeovers: int = 5
    takeover_window: float = 600.0


def count_takeover(times: list[str] | None, now: datetime, policy: LeasePolicy) -> tuple[list[str], bool]:
    """The stream's recent takeover times with `now` added (older than the window dropped), and
    whether this takeover is within the cap (pure: the caller stores the list on the row)."""
    since = now - timedelta(seconds=policy.takeover_window)
    kept = []
    for text in times or []:
        try:
            at = datetime.fromisoformat(text)
        except (TypeError, ValueError):
            continue  # not ours: forget it rather than fail the stream
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if since < at <= now:
            kept.append(at.isoformat())
    kept.append(now.isoformat())
    return kept, len(kept) <= policy.max_takeovers


def reclaim(engine: Engine, send: Callable[[str], None], policy: LeasePolicy) -> list[str]:
    """Free live streams whose worker went silent and send their task again; returns their ids."""
    stale = utcnow() - timedelta(seconds=policy.takeover_after)
    last_sign = func.coalesce(LiveStream.heartbeat_at, LiveStream.updated_at)
    sent: list[str] = []
    with Session(engine, expire_on_commit=False) as s:
        # Rows without an owner too: a stream freed by an earlier pass whose message was lost, or one
        # whose first message waits in a busy queue (a duplicate message is harmless: claims are atomic).
        rows = s.exec(select(LiveStream).where(LiveStream.status.in_(sorted(state.LIVE)))
                      .where(last_sign < stale)).all()
        for row in rows:
            owner, seen = row.worker_id, row.heartbeat_at or row.updated_at  # before the UPDATE syncs the object
            # Conditional on the heartbeat we saw: a run that beat meanwhile keeps its stream, and of
            # several reconcilers exactly one frees it. heartbeat_at = now: not freed again before the
            # new run has had `takeover_after` to claim it.
            taken = s.exec(update(LiveStream).where(LiveStream.id == row.id)
                           .where(LiveStream.worker_id.is_(None) if owner is None else LiveStream.worker_id == owner)
                           .where(last_sign == seen)
                           .values(worker_id=None, heartbeat_at=utcnow()))
            s.commit()
            if taken.rowcount == 1:
                log.warning("live %s: its worker run %s went silent; sending it to another worker", row.id, owner)
                send(row.id)
                sent.append(row.id)
    return sent


@dataclass
class PublishedState:
    """What a dead run published: every kept segment per track (rendition order kept), periods, inits."""

    tracks: list[Track]
    periods: list[Period]
    inits: dict[str, bytes]


def merge_tracks(live: LivePresentation, recorded: Presentation | None) -> list[Track]:
    """Each track of the live window, its segments extended backwards by the recording's (older) ones.

    The live window is newer than the recording except at most RECORDING_EVERY
    segments; a segment number in both is the same file (segments are immutable).
    """
    older = {t.id: t.segments for t in recorded.tracks} if recorded else {}
    tracks = []
    for track in live.presentation.tracks:
        first = track.segments[0].number if track.segments else None
        before = [seg for seg in older.get(track.id, []) if first is None or seg.number < first]
        if before and first is not None and before[-1].number != first - 1:
            log.warning("live track %s: segments %d-%d are in neither live.json nor recording.json",
                        track.id, before[-1].number + 1, first - 1)
        tracks.append(dataclasses.replace(track, segments=[*before, *track.segments], complete=False))
    return tracks


def restore_state(storage: Storage, stream_id: str) -> PublishedState | None:
    """The published state of a stream from storage, or None when nothing was published."""
    key = lambda rel: layout.media_key(stream_id, rel)  # noqa: E731
    try:
        live = LivePresentation.from_dict(json.loads(storage.get_bytes(key(LIVE_PRESENTATION))))
    except (AbrError, FileNotFoundError, KeyError, ValueError):
        return None
    if live.ended or not live.presentation.tracks:
        return None
    recorded = None
    try:
        recorded = Presentation.from_dict(json.loads(storage.get_bytes(key(RECORDING_PRESENTATION))))
    except (AbrError, FileNotFoundError, KeyError, ValueError):
        pass  # not written yet (fewer than RECORDING_EVERY segments, all in the window)
    tracks = merge_tracks(live, recorded)
    inits = {t.id: storage.get_bytes(key(t.init_uri)) for t in tracks}
    return PublishedState(tracks=tracks, periods=list(live.periods), inits=inits)


class Reclaimer:
    """Runs `reclaim` every `heartbeat_interval` seconds in a daemon thread (every worker's main process
    starts one: workers/reconciler.py), so a dead worker's stream moves within about
    takeover_after + heartbeat_interval seconds."""

    def __init__(self, engine: Engine, send: Callable[[str], None], policy: LeasePolicy) -> None:
        self.engine, self.send, self.policy = engine, send, policy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-reclaimer", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.policy.heartbeat_interval):
            try:
                reclaim(self.engine, self.send, self.policy)
            except Exception:  # a database blip: the next pass retries
                log.warning("live takeover pass failed", exc_info=True)

    def start(self) -> Reclaimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
