"""What anyone may ask: /play errors without storage keys, /readyz without details, /metrics behind a token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from core.layout import media_key, presentation_key
from core.services.keys import create_key
from tests.conftest import free_port
from tests.helpers import app_client
from tests.origin.fabricate import fabricate

METRICS_TOKEN = "metrics-" + "m" * 40


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}


def _anonymous(client: TestClient, path: str, **headers: str):
    return client.get(path, headers={"Authorization": "", **headers})


def test_play_404s_name_no_storage_key_and_no_asset_id(env):
    with app_client(env) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        ctx.storage.delete(media_key(made.asset_id, "h264-720p/00002.m4s"))  # listed, but gone from storage
        gone = _anonymous(client, f"/play/{made.public_id}/h264-720p/00002.m4s")
        ctx.storage.delete(media_key(made.asset_id, "h264-720p/init.mp4"))
        no_init = _anonymous(client, f"/play/{made.public_id}/h264-720p/init.mp4")
        unknown_rendition = _anonymous(client, f"/play/{made.public_id}/h264-9999p/index.m3u8")
        ctx.storage.delete(presentation_key(made.asset_id))
        # Forget the cached presentation (in the one OriginService both the fast path and the
        # routes use): the next request reads storage again.
        ctx.extra["origin"].forget(made.asset_id)
        no_presentation = _anonymous(client, f"/play/{made.public_id}/manifest.mpd")
    for r in (gone, no_init, unknown_rendition, no_presentation):
        assert r.status_code == 404, (r.request.url, r.text)
        assert r.json()["error"]["code"] == "not_found"
        for leak in (made.asset_id, "media/", "sources/", "presentation.json", "storage"):
            assert leak not in r.text, f"{r.request.url}: {r.text}"
    assert gone.json()["error"]["message"] == "no such file"


def test_readyz_details_only_for_loopback_or_an_admin_key(env):
    with app_client(env) as client:
        ctx = client.app.state.ctx
        with Session(ctx.engine) as session:
            _, read_key = create_key(session, name="reader", scopes="read")
        public = _anonymous(client, "/readyz")
        assert public.status_code == 200 and public.json() == {"status": "ok"}
        assert public.headers["cache-control"] == "no-store"
        reader = client.get("/readyz", headers={"Authorization": f"Bearer {read_key}"})
        assert reader.json() == {"status": "ok"}
        wrong = client.get("/readyz", headers={"Authorization": "Bearer not-a-key"})
        assert wrong.status_code == 200 and wrong.json() == {"status": "ok"}
        admin = client.get("/readyz")  # app_client sends the admin key
        assert set(admin.json()["checks"]) == {"database", "broker", "storage", "ffmpeg"}
        loopback = TestClient(client.app, client=("127.0.0.1", 40000))
        assert set(loopback.get("/readyz").json()["checks"]) == {"database", "broker", "storage", "ffmpeg"}
        ipv6_loopback = TestClient(client.app, client=("::1", 40000))
        assert "checks" in ipv6_loopback.get("/readyz").json()


def test_a_failing_readyz_says_503_to_anyone_and_how_only_to_operators(env):
    dead_port = free_port()
    with app_client(env, broker_url=f"redis://127.0.0.1:{dead_port}/0") as client:
        public = _anonymous(client, "/readyz")
        assert public.status_code == 503 and public.json() == {"status": "failing"}
        assert str(dead_port) not in public.text
        admin = client.get("/readyz")
        assert admin.status_code == 503 and admin.json()["checks"]["broker"]["ok"] is False


def test_metrics_need_the_bearer_token_when_one_is_set(env):
    with app_client(env, metrics_token=METRICS_TOKEN) as client:
        missing = _anonymous(client, "/metrics")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert METRICS_TOKEN not in missing.text
        assert _anonymous(client, "/metrics", Authorization=f"Bearer {METRICS_TOKEN}x").status_code == 401
        assert client.get("/metrics").status_code == 401  # an admin API key is not the metrics token
        ok = _anonymous(client, "/metrics", Authorization=f"Bearer {METRICS_TOKEN}")
        assert ok.status_code == 200 and "abr_" in ok.text
    with app_client(env) as client:  # no token set: open, as before (private network only)
        assert _anonymous(client, "/metrics").status_code == 200
