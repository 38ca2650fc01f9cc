"""Start the job reconciler in every worker's main process (see core.services.jobs)."""

from __future__ import annotations

from celery.signals import worker_ready, worker_shutdown

from core.queues import TASK_TRANSCODE
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

    _running.append(Reconciler(ctx.engine, send, policy, interval=ctx.settings.reconcile_interval).start())


@worker_shutdown.connect
def _stop(**_) -> None:
    for r in _running:
        r.stop()
