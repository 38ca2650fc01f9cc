"""A starting front links the newest playable assets' ids (api/front_gate.py `prewarm`): the database side,
and the real `abr api --front nginx` sending a prewarmed id's first segment itself."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
from sqlmodel import Session

from cli.migrate import upgrade
from core.db.engine import make_engine
from core.db.models import Asset, PlaybackId, utcnow
from core.origin.front_index import bucket
from core.services.playback import recent_vod_playbacks
from core.storage import open_storage
from tests.helpers import settings_from
from tests.origin.fabricate import fabricate
from tests.origin.live import find_perl_module, stop
from tests.origin.test_front import by_nginx, front_index, start_front

SEGMENT = "h264-720p/00002.m4s"


def test_recent_vod_playbacks_are_the_newest_playable_assets_ids(tmp_path):
    settings = settings_from({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")})
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    storage = open_storage(settings.resolved_storage_url)
    old, new = fabricate(engine, storage), fabricate(engine, storage)
    with Session(engine) as session:
        session.get(Asset, old.asset_id).created_at = utcnow() - timedelta(days=1)
        waiting = Asset(status="processing", playable=False)
        session.add(waiting)
        session.flush()
        session.add(PlaybackId(id="waiting0000000000000000a", asset_id=waiting.id, policy="public"))
        session.commit()
    with Session(engine) as session:
        everything = recent_vod_playbacks(session, 10)
        newest = recent_vod_playbacks(session, 2)
        assert recent_vod_playbacks(session, 0) == {}
    engine.dispose()
    assert set(everything) == {old.public_id, old.signed_id, new.public_id, new.signed_id}  # not the unplayable one
    assert set(newest) == {new.public_id, new.signed_id}
    assert everything[new.signed_id].signed and not everything[new.public_id].signed
    assert everything[old.public_id].asset_id == old.asset_id


def test_a_starting_front_links_playable_ids_before_their_first_request(tmp_path):
    find_perl_module()
    for prewarm in ("1000", "0"):
        data = tmp_path / f"data-{prewarm}"
        env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(data), "ABR_SIGNING_KEY": "prewarm-test-key-0123456789abcdef",
               "ABR_LOG_LEVEL": "WARNING", "ABR_FRONT_PREWARM": prewarm}
        settings = settings_from(env)
        upgrade(settings.resolved_database_url)
        engine = make_engine(settings.resolved_database_url)
        made = fabricate(engine, open_storage(settings.resolved_storage_url), segment_size=5000)
        engine.dispose()
        front, url = start_front(tmp_path, env)
        try:
            index = front_index((url, None, None, None, front))
            # The current window's links, before any request; at a window's turn the carrier has linked
            # the next one already (a second before it begins), so both are looked in.
            windows = {bucket(time.time())}
            linked = {p.name for w in windows for sub in ("p", "s") if (index / w / sub).is_dir()
                      for p in (index / w / sub).iterdir()}
            windows.add(bucket(time.time()))
            linked |= {p.name for w in windows for sub in ("p", "s") if (index / w / sub).is_dir()
                       for p in (index / w / sub).iterdir()}
            if prewarm == "0":
                assert made.public_id not in linked  # nothing linked until asked: the gate links it then
            else:
                assert {made.public_id, made.signed_id} <= linked
            first = httpx.get(f"{url}/play/{made.public_id}/{SEGMENT}", timeout=10)
            assert first.status_code == 200 and first.content == made.files[SEGMENT] and by_nginx(first)
        finally:
            stop(front)
