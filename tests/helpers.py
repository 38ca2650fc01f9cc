"""Helpers shared by tests: settings from an env mapping, a migrated app client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from cli.migrate import upgrade
from core.config import Settings

TEST_KEY = "abr_test_key_0123456789abcdefghijklmnop"


@contextmanager
def patched_env(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def settings_from(env: dict[str, str], **overrides) -> Settings:
    with patched_env(env):
        return Settings(**overrides)


@contextmanager
def app_client(env: dict[str, str], **overrides) -> Iterator[TestClient]:
    from api.app import create_app

    overrides.setdefault("api_keys", TEST_KEY)
    settings = settings_from(env, **overrides)
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {TEST_KEY}"
        yield client
    app.state.ctx.engine.dispose()


def upload_asset(client, path, settings: dict | None = None) -> dict:
    """`POST /v1/assets` with `path` as a multipart file (and `settings`); the created asset."""
    import json

    with open(path, "rb") as fh:
        data = {"settings": json.dumps(settings)} if settings is not None else {}
        r = client.post("/v1/assets", files={"file": (path.name, fh, "video/mp4")}, data=data)
    assert r.status_code == 201, r.text
    return r.json()
