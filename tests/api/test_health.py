from __future__ import annotations

from tests.conftest import free_port
from tests.helpers import app_client


def test_healthz(backend_env):
    with app_client(backend_env) as client:
        assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_all_green(backend_env):
    with app_client(backend_env) as client:
        r = client.get("/readyz")
        body = r.json()
        assert r.status_code == 200, body
        assert set(body["checks"]) == {"database", "broker", "storage", "ffmpeg"}
        assert all(c["ok"] for c in body["checks"].values())


def test_readyz_reports_dead_broker_as_503(backend_env):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with app_client(backend_env, broker_url=dead) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        checks = r.json()["checks"]
        assert checks["broker"]["ok"] is False and checks["broker"]["error"]
        assert checks["database"]["ok"] is True
        assert r.headers["cache-control"] == "no-store"


def test_readyz_reports_broken_storage_as_503(backend_env, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the storage directory should be")
    with app_client(backend_env, storage_url=f"file://{blocker}/storage") as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["storage"]["ok"] is False


def test_readyz_reports_missing_ffmpeg_as_503(backend_env, tmp_path):
    with app_client(backend_env, ffmpeg=str(tmp_path / "no-such-ffmpeg")) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["ffmpeg"]["ok"] is False


def test_database_outage_is_503_not_500(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    from api.app import create_app
    from fastapi.testclient import TestClient
    from tests.helpers import settings_from

    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app(settings_from(env, database_url=dead))
    with TestClient(app) as client:
        r = client.get("/v1/assets", headers={"Authorization": "Bearer some-stored-key"})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "unavailable"
        assert r.headers["retry-after"] == "5" and r.headers["cache-control"] == "no-store"
