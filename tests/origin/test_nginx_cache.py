"""A real nginx cache (docker/nginx-cache.conf) in front of a real uvicorn origin."""

from __future__ import annotations

import dataclasses
import time

from cli.migrate import upgrade
from core.db.engine import make_engine
from core.storage import open_storage
from tests.core.media.manifests.conftest import build_presentation
from tests.helpers import settings_from
from tests.origin.fabricate import fabricate, write_presentation
from tests.origin.live import find_nginx, get, nginx_cache, stop, uvicorn_origin


def publishing_presentation():
    """The sample with its H.265 and VP8 rungs not published yet."""
    full = build_presentation()
    tracks = [t for t in full.tracks if t.rendition.codec in ("h264", "aac")]
    return dataclasses.replace(full, tracks=tracks, complete=False), full


def test_nginx_caches_segments_refreshes_publishing_manifests_and_survives_origin_down(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    settings = settings_from(env)
    find_nginx()  # skip (or fail in CI) before any work
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    storage = open_storage(settings.resolved_storage_url)
    vod = fabricate(engine, storage)
    partial, full = publishing_presentation()
    live = fabricate(engine, storage, presentation=partial)
    engine.dispose()

    with uvicorn_origin(env) as (origin, proc), nginx_cache(tmp_path / "nginx", upstream=origin[7:]) as cdn:
        # Segments: the second request never reaches the origin.
        url = f"{cdn}/play/{vod.public_id}/h264-720p/00002.m4s"
        first, second = get(url), get(url)
        assert (first.status_code, first.headers["x-cache-status"]) == (200, "MISS")
        assert (second.status_code, second.headers["x-cache-status"]) == (200, "HIT")
        assert second.content == vod.files["h264-720p/00002.m4s"]
        assert second.headers["cache-control"] == "public, max-age=31536000, immutable"
        ranged = get(url, headers={"Range": "bytes=-100"})
        assert ranged.status_code == 206 and ranged.content == vod.files["h264-720p/00002.m4s"][-100:]
        assert ranged.headers["x-cache-status"] == "HIT"

        # A complete manifest is cached too.
        vod_master = f"{cdn}/play/{vod.public_id}/master.m3u8"
        assert get(vod_master).headers["x-cache-status"] == "MISS"
        assert get(vod_master).headers["x-cache-status"] == "HIT"

        # A publishing manifest lives 2 s at the edge, then new renditions show up.
        master = f"{cdn}/play/{live.public_id}/master.m3u8"
        before = get(master)
        assert before.headers["cache-control"] == "public, max-age=2"
        assert "hvc1" not in before.text
        assert get(master).headers["x-cache-status"] == "HIT"
        write_presentation(storage, live.asset_id, dataclasses.replace(full, complete=True))
        assert "hvc1" not in get(master).text  # still the cached copy
        time.sleep(3.2)
        after = get(master)
        assert after.headers["x-cache-status"] in ("EXPIRED", "MISS", "REVALIDATED")
        assert "hvc1" in after.text
        assert after.headers["cache-control"].startswith("public, max-age=86400")

        # The origin goes away: cached segments and manifests are still served.
        stop(proc)
        down = get(url)
        assert (down.status_code, down.headers["x-cache-status"]) == (200, "HIT")
        assert down.content == vod.files["h264-720p/00002.m4s"]
        assert get(vod_master).status_code == 200
        never_cached = get(f"{cdn}/play/{vod.public_id}/h264-720p/00003.m4s")
        assert never_cached.status_code == 502  # proves the origin really is down
