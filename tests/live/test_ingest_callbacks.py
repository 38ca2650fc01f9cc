"""nginx-rtmp's callbacks as nginx sends them (form posts carrying the ingest secret), without nginx."""

from __future__ import annotations

import pytest

from core.live.ingest import ingest_secret
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
