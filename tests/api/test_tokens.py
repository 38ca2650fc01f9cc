"""POST /v1/playback-tokens, on the embedded defaults and on PostgreSQL + Redis."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from tests.helpers import app_client
from tests.origin.fabricate import fabricate


def test_token_opens_the_signed_playback_id(backend_env):
    with app_client(backend_env) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        r = client.post("/v1/playback-tokens", json={"playback_id": made.signed_id, "expires_in": 120})
        assert r.status_code == 201, r.text
        body = r.json()
        assert set(body) == {"token", "expires_at"}
        expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        assert abs(expires_at.timestamp() - (time.time() + 120)) < 5
        assert client.get(f"/play/{made.signed_id}/master.m3u8").status_code == 403
        ok = client.get(f"/play/{made.signed_id}/master.m3u8?token={body['token']}")
        assert ok.status_code == 200 and body["token"] in ok.text
        default = client.post("/v1/playback-tokens", json={"playback_id": made.signed_id})
        assert default.status_code == 201


def test_rotated_key_still_accepted(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, signing_key="old-secret") as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        old = client.post("/v1/playback-tokens", json={"playback_id": made.signed_id}).json()["token"]
    with app_client(env, signing_key="new-secret", signing_keys_previous="old-secret") as client:
        assert client.get(f"/play/{made.signed_id}/master.m3u8?token={old}").status_code == 200
        new = client.post("/v1/playback-tokens", json={"playback_id": made.signed_id}).json()["token"]
        assert new.split(".")[0] != old.split(".")[0]  # another kid
    with app_client(env, signing_key="new-secret") as client:
        assert client.get(f"/play/{made.signed_id}/master.m3u8?token={old}").status_code == 403
        assert client.get(f"/play/{made.signed_id}/master.m3u8?token={new}").status_code == 200


@pytest.mark.parametrize(("body", "status"), [
    ({"playback_id": "nosuchplaybackid"}, 404),
    ({"playback_id": "x", "expires_in": 0}, 422),
    ({"playback_id": "x", "expires_in": -5}, 422),
    ({"playback_id": "x", "expires_in": 10**9}, 422),
    ({"playback_id": "x", "expires_in": "soon"}, 422),
    ({"expires_in": 60}, 422),
    ({"playback_id": ""}, 422),
])
def test_errors(tmp_path, body, status):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as client:
        r = client.post("/v1/playback-tokens", json=body)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] in ("not_found", "unprocessable")


def test_needs_a_key_with_write_scope(tmp_path):
    from sqlmodel import Session

    from core.services.keys import create_key

    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        with Session(ctx.engine) as session:
            _, read_only = create_key(session, scopes="read")
            _, writer = create_key(session, scopes="write")
        body = {"playback_id": made.signed_id}
        assert client.post("/v1/playback-tokens", json=body, headers={"Authorization": ""}).status_code == 401
        assert client.post("/v1/playback-tokens", json=body,
                           headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/v1/playback-tokens", json=body,
                           headers={"Authorization": f"Bearer {read_only}"}).status_code == 403
        assert client.post("/v1/playback-tokens", json=body,
                           headers={"Authorization": f"Bearer {writer}"}).status_code == 201
