"""The API's side of the broker: it only sends tasks by name (it never imports workers)."""

from __future__ import annotations

from celery import Celery

from core.queues import TASK_ROUTES, celery_config


class TaskQueue:
    def __init__(self, broker_url: str) -> None:
        self.app = Celery("abr-api")
        self.app.conf.update(celery_config(broker_url))

    def send(self, name: str, *args: object) -> None:
        route = TASK_ROUTES.get(name, {})
        self.app.send_task(name, args=list(args), queue=route.get("queue"))

    def check(self, timeout: float = 3.0) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
