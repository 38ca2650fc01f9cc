"""Jobs survive crashes because the database, not the broker, is their record.

- `claim` is an atomic conditional UPDATE: a job runs only if it is queued, or
  running with a stale heartbeat (its worker died). A duplicate message (the
  broker redelivering, or the reconciler resending) finds the job taken and
  does nothing, so resending is always safe.
- `Heartbeat` refreshes `heartbeat_at` while a job runs.
- `reconcile` resends jobs whose worker went silent (SIGKILL, OOM, power) or
  whose message was lost (kombu's SQLAlchemy transport never redelivers a
  fetched message), and gives up after `max_attempts` with the reason.
`heartbeat_at` doubles as "last sent" for queued jobs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.db.models import Asset, Job, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobPolicy:
    stale_after: float = 60.0  # s without a heartbeat: the worker is gone
    resend_queued_after: float = 600.0  # s a queued job may wait before its message is sent again
    max_attempts: int = 3
    heartbeat_interval: float = 10.0


def latest_job(session: Session, asset_id: str) -> Job | None:
    return session.exec(select(Job).where(Job.asset_id == asset_id).order_by(Job.created_at.desc())).first()


def claim(engine: Engine, asset_id: str, policy: JobPolicy) -> Job | None:
    """Take the asset's job for this worker, or None if another worker has it or it is finished."""
    with Session(engine, expire_on_commit=False) as s:
        job = latest_job(s, asset_id)
        if job is None:
            return None
        now = utcnow()
        stale = now - timedelta(seconds=policy.stale_after)
        result = s.exec(
            update(Job)
            .where(Job.id == job.id)
            .where(or_(Job.status == "queued",
                       and_(Job.status == "running", func.coalesce(Job.heartbeat_at, Job.created_at) < stale)))
            .values(status="running", attempts=Job.attempts + 1, heartbeat_at=now)
        )
        s.commit()
        if result.rowcount != 1:
            return None
        s.refresh(job)
        return job


def beat(engine: Engine, job_id: str) -> None:
    with Session(engine) as s:
        s.exec(update(Job).where(Job.id == job_id).where(Job.status == "running").values(heartbeat_at=utcnow()))
        s.commit()


class Heartbeat:
    """A daemon thread that keeps a running job's heartbeat fresh."""

    def __init__(self, engine: Engine, job_id: str, interval: float) -> None:
        self.engine, self.job_id, self.interval = engine, job_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                beat(self.engine, self.job_id)
            except Exception:  # a database blip must not kill the job; the next beat retries
                log.warning("heartbeat for %s failed", self.job_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def reconcile(engine: Engine, send: Callable[[str], None], policy: JobPolicy) -> list[str]:
    """Resend silent jobs, give up on those out of attempts; returns the asset ids resent."""
    now = utcnow()
    stale = now - timedelta(seconds=policy.stale_after)
    resend = now - timedelta(seconds=policy.resend_queued_after)
    last_sign = func.coalesce(Job.heartbeat_at, Job.created_at)
    resent: list[str] = []
    with Session(engine, expire_on_commit=False) as s:
        candidates = s.exec(select(Job).where(or_(and_(Job.status == "running", last_sign < stale),
                                                  and_(Job.status == "queued", last_sign < resend)))).all()
        for job in candidates:
            if job.status == "running" and job.attempts >= policy.max_attempts:
                _give_up(s, job, now)
                continue
            # Take the resend with a conditional update so that, with several
            # reconcilers, exactly one of them sends.
            taken = s.exec(update(Job).where(Job.id == job.id).where(Job.status == job.status)
                           .where(last_sign == (job.heartbeat_at or job.created_at))
                           .values(status="queued", heartbeat_at=now))
            s.commit()
            if taken.rowcount == 1:
                send(job.asset_id)
                resent.append(job.asset_id)
                log.warning("job %s (asset %s) had gone silent; sent again (attempt %d of %d)", job.id,
                            job.asset_id, job.attempts + 1, policy.max_attempts)
    return resent


def _give_up(s: Session, job: Job, now) -> None:
    reason = f"processing stopped {job.attempts} times (worker lost each time); giving up"
    job.status, job.error, job.finished_at = "failed", reason, now
    s.add(job)
    asset = s.get(Asset, job.asset_id)
    if asset is not None and asset.status not in ("ready", "errored"):
        asset.status, asset.error_code, asset.error_message, asset.updated_at = "errored", "worker_lost", reason, now
        s.add(asset)
    s.commit()
    log.error("job %s (asset %s): %s", job.id, job.asset_id, reason)


class Reconciler:
    """Runs `reconcile` every `interval` seconds in a daemon thread (started by `abr worker`).

    `also`: further passes run on the same schedule (the webhook resend); one
    failing does not stop the others.
    """

    def __init__(self, engine: Engine, send: Callable[[str], None], policy: JobPolicy, interval: float = 15.0,
                 also: tuple[Callable[[], object], ...] = ()) -> None:
        self.engine, self.send, self.policy, self.interval = engine, send, policy, interval
        self.passes = (lambda: reconcile(self.engine, self.send, self.policy), *also)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for one_pass in self.passes:
                try:
                    one_pass()
                except Exception:
                    log.warning("reconcile pass failed", exc_info=True)

    def start(self) -> Reconciler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
