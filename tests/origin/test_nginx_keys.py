"""Encrypted playback behind the nginx cache (docker/nginx-cache.conf): segments cached, keys never."""

from __future__ import annotations

import time

import httpx
from sqlmodel import Session

from cli.migrate import upgrade
from core.db.engine import make_engine
from core.db.models import PlaybackId, new_id
from core.media.encryption import b64url
from core.services.content_keys import ensure_content_key, key_master
from core.services.playback import SigningKeys, sign_token
from core.storage import open_storage
from tests.helpers import settings_from
from tests.origin.fabricate import fabricate
from tests.origin.live import find_nginx, get, nginx_cache, stop, uvicorn_origin


def test_nginx_caches_encrypted_segments_but_never_keys(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    settings = settings_from(env)
    find_nginx()  # skip (or fail in CI) before any work
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    storage = open_storage(settings.resolved_storage_url)
    vod = fabricate(engine, storage)
    with Session(engine) as s:
        pid = PlaybackId(id=new_id("", 24), asset_id=vod.asset_id, policy="encrypted")
        s.add(pid)
        s.commit()
        pid = pid.id
    engine.dispose()
    key = ensure_content_key(storage, key_master(settings), vod.asset_id)
    keys = SigningKeys.from_settings(settings.signing_key, settings.signing_keys_previous, settings.signing_key_id)
    token = sign_token(pid, keys=keys, expires_at=int(time.time()) + 600)
    body = {"kids": [b64url(key.kid)], "type": "temporary"}

    with uvicorn_origin(env) as (origin, proc), nginx_cache(tmp_path / "nginx", upstream=origin[7:]) as cdn:
        segment = f"{cdn}/play/{pid}/h264-720p/00002.m4s?token={token}"
        assert get(segment).headers["x-cache-status"] == "MISS"
        assert get(segment).headers["x-cache-status"] == "HIT"
        licence = f"{cdn}/play/{pid}/keys/clearkey?token={token}"
        for _ in range(2):
            got = httpx.post(licence, json=body, timeout=10)
            assert got.status_code == 200, got.text
            assert got.headers["cache-control"] == "private, no-store"
            assert got.headers.get("x-cache-status") in (None, "", "BYPASS", "MISS")
            assert got.json()["keys"][0]["kid"] == b64url(key.kid)
        assert httpx.post(f"{cdn}/play/{pid}/keys/clearkey", json=body, timeout=10).status_code == 403
        # The HLS identity key is a GET, which nginx would cache if the origin let it: it must not.
        identity = f"{cdn}/play/{pid}/keys/identity?token={token}"
        for _ in range(2):
            got = httpx.get(identity, timeout=10)
            assert got.status_code == 200 and got.content == key.key
            assert got.headers["cache-control"] == "private, no-store"
            assert got.headers.get("x-cache-status") in (None, "", "BYPASS", "MISS")
        assert httpx.get(f"{cdn}/play/{pid}/keys/identity", timeout=10).status_code == 403

        # With the origin gone the cached segment is still served, and no key is: nothing was kept.
        stop(proc)
        assert get(segment).headers["x-cache-status"] == "HIT"
        assert httpx.post(licence, json=body, timeout=10).status_code == 502
        assert httpx.get(identity, timeout=10).status_code == 502
