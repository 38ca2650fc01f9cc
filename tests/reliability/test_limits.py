"""Refusals: size, duration, resolution, frame rate and stream limits; rate limits; key scopes."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from core.services.keys import create_key, revoke_key
from tests.helpers import app_client
from tests.media_fixtures import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("limits") / "c.mp4", duration=2, width=320, height=240, fps=30)


def _post(client, path):
    with open(path, "rb") as fh:
        return client.post("/v1/assets", files={"file": ("c.mp4", fh, "video/mp4")})


@pytest.mark.parametrize(("limit", "status", "words"), [
    pytest.param({"max_upload_bytes": 1000}, 413, "larger than the limit", id="size"),
    pytest.param({"max_duration": 1}, 422, "limit is 1 s", id="duration"),
    pytest.param({"max_pixels": 320 * 200}, 422, "320x240", id="resolution"),
    pytest.param({"max_frame_rate": 25}, 422, "30.0 fps", id="frame-rate"),
    pytest.param({"max_streams": 1}, 422, "2 streams", id="streams"),
])
def test_limits_refuse_before_anything_is_stored(tmp_path, clip, limit, status, words):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, **limit) as client:
        r = _post(client, clip)
        assert r.status_code == status, r.text
        assert words in r.json()["error"]["message"]
        assert client.get("/v1/assets").json()["count"] == 0
        storage = tmp_path / "data" / "storage"
        assert not storage.exists() or not any(p.is_file() for p in storage.rglob("*"))
        assert not any((tmp_path / "data" / "tmp").glob("upload-*"))  # the temp file is gone too


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, rate_limit=1, rate_burst=5) as client:
        codes = [client.get("/v1/assets").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5 and 429 in codes[5:]
        r = client.get("/v1/assets")
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"
        assert client.get("/healthz").status_code == 200  # the origin and probes are not limited


def test_rate_limits_hold_across_api_processes_through_redis(tmp_path, redis_url):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"), "ABR_BROKER_URL": redis_url}
    with app_client(env, rate_limit=1, rate_burst=5) as a, app_client(env, rate_limit=1, rate_burst=5) as b:
        assert a.app.state.ctx.rate_limiter.shared and b.app.state.ctx.rate_limiter.shared
        codes = [client.get("/v1/assets").status_code for client in (a, b) * 4]
        assert codes == [200] * 5 + [429] * 3  # one budget for the key, whichever process answers
        assert int(b.get("/v1/assets").headers["retry-after"]) >= 1


def test_rate_limits_count_per_process_on_the_embedded_defaults(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, rate_limit=1, rate_burst=5) as a, app_client(env, rate_limit=1, rate_burst=5) as b:
        assert not a.app.state.ctx.rate_limiter.shared
        assert [client.get("/v1/assets").status_code for client in (a, b) * 4] == [200] * 8
        assert [a.get("/v1/assets").status_code for _ in range(2)] == [200, 429]


def test_an_unreachable_redis_never_fails_a_request(tmp_path):
    from tests.conftest import free_port

    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"),
           "ABR_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with app_client(env, rate_limit=1, rate_burst=5) as client:
        assert client.app.state.ctx.rate_limiter.shared
        codes = [client.get("/v1/assets").status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429] * 2  # counted in this process meanwhile


def test_scopes_and_revocation(tmp_path, clip):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env) as client:
        engine = client.app.state.ctx.engine
        with Session(engine) as s:
            reader, read_key = create_key(s, name="ro", scopes="read")
            reader_id = reader.id
            _, write_key = create_key(s, name="rw", scopes="write")
        as_reader = {"Authorization": f"Bearer {read_key}"}
        assert client.get("/v1/assets", headers=as_reader).status_code == 200
        with open(clip, "rb") as fh:
            r = client.post("/v1/assets", files={"file": ("c.mp4", fh)}, headers=as_reader)
        assert r.status_code == 403 and "write" in r.json()["error"]["message"]
        assert client.get("/v1/assets", headers={"Authorization": f"Bearer {write_key}"}).status_code == 200
        with Session(engine) as s:
            revoke_key(s, reader_id)
        r = client.get("/v1/assets", headers=as_reader)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong", "Basic dXNlcjpwYXNz", "bearer  "])
def test_missing_or_wrong_keys_are_401_with_the_error_body(tmp_path, header):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env) as client:
        headers = {"Authorization": header} if header is not None else {}
        client.headers.pop("Authorization", None)
        for method, path in [("GET", "/v1/assets"), ("GET", "/v1/assets/x"), ("DELETE", "/v1/assets/x"),
                             ("POST", "/v1/assets")]:
            r = client.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"]["code"] == "unauthorized"


def test_sar_64_source_is_refused_with_a_clear_422(tmp_path):
    # A 320x240 picture with 64:1 pixels would plan a 20480x240 rung.
    sar = make_clip(tmp_path / "sar.mp4", duration=1, width=320, height=240, sar="64:1")
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env) as client:
        r = _post(client, sar)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"] == (
            "the source's sample aspect ratio is 64:1, so its 320x240 picture displays at 20480x240 "
            "(aspect ratio 85.3:1, after its sample aspect ratio); at most 8:1 is encoded")
        assert client.get("/v1/assets").json()["count"] == 0


def test_huge_header_upload_is_refused_before_any_decode(tmp_path, monkeypatch):
    from core.media import probe as probe_module
    from tests.core.media.test_limits import huge_avi

    def refuse(*_args, **_kwargs):
        raise AssertionError("the probe decoded a frame")

    monkeypatch.setattr(probe_module, "_scan_video", refuse)  # the API probes in this process
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env) as client:
        r = _post(client, huge_avi(tmp_path))
        assert r.status_code == 422, r.text
        assert "9000x9000" in r.json()["error"]["message"]
