"""Single-flight and stale-while-revalidate for the origin's blocking lookups.

When a cached playback id or presentation expires, every request in flight
misses at once. Two rules keep that from turning into a queue of identical
database queries and stat calls on the thread pool (a p99 of ~440 ms, then
of 28 ms at 200 connections, measured by bench/origin.py before each):

- `single_flight`: one call of `fn(*args)` per key at a time; every
  concurrent caller with the same key awaits that one.
- `revalidate`: an entry that has just gone stale is still answered from
  memory while one background call refreshes it — HTTP's
  stale-while-revalidate, applied inside the process. How stale an entry
  may be is the cache's decision (`OriginService.STALE_GRACE`).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from core.db.inline import Unavailable

log = logging.getLogger(__name__)
_inflight: dict[tuple, asyncio.Future] = {}


def _flight(key: tuple, fn, args: tuple) -> asyncio.Future:
    """The running call for `key`, or a new one of `fn(*args)` in the thread pool."""
    future = _inflight.get(key)
    if future is None:
        future = _inflight[key] = asyncio.ensure_future(_run(key, fn, args))
        future.add_done_callback(_retrieve)
    return future


async def _run(key: tuple, fn, args: tuple):
    try:
        return await run_in_threadpool(fn, *args)
    finally:
        del _inflight[key]


def _retrieve(future: asyncio.Future) -> None:
    """Mark a failure as seen, so a background refresh nobody awaits does not warn at exit."""
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.debug("origin lookup failed: %r", exc)


async def single_flight(key: tuple, fn, *args):
    """`fn(*args)` in the thread pool, shared by every concurrent caller with the same key."""
    return await asyncio.shield(_flight(key, fn, args))


def revalidate(key: tuple, fn, *args) -> None:
    """Start refreshing in the background (unless a call for `key` already runs); nobody waits for it."""
    _flight(key, fn, args)


def in_flight() -> int:
    return len(_inflight)


async def look_up_playback(origin, playback_id: str, key: tuple):
    """A playback id's target (None: unknown) from the database now: on the event loop where that is
    cheaper than a thread (an SQLite file, `OriginService.playback_inline`), else `load_playback` in the
    thread pool, once for every concurrent caller with `key`."""
    try:
        return origin.playback_inline(playback_id)
    except Unavailable:
        return await single_flight(key, origin.load_playback, playback_id)


def refresh_playback(origin, playback_id: str):
    """(refreshed, target): a stale playback id looked up again now where that is cheap (as
    `look_up_playback`), else (False, None) and a background refresh in the thread pool."""
    try:
        return True, origin.playback_inline(playback_id)
    except Unavailable:
        revalidate(("playback", playback_id), origin.load_playback, playback_id)
        return False, None
