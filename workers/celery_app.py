"""The Celery application. `celery -A workers.celery_app` and `abr worker` both load this.

Settings are read here, at the worker's entry point, and handed to tasks
through `workers.context`.
"""

from __future__ import annotations

from celery import Celery

from core.config import Settings, get_settings
from core.queues import celery_config, result_backend_for


def make_celery(settings: Settings) -> Celery:
    app = Celery("abr", include=["workers.tasks.system", "workers.tasks.transcode"])
    broker = settings.resolved_broker_url
    if broker.startswith("sqla+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.conf.update(celery_config(broker, result_backend_for(broker)))
    app.abr_settings = settings  # type: ignore[attr-defined]
    return app


app = make_celery(get_settings())
