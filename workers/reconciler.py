"""Start the reconciler in every worker's main process: silent jobs (core.services.jobs) and
webhook deliveries whose messages were lost (core.services.webhooks.resend_overdue)."""

from __future__ import annotations

from celery.signals import worker_ready, worker_shutdown

from core.queues import TASK_ROUTES, TASK_TRANSCODE
from core.services import webhooks
from core.services.jobs import JobPolicy, Reconciler

_running: list[Reconciler] = []


def job_policy(settings) -> JobPolicy:
    return JobPolicy(stale_after=settings.job_stale_after, max_attempts=settings.job_max_attempts,
                     resend_queued_after=settings.job_resend_after,
                     heartbeat_interval=max(1.0, min(10.0, settings.job_stale_after / 4)))


@worker_ready.connect
def _start(sender=None, **_) -> None:
    from workers.celery_app import app
    from workers.context import get_worker_context

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


@worker_shutdown.connect
def _stop(**_) -> None:
    for r in _running:
        r.stop()
