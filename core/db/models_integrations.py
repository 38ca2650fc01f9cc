"""Tables of the integrations domain: direct (tus) uploads, webhook endpoints and their deliveries.

Registered with SQLModel.metadata by `core.db.tables`, the registry of every table module.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, String, Text
from sqlmodel import Field, SQLModel

from core.db import models  # noqa: F401  (the tables its foreign keys point at)
from core.db.base import new_id, utcnow


def _when(nullable: bool = True):
    return Column(DateTime(timezone=True), nullable=nullable)


class Upload(SQLModel, table=True):
    """One direct-upload URL and the single tus upload it accepts.

    `offset` is the committed number of bytes in `data_dir/uploads/{id}`: what a
    client resumes from after a dropped connection or an API restart. Bytes in
    the file beyond it (a crash mid-PATCH) are cut off by the next PATCH.
    """

    __tablename__ = "uploads"

    id: str = Field(default_factory=lambda: new_id("up_"), primary_key=True, max_length=40)
    status: str = Field(default="waiting", max_length=20, index=True)  # waiting|uploading|complete|expired|errored
    cors_origin: str = Field(default="*", max_length=2000)
    settings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    length: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))  # Upload-Length
    offset: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    filename: str | None = Field(default=None, max_length=255)  # from Upload-Metadata
    filetype: str | None = Field(default=None, max_length=255)
    asset_id: str | None = Field(default=None, sa_column=Column(String(40), nullable=True, index=True))
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=4000)
    expires_at: datetime = Field(sa_column=_when(nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhooks"

    id: str = Field(default_factory=lambda: new_id("wh_"), primary_key=True, max_length=40)
    url: str = Field(max_length=4096)
    events: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [] means every event
    secret: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint; `body` is the exact JSON that is signed and sent on every attempt."""

    __tablename__ = "webhook_deliveries"

    id: str = Field(default_factory=lambda: new_id("whd_"), primary_key=True, max_length=40)
    webhook_id: str = Field(sa_column=Column(String(40), ForeignKey("webhooks.id", ondelete="CASCADE"),
                                             nullable=False, index=True))
    event_id: str = Field(max_length=40, index=True)  # shared by the deliveries of one event
    event_type: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=20, index=True)  # pending|delivered|failed
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    next_retry_at: datetime | None = Field(default=None, sa_column=_when())
    delivered_at: datetime | None = Field(default=None, sa_column=_when())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when(nullable=False))
