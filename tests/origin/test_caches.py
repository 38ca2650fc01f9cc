"""The origin's in-process caches: staleness rules, single flight, stale-while-revalidate and SQLite's inline lookup."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

import pytest
from sqlmodel import Session

from api import flights
from core.db.inline import Unavailable
from core.db.models import PlaybackId
from core.media.manifests import ManifestFilter
from core.origin.paths import Kind, Target
from core.origin.service import STALE_GRACE
from tests.core.media.manifests.conftest import build_presentation
from tests.origin.fabricate import fabricate, write_presentation

MASTER = Target(Kind.MASTER)


@pytest.fixture
def origin(origin_client, asset):
    origin_client.get(f"/play/{asset.public_id}/master.m3u8")  # the routes make the service and fill it
    return origin_client.app.state.ctx.extra["origin"]


def age(cache_entries: dict, key, seconds_past_expiry: float) -> None:
    expires, value = cache_entries[key]
    cache_entries[key] = (time.monotonic() - seconds_past_expiry, value)


def test_playback_known_fresh_stale_then_forgotten(origin, asset):
    target, stale = origin.playback_known(asset.public_id)
    assert target.asset_id == asset.asset_id and not stale
    age(origin.playbacks._entries, asset.public_id, 1)
    assert origin.playback_known(asset.public_id) == (target, True)
    age(origin.playbacks._entries, asset.public_id, STALE_GRACE + 1)
    assert origin.playback_known(asset.public_id) is None
    assert origin.playback_known("neverlookedup") is None


def _age_presentation(origin, asset_id: str, seconds: float) -> None:
    loaded = origin._presentations[asset_id]
    origin._presentations[asset_id] = dataclasses.replace(loaded, fresh_until=time.monotonic() - seconds)


def test_complete_manifests_may_be_stale_publishing_ones_may_not(origin_client):
    ctx = origin_client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    origin_client.get(f"/play/{made.public_id}/master.m3u8")
    origin = ctx.extra["origin"]
    rendered, stale = origin.manifest_known(made.asset_id, MASTER, ManifestFilter(), "")
    assert not stale and rendered.complete
    _age_presentation(origin, made.asset_id, 1)
    assert origin.manifest_known(made.asset_id, MASTER, ManifestFilter(), "") == (rendered, True)
    _age_presentation(origin, made.asset_id, STALE_GRACE + 1)
    assert origin.manifest_known(made.asset_id, MASTER, ManifestFilter(), "") is None

    publishing = fabricate(ctx.engine, ctx.storage,
                           presentation=dataclasses.replace(build_presentation(), complete=False))
    assert origin_client.get(f"/play/{publishing.public_id}/master.m3u8").status_code == 200
    assert origin.manifest_known(publishing.asset_id, MASTER, ManifestFilter(), "")[1] is False
    _age_presentation(origin, publishing.asset_id, 0.01)
    assert origin.manifest_known(publishing.asset_id, MASTER, ManifestFilter(), "") is None


def test_stale_playback_is_served_while_one_refresh_runs(origin_client, origin, asset, monkeypatch):
    """Where a lookup takes the thread pool (PostgreSQL; here SQLite with the inline read made unavailable,
    as a busy database makes it): a deleted playback id's stale entry answers once more, and the
    refresh behind it makes it 404."""
    ctx = origin_client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    url = f"/play/{made.public_id}/master.m3u8"
    assert origin_client.get(url).status_code == 200
    with Session(ctx.engine) as session:
        session.delete(session.get(PlaybackId, made.public_id))
        session.commit()
    assert origin_client.get(url).status_code == 200  # fresh in the cache: as before this change

    def unavailable(playback_id):
        raise Unavailable("as PostgreSQL, or SQLite locked")

    monkeypatch.setattr(origin, "playback_inline", unavailable)
    age(origin.playbacks._entries, made.public_id, 1)
    assert origin_client.get(url).status_code == 200  # stale: answered now, refreshed behind it
    deadline = time.monotonic() + 5
    while origin.playback_known(made.public_id)[0] is not None:
        assert time.monotonic() < deadline, "the background refresh never ran"
        time.sleep(0.02)
    r = origin_client.get(url)
    assert r.status_code == 404 and r.headers["cache-control"] == "no-store"


def test_stale_playback_on_sqlite_is_looked_up_again_at_once(origin_client, origin, asset):
    """On an SQLite file the lookup is a read on the event loop (core/db/inline.py), cheaper than a
    thread: a stale entry is looked up again by the request that finds it, so a deleted id 404s on the
    first request after its lifetime, and a live one is answered fresh, with no refresh left behind."""
    ctx = origin_client.app.state.ctx
    assert origin.inline is not None  # the test app's database is an SQLite file
    made = fabricate(ctx.engine, ctx.storage)
    gone, kept = f"/play/{made.public_id}/master.m3u8", f"/play/{asset.public_id}/master.m3u8"
    assert origin_client.get(gone).status_code == 200 and origin_client.get(kept).status_code == 200
    with Session(ctx.engine) as session:
        session.delete(session.get(PlaybackId, made.public_id))
        session.commit()
    assert origin_client.get(gone).status_code == 200  # fresh in the cache for its lifetime, as before
    age(origin.playbacks._entries, made.public_id, 1)
    age(origin.playbacks._entries, asset.public_id, 1)
    r = origin_client.get(gone)
    assert r.status_code == 404 and r.headers["cache-control"] == "no-store"
    assert origin_client.get(kept).status_code == 200
    assert origin.playback_known(asset.public_id)[1] is False  # fresh again
    assert flights.in_flight() == 0


def test_stale_complete_presentation_is_reread_behind_the_answer(origin_client, origin):
    ctx = origin_client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    url = f"/play/{made.public_id}/master.m3u8"
    first = origin_client.get(url)
    smaller = build_presentation()
    smaller = dataclasses.replace(smaller, tracks=[t for t in smaller.tracks if not t.id.startswith("h264-720")])
    write_presentation(ctx.storage, made.asset_id, smaller)
    _age_presentation(origin, made.asset_id, 1)
    assert origin_client.get(url).text == first.text  # the stale copy, once
    deadline = time.monotonic() + 5
    while origin_client.get(url).text == first.text:
        assert time.monotonic() < deadline, "the presentation was never re-read"
        time.sleep(0.02)


def test_single_flight_runs_once_for_concurrent_callers():
    calls, gate = [], threading.Event()

    def lookup(x):
        calls.append(x)
        gate.wait(5)
        return x * 2

    async def main():
        waiting = [asyncio.create_task(flights.single_flight(("k",), lookup, 21)) for _ in range(50)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*waiting)

    assert asyncio.run(main()) == [42] * 50
    assert calls == [21]
    assert flights.in_flight() == 0


def test_revalidate_does_not_wait_and_swallows_failures(caplog):
    started, gate = threading.Event(), threading.Event()
    calls = []

    def refresh():
        calls.append(1)
        started.set()
        gate.wait(5)
        raise RuntimeError("database down")

    async def main():
        for _ in range(20):
            flights.revalidate(("r",), refresh)  # returns at once, one call in flight
        assert flights.in_flight() == 1
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
        gate.set()
        while flights.in_flight():
            await asyncio.sleep(0.01)

    with caplog.at_level("DEBUG", logger="api.flights"):
        asyncio.run(main())
    assert calls == [1]
    assert "database down" in caplog.text


def test_filter_numbers_do_not_grow_the_manifest_cache(origin_client):
    """Over a thousand distinct ?max_height=/min_height=/max_bitrate= values: one cache entry per rendition subset."""
    ctx = origin_client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    presentation = build_presentation()
    queries = ([{"max_height": str(v)} for v in range(360, 2000, 3)]
               + [{"min_height": str(v)} for v in range(0, 721, 3)]
               + [{"max_bitrate": str(v)} for v in range(800_000, 5_000_000, 9_973)])
    for query in queries:
        for name in ("master.m3u8", "manifest.mpd"):
            r = origin_client.get(f"/play/{made.public_id}/{name}", params=query)
            assert r.status_code == 200, (query, r.text)
    origin = ctx.extra["origin"]
    entries = [key for key in origin._manifests if key[0] == made.asset_id]
    # The subsets these filters can keep of 720p/360p H.264, 720p H.265 and 360p VP8, worked out by hand:
    # all; 360p (H.264 + VP8); 720p (H.264 + H.265); H.264 360p alone; all but H.264 720p;
    # H.264 360p + VP8 360p + H.265 720p ... at most 6 here, whatever the numbers.
    subsets = {frozenset(t.id for t in presentation.video_tracks if ManifestFilter.from_query(q).matches(t))
               for q in queries}
    assert len(queries) > 1000 and len(subsets) <= 6
    assert len(entries) <= 2 * len(subsets)  # a master playlist and an MPD per subset
