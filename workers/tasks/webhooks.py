"""`webhooks.deliver`: one signed attempt per run; the next attempt is sent with a countdown (backoff)."""

from __future__ import annotations

from celery import current_app, shared_task

from core import events
from core.queues import TASK_ROUTES, TASK_WEBHOOK_DELIVER
from core.services import webhooks
from workers.context import get_worker_context


def _send(name: str, *args: object, countdown: float | None = None) -> None:
    current_app.send_task(name, args=list(args), queue=TASK_ROUTES.get(name, {}).get("queue"), countdown=countdown)


# Events emitted inside a worker (asset.playable, asset.ready, asset.errored, live_stream.*) become
# webhook deliveries, sent with this.
events.subscribe(webhooks.emit)
webhooks.set_default_sender(_send)


@shared_task(name=TASK_WEBHOOK_DELIVER, acks_late=True)
def deliver(delivery_id: str) -> None:
    ctx = get_worker_context()
    s = ctx.settings
    delay = webhooks.attempt_delivery(ctx.engine, delivery_id, backoff=s.webhook_backoff_s,
                                      timeout=s.webhook_timeout, allow_private=s.allow_private_urls)
    if delay is not None:
        _send(TASK_WEBHOOK_DELIVER, delivery_id, countdown=delay)
