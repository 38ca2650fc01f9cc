"""A running pipeline: the API app (in-process TestClient) and a real worker process, same settings."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.media.model import Presentation
from core.storage import Storage, open_storage
from tests.helpers import app_client, settings_from, upload_asset
from tests.media_fixtures import clip_maker
from tests.workers.worker_proc import running_worker


@dataclass
class Pipeline:
    client: TestClient
    storage: Storage
    log: Path

    def upload(self, path: Path, settings: dict | None = None) -> dict:
        return upload_asset(self.client, path, settings)

    def wait(self, asset_id: str, *, until=("ready", "errored"), timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            asset = self.client.get(f"/v1/assets/{asset_id}").json()
            if asset.get("status") in until:
                return asset
            time.sleep(0.3)
        raise AssertionError(f"asset {asset_id} not in {until} after {timeout}s: {asset}\n"
                             + self.log.read_text()[-4000:])

    def presentation(self, asset_id: str) -> Presentation:
        return Presentation.from_dict(json.loads(self.storage.get_bytes(f"media/{asset_id}/presentation.json")))


def _pipeline(env: dict, tmp_path: Path):
    settings = settings_from(env)
    storage = open_storage(settings.resolved_storage_url)
    log = tmp_path / "worker.log"
    with app_client(env) as client, running_worker(env, log_path=log):
        yield Pipeline(client=client, storage=storage, log=log)


@pytest.fixture
def pipeline(tmp_path):
    """Embedded defaults: SQLite database, SQLite broker, local storage."""
    yield from _pipeline({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}, tmp_path)


@pytest.fixture
def pipeline_on(backend_env, tmp_path):
    """Parametrised over the embedded defaults and PostgreSQL + Redis."""
    yield from _pipeline(backend_env, tmp_path)


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    return clip_maker(tmp_path_factory.mktemp("pipeline-clips"))
