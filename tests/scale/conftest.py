"""Scale-out fixtures: PostgreSQL + Redis + an S3-compatible server (moto), API in-process, real worker processes.

Each worker gets its own data directory: workers share nothing but the
broker, the database and the bucket (sources are downloaded from the bucket,
segments uploaded to it, the origin serves from it).
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.media.model import Presentation
from core.storage import Storage, open_storage
from tests.conftest import PG_ADMIN_URL, free_port
from tests.helpers import app_client, settings_from, upload_asset
from tests.media_fixtures import clip_maker
from tests.s3_server import s3_client, s3_endpoint  # noqa: F401
from tests.workers.worker_proc import running_worker


@dataclass
class Cluster:
    client: TestClient
    storage: Storage
    env: dict[str, str]
    logs: list[Path] = field(default_factory=list)
    metrics_ports: list[int] = field(default_factory=list)

    def upload(self, path: Path, settings: dict | None = None) -> dict:
        return upload_asset(self.client, path, settings)

    def wait(self, asset_id: str, *, until=("ready", "errored"), timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        asset: dict = {}
        while time.monotonic() < deadline:
            asset = self.client.get(f"/v1/assets/{asset_id}").json()
            if asset.get("status") in until:
                return asset
            time.sleep(0.2)
        tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in self.logs)
        raise AssertionError(f"asset {asset_id} not in {until} after {timeout}s: {asset}\n{tails}")

    def presentation(self, asset_id: str) -> Presentation:
        return Presentation.from_dict(json.loads(self.storage.get_bytes(f"media/{asset_id}/presentation.json")))


@pytest.fixture
def services_env(pg_database, redis_url, s3_endpoint, tmp_path) -> dict[str, str]:  # noqa: F811
    """ABR_* for PostgreSQL (a fresh database), Redis and a fresh bucket; API data dir under tmp_path."""
    import psycopg
    import redis

    name = f"abr_s_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis.Redis.from_url(redis_url).flushdb()
    bucket = f"scale-{uuid.uuid4().hex[:8]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    yield {
        "ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "api"),
        "ABR_DATABASE_URL": pg_database.rsplit("/", 1)[0] + "/" + name, "ABR_BROKER_URL": redis_url,
        "ABR_STORAGE_URL": f"s3://{bucket}/abr", "ABR_S3_ENDPOINT_URL": s3_endpoint,
        "ABR_CHUNK_DURATION": "8", "ABR_CHUNK_MIN_SOURCE": "16",
        # The fixed table: these tests check how chunks spread over workers and join, with expected rungs; the
        # per-title default of the chunked path is tests/pipeline/test_per_title_chunked.py's.
        "ABR_AUTO_LADDER_CHUNKED": "false", "ABR_LOG_LEVEL": "INFO",
        "ABR_JOB_STALE_AFTER": "30",
    }
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster(env: dict[str, str], tmp_path: Path, workers: list[tuple[str, str]]) -> tuple[ExitStack, Cluster]:
    """The API (TestClient) plus one worker process per (name, queues), each with its own data dir."""
    stack = ExitStack()
    settings = settings_from(env)
    storage = open_storage(settings.resolved_storage_url, s3_endpoint_url=settings.s3_endpoint_url)
    client = stack.enter_context(app_client(env))  # migrates the database first
    cluster = Cluster(client=client, storage=storage, env=env)
    for name, queues in workers:
        port = free_port()
        worker_env = dict(env, ABR_DATA_DIR=str(tmp_path / name), ABR_WORKER_METRICS_PORT=str(port))
        log = tmp_path / f"{name}.log"
        stack.enter_context(running_worker(worker_env, log_path=log, queues=queues))
        cluster.logs.append(log)
        cluster.metrics_ports.append(port)
    return stack, cluster


@pytest.fixture(scope="session")
def scale_clips(tmp_path_factory):
    return clip_maker(tmp_path_factory.mktemp("scale-clips"))
