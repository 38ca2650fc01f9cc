"""`/v1/webhooks`: endpoints that receive signed event deliveries, and each endpoint's delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep, SessionDep, require
from api.schemas import UtcDateTime
from core.db.models_integrations import WebhookDelivery, WebhookEndpoint
from core.services import webhooks as service

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=4096)
    events: list[str] | None = Field(default=None, description=f"default: every event ({', '.join(service.EVENTS)})")


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: UtcDateTime


class WebhookCreated(WebhookPublic):
    secret: str  # shown once, on creation


class WebhooksPublic(BaseModel):
    data: list[WebhookPublic]
    count: int


class DeliveryPublic(BaseModel):
    id: str
    event_id: str
    event_type: str
    status: str  # pending | delivered | failed
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_retry_at: UtcDateTime | None
    delivered_at: UtcDateTime | None
    created_at: UtcDateTime


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
    count: int


def _public(row: WebhookEndpoint) -> dict:
    return {"id": row.id, "url": row.url, "events": row.events or list(service.EVENTS),
            "created_at": row.created_at}


def _delivery(row: WebhookDelivery) -> DeliveryPublic:
    return DeliveryPublic.model_validate(row, from_attributes=True)


@router.post("", status_code=201, response_model=WebhookCreated, dependencies=[require("admin")],
             responses={401: {}, 403: {"description": "the URL resolves to a non-public address"}, 422: {}})
async def create_webhook(body: WebhookCreate, ctx: ContextDep, session: SessionDep) -> WebhookCreated:
    row = await run_in_threadpool(service.create_webhook, session, url=body.url, events=body.events,
                                  allow_private=ctx.settings.allow_private_urls)
    return WebhookCreated(**_public(row), secret=row.secret)


@router.get("", response_model=WebhooksPublic, dependencies=[require("admin")])
def list_webhooks(session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 25,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> WebhooksPublic:
    rows, count = service.list_webhooks(session, limit=limit, offset=offset)
    return WebhooksPublic(data=[WebhookPublic(**_public(r)) for r in rows], count=count)


@router.get("/{webhook_id}", response_model=WebhookPublic, dependencies=[require("admin")], responses={404: {}})
def get_webhook(webhook_id: str, session: SessionDep) -> WebhookPublic:
    return WebhookPublic(**_public(service.get_webhook(session, webhook_id)))


@router.delete("/{webhook_id}", status_code=204, dependencies=[require("admin")], responses={404: {}})
def delete_webhook(webhook_id: str, session: SessionDep) -> Response:
    service.delete_webhook(session, webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic, dependencies=[require("admin")],
            responses={404: {}})
def list_deliveries(webhook_id: str, session: SessionDep, limit: Annotated[int, Query(ge=1, le=100)] = 25,
                    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> DeliveriesPublic:
    rows, count = service.deliveries_of(session, webhook_id, limit=limit, offset=offset)
    return DeliveriesPublic(data=[_delivery(r) for r in rows], count=count)
