"""A task travels API-side client → broker → real worker process → result, on SQLite and on Redis."""

from __future__ import annotations

import uuid

from celery import Celery

from core.queues import TASK_PING, celery_config, result_backend_for
from tests.helpers import settings_from
from tests.workers.worker_proc import running_worker


def test_ping_round_trip(backend_env, tmp_path):
    settings = settings_from(backend_env)
    broker = settings.resolved_broker_url
    assert broker.startswith("redis://" if "ABR_BROKER_URL" in backend_env else "sqla+sqlite:///")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    client = Celery("test-client")
    client.conf.update(celery_config(broker, result_backend_for(broker)))
    payload = uuid.uuid4().hex
    with running_worker(backend_env, log_path=tmp_path / "worker.log"):
        result = client.send_task(TASK_PING, args=[payload], queue="default")
        try:
            answer = result.get(timeout=60)
        except Exception:
            print((tmp_path / "worker.log").read_text()[-3000:])
            raise
    assert answer["pong"] == payload
    assert answer["pid"] > 0
