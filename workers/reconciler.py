"""Start the reconciler in every worker's main process: silent jobs (core.services.jobs) and
webhook deliveries whose messages were lost (core.services.webhooks.resend_overdue), and live
streams whose worker died (core.live.takeover.Reclaimer, on its own faster schedule).

It registers itself: importing this module connects it to the worker's start and
stop signals (`workers.tasks` imports it; the Celery app module knows neither)."""

from __future__ import annotations

from celery import current_app
from celery.signals import worker_ready, worker_shutdown

from core.live.takeover import Reclaimer
from core.queues import TASK_LIVE, TASK_ROUTES, TASK_TRANSCODE
from core.services import webhooks
from core.services.jobs import Reconciler
from workers.config import job_policy, lease_policy
from workers.context import get_worker_context

_running: list[Reconciler | Reclaimer] = []


@worker_ready.connect
def _start(sender=None, **_) -> None:
    app = current_app
    ctx = get_worker_context()
    policy = job_policy(ctx.settings)

    def send(asset_id: str) -> None:
        app.send_task(TASK_TRANSCODE, args=[asset_id], queue="transcode")

    def send_task(name: str, *args: object) -> None:
        app.send_task(name, args=list(args), queue=TASK_ROUTES.get(name, {}).get("queue"))

    def resend_webhooks() -> None:
        # As overdue as a queued job must be before it is resent: longer than any queue holds a message.
        webhooks.resend_overdue(ctx.engine, send_task, overdue_after=ctx.settings.job_resend_after)

    _running.append(Reconciler(ctx.engine, send, policy, interval=ctx.settings.reconcile_interval,
                               also=(resend_webhooks,)).start())
    # Live streams whose worker died move to another worker within seconds, not reconcile_interval.
    _running.append(Reclaimer(ctx.engine, lambda stream_id: send_task(TASK_LIVE, stream_id),
                              lease_policy(ctx.settings)).start())


@worker_shutdown.connect
def _stop(**_) -> None:
    for r in _running:
        r.stop()
