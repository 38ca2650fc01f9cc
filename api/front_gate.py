"""The nginx front's gate: on a segment nginx found no link for, link the id and send nginx back.

`abr api --front nginx` sets `ABR_FRONT_INDEX` for its API processes; without
it the gate is a 404 like any unknown path. nginx asks here (`@admit`,
core/origin/front.py) when a GET or HEAD for a segment it may send found no
link for the id in the window it looked in (`core/origin/front_index.py`):
the first request of an id in each 5-second window, and those that arrive
before its link is made. The answer is never the segment itself but where
nginx goes next, `X-Accel-Redirect`:

- the same `/play/…` URL, once the id is linked for that window: nginx finds
  the link this time and sends the file itself — or, the file not being
  there, answers the API's 404 itself (it tests the link before it asks
  here, so it never asks twice for one request);
- `@unknown` (no such playback id): nginx answers the API's own 404 itself;
- `@api` for everything else (a live id, a signed id asked without a token or
  a public one with one): the API answers the original request itself, as it
  always does.

It is a lookup in memory (or the database, once per id: on the event loop
itself for an SQLite file, core/db/inline.py) and a `symlink`,
answered by the origin's fast path (api/origin_fastpath.py) before any
routing; by the route (api/routers/front.py) where the fast path is off. A stale entry never
links an id (a revoked one must stop within the window). nginx honours
`X-Accel-Redirect` from `@admit` only and refuses `/_abr/` from clients;
called on the API's loopback port directly the gate does no more than any
`/play` request does (link a valid id).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.concurrency import run_in_threadpool

from api.flights import look_up_playback
from core.origin.front_index import ADMIT_PATH, CARRY_LEAD, PUBLIC, SIGNED, WINDOW, bucket, window_end
from core.origin.paths import PLAYBACK_ID, Kind, classify
from core.origin.service import OriginService
from core.services.playback import PlaybackTarget

log = logging.getLogger(__name__)
TO_API, UNKNOWN = "@api", "@unknown"
PREFIX = ADMIT_PATH + "/"


def parse(path: str) -> tuple[str, str, str, str] | None:
    """(window, namespace, playback id, segment) of a gate path, or None if it is not one."""
    window, _, rest = path[len(PREFIX):].partition("/")
    ns, _, rest = rest.partition("/")
    playback_id, _, segment = rest.partition("/")
    if not path.startswith(PREFIX) or ns not in (PUBLIC, SIGNED) or not WINDOW.match(window) \
            or not PLAYBACK_ID.match(playback_id):
        return None
    try:
        if classify(segment).kind is not Kind.SEGMENT:
            return None
    except Exception:  # noqa: BLE001 - not a path the origin serves
        return None
    return window, ns, playback_id, segment


def link(origin: OriginService, playback: PlaybackTarget, window: str | None = None):
    """Link a VOD id for nginx (`FrontIndex.admit`) and make sure this process carries its ids on.

    The one place the API links an id: the gate, and every `/play` request it resolves
    (api/origin.py). (the link, made now) or None; None too for a live id or without the front.
    """
    index = origin.front_index
    if index is None or playback.live:
        return None
    linked = index.admit(playback.playback_id, playback.asset_id, playback.signed, window=window)
    if index.carrier is None:
        ensure_carrier(origin)
    return linked


def redirect(origin: OriginService, parsed: tuple[str, str, str, str], query: str,
             playback: PlaybackTarget | None) -> str:
    """Where nginx goes next (`X-Accel-Redirect`) for a parsed gate path, given the id's fresh target."""
    if playback is None:
        return UNKNOWN
    window, ns, playback_id, segment = parsed
    if playback.live or (SIGNED if playback.signed else PUBLIC) != ns:
        return TO_API  # live; or a signed id without a token, or a public one with one: the API's answer
    if link(origin, playback, window) is None:
        return TO_API
    # Back to the same URL even if the file is not there: nginx finds the link this time, and
    # answers the API's 404 itself (core/origin/front.py, @admit_*), so it never asks twice.
    return f"/play/{playback_id}/{segment}" + (f"?{query}" if query else "")


async def answer(origin: OriginService, path: str, query: str) -> str:
    """The gate's answer: from memory when the id is fresh there, else after one database lookup."""
    parsed = parse(path)
    if parsed is None or origin.front_index is None:
        return TO_API
    known, playback = fresh_in_memory(origin, parsed[2])
    if not known:
        playback = await look_up_playback(origin, parsed[2], ("front", parsed[2]))
    return redirect(origin, parsed, query, playback)


def fresh_in_memory(origin: OriginService, playback_id: str) -> tuple[bool, PlaybackTarget | None]:
    """(known and fresh, target or None for an unknown id) from memory, without I/O."""
    known = origin.playback_known(playback_id)
    if known is None or known[1]:
        return False, None
    return True, known[0]


async def prewarm(origin: OriginService, limit: int) -> int:
    """At start-up: link the newest playable assets' ids for nginx (`FrontIndex.prewarm`) and start
    carrying them on; how many were linked (0 without the front, or with the database away)."""
    index = origin.front_index
    if index is None or limit <= 0:
        return 0
    try:
        found = await run_in_threadpool(origin.recent_vod_playbacks, limit)
        linked = index.prewarm({pid: (t.asset_id, t.signed) for pid, t in found.items()})
    except Exception:  # noqa: BLE001 - the database is away: every id is linked on its first miss instead
        log.warning("the nginx front could not link the newest playback ids at start", exc_info=True)
        return 0
    ensure_carrier(origin)
    return linked


def ensure_carrier(origin: OriginService) -> None:
    """Start this process's carrier once (from a request, on its event loop)."""
    index = origin.front_index
    if index is None or index.carrier is not None:
        return
    try:
        index.carrier = asyncio.get_running_loop().create_task(carry_forever(origin))
    except RuntimeError:
        pass  # no event loop here: a later request starts it


async def carry_forever(origin: OriginService) -> None:
    """Before each window ends, look the ids asked about lately up again (one query) and link them for
    the next window: an id being played is never a miss at a window's turn, and one revoked meanwhile
    is not linked again (it stops within the window)."""
    index = origin.front_index
    while True:
        end = window_end(index.clock())
        await asyncio.sleep(max(0.0, end - CARRY_LEAD - index.clock()))
        ids = index.to_carry()
        try:
            if ids:
                found = await run_in_threadpool(origin.reload_vod_playbacks, ids)
                index.carry({pid: (t.asset_id, t.signed) for pid, t in found.items()}, bucket(end + 0.5))
        except Exception:  # noqa: BLE001 - the database is away (or a bug): those ids are asked for again on a miss
            log.warning("the nginx front could not carry %d playback ids on", len(ids), exc_info=True)
        await asyncio.sleep(max(0.0, end - index.clock()))  # once per window
