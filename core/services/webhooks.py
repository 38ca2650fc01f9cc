"""Webhooks: endpoints, event recording and signed delivery attempts. Stateless; `session` first.

Services report events through `core.events`; the API and the workers subscribe
`emit` here as that module's sink. It runs after the state change it reports
has committed: `emit()` opens its own session, writes one `webhook_deliveries` row per subscribed
endpoint (the exact body that will be signed and sent, every attempt), commits,
and only then sends a `webhooks.deliver` task per row. A lost message leaves a
`pending` row with its `next_retry_at`, which is the record to resend from:
the workers' reconciler calls `resend_overdue` for rows overdue by longer than
any queue should hold them.

`core` knows no queue framework, so the entry points register how to send a
task: the API per engine (`register_sender`), a worker once for its process
(`set_default_sender`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select, update

from core.db.base import new_id, utcnow
from core.db.models import Asset, PlaybackId
from core.db.models_integrations import WebhookDelivery, WebhookEndpoint
from core.errors import AbrError, NotFound, Unprocessable
from core.events import EVENTS
from core.net import pin, resolve_checked, safe_client
from core.queues import TASK_WEBHOOK_DELIVER

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024  # of a receiver's answer body we read (and drop)
SIGNATURE_HEADER = "Abr-Signature"
Sender = Callable[..., None]  # send(task_name, *args)
_senders: weakref.WeakKeyDictionary[Engine, Sender] = weakref.WeakKeyDictionary()
_default_sender: list[Sender] = []


def register_sender(engine: Engine, send: Sender) -> None:
    _senders[engine] = send


def set_default_sender(send: Sender) -> None:
    _default_sender[:] = [send]


# -- endpoints -------------------------------------------------------------------------------------
def create_webhook(session: Session, *, url: str, events: list[str] | None,
                   allow_private: bool) -> WebhookEndpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 4096:
        raise Unprocessable("url must be an http(s) URL with a host")
    unknown = sorted(set(events or ()) - set(EVENTS))
    if unknown:
        raise Unprocessable(f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENTS)}")
    resolve_checked(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                    allow_private=allow_private, what="webhook url")
    row = WebhookEndpoint(url=url, events=sorted(set(events or ())), secret="whsec_" + secrets.token_urlsafe(32))
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def get_webhook(session: Session, webhook_id: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, webhook_id)
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    return row


def list_webhooks(session: Session, *, limit: int, offset: int) -> tuple[list[WebhookEndpoint], int]:
    rows = session.exec(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
                        .offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(select(func.count()).select_from(WebhookEndpoint)).one())


def delete_webhook(session: Session, webhook_id: str) -> None:
    session.delete(get_webhook(session, webhook_id))  # deliveries go with it (ON DELETE CASCADE)
    session.commit()


def deliveries_of(session: Session, webhook_id: str, *, limit: int, offset: int) -> tuple[list[WebhookDelivery], int]:
    get_webhook(session, webhook_id)
    where = WebhookDelivery.webhook_id == webhook_id
    rows = session.exec(select(WebhookDelivery).where(where).order_by(WebhookDelivery.created_at.desc(),
                                                                      WebhookDelivery.id)
                        .offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(select(func.count()).select_from(WebhookDelivery).where(where)).one())


# -- emission --------------------------------------------------------------------------------------
def asset_data(session: Session, asset: Asset) -> dict:
    ids = session.exec(select(PlaybackId).where(PlaybackId.asset_id == asset.id)).all()
    return {"id": asset.id, "status": asset.status, "playable": asset.playable, "progress": asset.progress,
            "duration": asset.duration, "passthrough": asset.passthrough, "name": asset.name,
            "meta": {"title": asset.meta_title, "creator_id": asset.meta_creator_id,
                     "external_id": asset.meta_external_id},
            "error": {"code": asset.error_code, "message": asset.error_message} if asset.error_code else None,
            "playback_ids": [{"id": p.id, "policy": p.policy} for p in ids],
            "created_at": asset.created_at.isoformat(), "updated_at": asset.updated_at.isoformat()}


def emit(engine: Engine, event_type: str, *, asset_id: str | None = None, data: dict | None = None) -> list[str]:
    """Record and send `event_type` to every subscribed endpoint (the `core.events` sink). Never raises:
    a webhook problem must not fail the state change it reports (which has already committed)."""
    try:
        ids = _record(engine, event_type, asset_id=asset_id, data=data)
    except Exception:
        log.exception("could not record webhook event %s", event_type)
        return []
    send = _senders.get(engine) or (_default_sender[0] if _default_sender else None)
    for delivery_id in ids:
        if send is None:
            log.warning("no task sender registered; delivery %s stays pending", delivery_id)
            break
        try:
            send(TASK_WEBHOOK_DELIVER, delivery_id)
        except Exception:
            log.exception("could not enqueue webhook delivery %s; it stays pending", delivery_id)
    return ids


def _record(engine: Engine, event_type: str, *, asset_id: str | None, data: dict | None) -> list[str]:
    with Session(engine, expire_on_commit=False) as s:
        endpoints = [e for e in s.exec(select(WebhookEndpoint)).all() if not e.events or event_type in e.events]
        if not endpoints:
            return []
        if data is None and asset_id is not None:
            asset = s.get(Asset, asset_id)
            data = asset_data(s, asset) if asset is not None else {"id": asset_id}
        event_id = new_id("evt_")
        body = json.dumps({"id": event_id, "type": event_type, "created_at": utcnow().isoformat(),
                           "data": data or {}}, separators=(",", ":"))
        rows = [WebhookDelivery(webhook_id=e.id, event_id=event_id, event_type=event_type, body=body,
                                next_retry_at=utcnow()) for e in endpoints]
        s.add_all(rows)
        s.commit()
        return [r.id for r in rows]


def resend_overdue(engine: Engine, send: Callable[..., None], *, overdue_after: float,
                   limit: int = 500) -> list[str]:
    """Send again the pending deliveries whose next attempt is `overdue_after` seconds late.

    Such a row's broker message was lost (a broker restart, a worker killed
    while holding a countdown task). Each resend is taken with a conditional
    update that moves `next_retry_at` to now, so with several reconcilers one
    sends it, and a row is resent at most once per `overdue_after`. A message
    that was only slow, not lost, then makes a second attempt: delivery is
    at least once, and receivers deduplicate by the body's event `id`.
    """
    now = utcnow()
    resent: list[str] = []
    with Session(engine) as s:
        rows = s.exec(select(WebhookDelivery.id, WebhookDelivery.next_retry_at)
                      .where(WebhookDelivery.status == "pending",
                             WebhookDelivery.next_retry_at < now - timedelta(seconds=overdue_after))
                      .order_by(WebhookDelivery.next_retry_at).limit(limit)).all()
        for delivery_id, due in rows:
            taken = s.exec(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                         WebhookDelivery.status == "pending",
                                                         WebhookDelivery.next_retry_at == due)
                           .values(next_retry_at=now))
            s.commit()
            if taken.rowcount == 1:
                send(TASK_WEBHOOK_DELIVER, delivery_id)
                resent.append(delivery_id)
    if resent:
        log.warning("resent %d webhook deliveries whose messages were lost", len(resent))
    return resent


# -- delivery --------------------------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def attempt_delivery(engine: Engine, delivery_id: str, *, backoff: list[float], timeout: float,
                     allow_private: bool) -> float | None:
    """Make one attempt; returns the seconds to wait before the next one, or None when finished.

    Safe to run twice: a delivered or failed row, or one whose endpoint is gone, is left alone.
    """
    with Session(engine, expire_on_commit=False) as s:
        row = s.get(WebhookDelivery, delivery_id)
        endpoint = s.get(WebhookEndpoint, row.webhook_id) if row is not None else None
        if row is None or endpoint is None or row.status != "pending":
            return None
        status_code, error = _post(endpoint.url, endpoint.secret, row.body.encode(), timeout=timeout,
                                   allow_private=allow_private)
        row.attempts += 1
        row.last_status_code, row.last_error = status_code, error
        delay = None
        if error is None:
            row.status, row.delivered_at, row.next_retry_at = "delivered", utcnow(), None
        elif row.attempts > len(backoff):
            row.status, row.next_retry_at = "failed", None
        else:
            delay = backoff[row.attempts - 1]
            row.next_retry_at = utcnow() + timedelta(seconds=delay)
        s.add(row)
        s.commit()
        return delay


def _post(url: str, secret: str, body: bytes, *, timeout: float, allow_private: bool) -> tuple[int | None, str | None]:
    """(status code, error): error is None on a 2xx answer."""
    try:
        pinned = pin(url, allow_private=allow_private, what="webhook url")
        headers = dict(pinned.headers, **{"Content-Type": "application/json", "User-Agent": "abr-origin-webhooks",
                                          SIGNATURE_HEADER: sign(secret, int(time.time()), body)})
        deadline = time.monotonic() + timeout
        with safe_client(httpx.Timeout(timeout)) as client:
            with client.stream("POST", pinned.url, content=body, headers=headers,
                               extensions=pinned.extensions) as response:
                # Only the status counts; the body is read (so the connection ends cleanly) up to a
                # cap and a deadline, never whole: a receiver must not fill our memory or hold the worker.
                read = 0
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                        break
    except AbrError as exc:
        return None, exc.message
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:2000]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"
