"""nginx-rtmp's callbacks as nginx sends them (form posts carrying the ingest secret), without nginx."""

from __future__ import annotations

import pytest

from core.live.ingest import ingest_secret
from core.live.srt_ingest import INGEST_SECRET_HEADER
from tests.helpers import app_client


@pytest.fixture
def client(tmp_path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as c:
        yield c


def _call(client, path: str, secret: str, **form) -> int:
    return client.post(f"/v1/ingest/rtmp/{path}", params={"secret": secret},
                       data={"app": "live", "addr": "203.0.113.5", **form}).status_code


def test_on_update_keeps_publishers_until_their_stream_is_stopped(client):
    settings = client.app.state.ctx.settings
    secret = ingest_secret(settings.signing_key, settings.ingest_secret)
    stream = client.post("/v1/live-streams", json={}).json()
    key = stream["stream_key"]
    assert _call(client, "update", "wrong", call="update_publish", name=key) == 403
    assert _call(client, "publish", secret, call="publish", name=key) == 204
    assert _call(client, "update", secret, call="update_publish", name=key) == 204
    assert _call(client, "update", secret, call="update_publish", name="sk_unknown") == 403
    assert client.post(f"/v1/live-streams/{stream['id']}/stop").status_code == 200  # stop requested
    assert _call(client, "update", secret, call="update_publish", name=key) == 403
    assert _call(client, "update", secret, call="update_play", name=key) == 204  # players are left alone
    assert _call(client, "publish", secret, call="publish", name=key) == 403


def test_a_deleted_streams_publisher_is_dropped(client):
    settings = client.app.state.ctx.settings
    secret = ingest_secret(settings.signing_key, settings.ingest_secret)
    stream = client.post("/v1/live-streams", json={}).json()
    assert _call(client, "publish", secret, call="publish", name=stream["stream_key"]) == 204
    assert client.delete(f"/v1/live-streams/{stream['id']}").status_code == 204
    assert _call(client, "update", secret, call="update_publish", name=stream["stream_key"]) == 403


def _srt(client, path: str, secret: str, **form):
    return client.post(f"/v1/ingest/srt/{path}", headers={INGEST_SECRET_HEADER: secret},
                       data={"addr": "203.0.113.5", **form})


def test_srt_callbacks_admit_hand_out_the_passphrase_and_refuse(client):
    """The SRT listener's handshake check (core/live/srt_ingest.ApiGate) and its periodic update."""
    settings = client.app.state.ctx.settings
    secret = ingest_secret(settings.signing_key, settings.ingest_secret)
    plain = client.post("/v1/live-streams", json={}).json()
    locked = client.post("/v1/live-streams", json={"srt_passphrase": "ten-chars-or-more"}).json()
    assert client.post("/v1/live-streams", json={"srt_passphrase": "short"}).status_code == 422
    assert _srt(client, "publish", "wrong", name=plain["stream_key"]).status_code == 403
    assert client.post("/v1/ingest/srt/publish", data={"name": plain["stream_key"]}).status_code == 403
    assert _srt(client, "publish", secret, name="sk_unknown").status_code == 404
    assert _srt(client, "check", secret, name="sk_unknown").status_code == 404
    # The handshake check changes nothing (a caller with a wrong passphrase fails after it).
    checked = _srt(client, "check", secret, name=locked["stream_key"])
    assert checked.status_code == 200 and checked.json() == {"passphrase": "ten-chars-or-more"}
    assert client.get(f"/v1/live-streams/{locked['id']}").json()["status"] == "idle"
    r = _srt(client, "publish", secret, name=plain["stream_key"])
    assert r.status_code == 200 and r.json() == {"passphrase": None}
    assert client.get(f"/v1/live-streams/{plain['id']}").json()["status"] == "connecting"
    assert _srt(client, "publish", secret, name=locked["stream_key"]).json() == {"passphrase": "ten-chars-or-more"}
    assert _srt(client, "update", secret, name=plain["stream_key"]).status_code == 204
    assert client.post(f"/v1/live-streams/{plain['id']}/stop").status_code == 200
    assert _srt(client, "update", secret, name=plain["stream_key"]).status_code == 403
    assert _srt(client, "publish-done", secret, name=plain["stream_key"]).status_code == 204
    ended = client.post("/v1/live-streams", json={}).json()
    client.post(f"/v1/live-streams/{ended['id']}/stop")
    assert _srt(client, "publish", secret, name=ended["stream_key"]).status_code == 403
    assert _srt(client, "check", secret, name=ended["stream_key"]).status_code == 403
