"""Claiming, heartbeats and the reconciler, against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from core.db.models import Asset, Job, utcnow
from core.services.jobs import JobPolicy, beat, claim, reconcile

POLICY = JobPolicy(stale_after=30, resend_queued_after=300, max_attempts=3)


def _asset_with_job(engine, **job_fields) -> tuple[str, str]:
    with Session(engine) as s:
        asset = Asset(status="queued")
        job = Job(asset_id=asset.id, **job_fields)
        s.add(asset)
        s.add(job)
        s.commit()
        return asset.id, job.id


def _job(engine, job_id) -> Job:
    with Session(engine) as s:
        return s.get(Job, job_id)


def test_claim_once_then_duplicates_are_refused(engine):
    asset_id, job_id = _asset_with_job(engine)
    first = claim(engine, asset_id, POLICY)
    assert first is not None and first.attempts == 1 and first.status == "running"
    assert claim(engine, asset_id, POLICY) is None  # a redelivered or resent message does nothing


def test_stale_running_job_can_be_claimed_again(engine):
    old = utcnow() - timedelta(seconds=120)
    asset_id, job_id = _asset_with_job(engine, status="running", attempts=1, heartbeat_at=old)
    again = claim(engine, asset_id, POLICY)
    assert again is not None and again.attempts == 2


def test_fresh_heartbeat_keeps_the_job(engine):
    asset_id, job_id = _asset_with_job(engine, status="running", attempts=1,
                                       heartbeat_at=utcnow() - timedelta(seconds=120))
    beat(engine, job_id)
    assert claim(engine, asset_id, POLICY) is None


def test_reconcile_resends_silent_and_lost_jobs_once(engine):
    old = utcnow() - timedelta(seconds=3600)
    silent, _ = _asset_with_job(engine, status="running", attempts=1, heartbeat_at=old)
    lost, _ = _asset_with_job(engine, status="queued", heartbeat_at=old)
    fresh, _ = _asset_with_job(engine, status="running", attempts=1, heartbeat_at=utcnow())
    finished, _ = _asset_with_job(engine, status="succeeded", attempts=1, heartbeat_at=old)
    sent: list[str] = []
    assert sorted(reconcile(engine, sent.append, POLICY)) == sorted([silent, lost])
    assert sorted(sent) == sorted([silent, lost])
    assert reconcile(engine, sent.append, POLICY) == []  # just resent: not again
    assert claim(engine, silent, POLICY).attempts == 2


def test_reconcile_gives_up_after_max_attempts_with_a_reason(engine):
    old = utcnow() - timedelta(seconds=3600)
    asset_id, job_id = _asset_with_job(engine, status="running", attempts=3, heartbeat_at=old)
    assert reconcile(engine, lambda _: pytest.fail("must not resend"), POLICY) == []
    assert _job(engine, job_id).status == "failed"
    with Session(engine) as s:
        asset = s.get(Asset, asset_id)
        assert asset.status == "errored" and asset.error_code == "worker_lost"
        assert "3 times" in asset.error_message
