"""The Celery application. `celery -A workers.celery_app` and `abr worker` both load this.

Settings are read here, at the worker's entry point, and handed to tasks
through `workers.context`. This module knows no task module: the worker loads
the `workers.tasks` package (`autodiscover_tasks`), whose modules register
their tasks (`shared_task`) and the reconciler (worker signals) themselves.
"""

from __future__ import annotations

from celery import Celery

from core.config import Settings, get_settings
from core.queues import celery_config, result_backend_for
from workers import context


def make_celery(settings: Settings) -> Celery:
    app = Celery("abr")
    broker = settings.resolved_broker_url
    if broker.startswith("sqla+sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if broker.startswith("sqla+"):
        # kombu's virtual transports sleep `polling_interval` (1 s) after an empty
        # poll, ~0.7 s of dispatch latency on average (measured by bench/playable.py).
        # The SQLA transport hands broker_transport_options to create_engine, which
        # rejects `polling_interval`, so it is set on the transport class instead:
        # ~10 cheap SELECTs a second from an idle worker, for ~0.6 s sooner playback.
        # The channel is replaced by one that a lost pool child's requeue cannot
        # break (workers/sqla_broker.py, issue #15).
        from workers import sqla_broker

        sqla_broker.install(polling_interval=0.1)
    app.conf.update(celery_config(broker, result_backend_for(broker)))
    context.configure(settings)
    app.autodiscover_tasks(["workers"])  # imports `workers.tasks` when the worker starts
    return app


app = make_celery(get_settings())
