"""Webhook deliveries whose broker messages were lost are resent by the reconciler, once per period."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from core.db.models import utcnow
from core.db.models_integrations import WebhookDelivery, WebhookEndpoint
from core.queues import TASK_WEBHOOK_DELIVER
from core.services.jobs import JobPolicy, Reconciler
from core.services.webhooks import resend_overdue


def _deliveries(engine, **rows: dict) -> dict[str, str]:
    """name → delivery id, one endpoint; each row's fields as given."""
    with Session(engine, expire_on_commit=False) as s:
        endpoint = WebhookEndpoint(url="https://example.com/hook", secret="s", events=[])
        s.add(endpoint)
        s.flush()
        made = {name: WebhookDelivery(webhook_id=endpoint.id, event_id=f"evt_{name}", event_type="asset.ready",
                                      body="{}", **fields) for name, fields in rows.items()}
        s.add_all(made.values())
        s.commit()
        return {name: d.id for name, d in made.items()}


def test_only_overdue_pending_deliveries_are_resent_and_only_once(engine):
    now = utcnow()
    ids = _deliveries(engine,
                      lost=dict(next_retry_at=now - timedelta(seconds=700)),
                      waiting_backoff=dict(next_retry_at=now + timedelta(seconds=30)),
                      just_due=dict(next_retry_at=now - timedelta(seconds=5)),
                      delivered=dict(status="delivered", next_retry_at=None),
                      failed=dict(status="failed", next_retry_at=now - timedelta(days=1)))
    sent: list[tuple] = []
    assert resend_overdue(engine, lambda *a: sent.append(a), overdue_after=600) == [ids["lost"]]
    assert sent == [(TASK_WEBHOOK_DELIVER, ids["lost"])]
    assert resend_overdue(engine, lambda *a: sent.append(a), overdue_after=600) == []  # taken: not again
    with Session(engine) as s:
        taken = s.get(WebhookDelivery, ids["lost"])
        assert taken.status == "pending" and taken.attempts == 0  # the worker's attempt decides the rest


def test_the_reconciler_runs_further_passes_and_survives_their_failures(engine):
    import threading

    ran = threading.Event()
    calls: list[str] = []

    def failing() -> None:
        calls.append("failing")
        raise RuntimeError("database down")

    def second() -> None:
        calls.append("second")
        ran.set()

    reconciler = Reconciler(engine, lambda _: None, JobPolicy(), interval=0.05, also=(failing, second)).start()
    try:
        assert ran.wait(5)
    finally:
        reconciler.stop()
    assert calls[:2] == ["failing", "second"]
