"""SQLModel tables of the core domain (keys, assets, renditions, jobs, playback ids).

The database is the record of every asset and job. Other domains' tables
live in `models_*.py`; `core.db.tables` is the registry that imports them all.

The broker only carries ids; if a message is lost, the `jobs` row (with its
heartbeat) is what a reconciler uses to requeue it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, DateTime, ForeignKey, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db.base import new_id, utcnow


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: str = Field(default_factory=lambda: new_id("key_"), primary_key=True, max_length=40)
    name: str = Field(default="", max_length=200)
    key_hash: str = Field(sa_column=Column(String(64), unique=True, nullable=False, index=True))
    prefix: str = Field(default="", max_length=16)  # shown to humans to tell keys apart
    scopes: str = Field(default="admin", max_length=100)  # space separated: read write admin
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class Asset(SQLModel, table=True):
    __tablename__ = "assets"

    id: str = Field(default_factory=lambda: new_id("as_"), primary_key=True, max_length=40)
    status: str = Field(default="queued", max_length=20, index=True)  # queued|processing|ready|errored
    playable: bool = False
    progress: float = 0.0
    progress_detail: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    duration: float | None = None
    source: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # what the probe found
    settings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source_key: str | None = Field(default=None, max_length=1024)  # storage key of the original
    passthrough: str | None = Field(default=None, max_length=2000)
    # What people call it (default: the uploaded file's name) and their own metadata; `?q=` searches
    # name, title and external id. Plain columns, not JSON: a substring match works alike on SQLite and PostgreSQL.
    name: str | None = Field(default=None, max_length=255)
    meta_title: str | None = Field(default=None, max_length=512)
    meta_creator_id: str | None = Field(default=None, max_length=128)
    meta_external_id: str | None = Field(default=None, max_length=128)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=4000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Rendition(SQLModel, table=True):
    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("asset_id", "name"),)

    pk: int | None = Field(default=None, primary_key=True)
    asset_id: str = Field(sa_column=Column(String(40), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False, index=True))
    name: str = Field(max_length=40)  # e.g. h264-720p; also the directory name
    codec: str = Field(max_length=10)
    width: int = 0
    height: int = 0
    bitrate: int = 0
    frame_rate: float | None = None
    status: str = Field(default="pending", max_length=20)  # pending|encoding|ready|errored
    # Measured VMAF (api/schemas.py RenditionQuality): {"vmaf_mean", "vmaf_p5", "samples", "full"?}; None: not measured.
    quality: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Job(SQLModel, table=True):
    __tablename__ = "jobs"

    id: str = Field(default_factory=lambda: new_id("job_"), primary_key=True, max_length=40)
    asset_id: str = Field(sa_column=Column(String(40), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False, index=True))
    kind: str = Field(default="transcode", max_length=20)
    status: str = Field(default="queued", max_length=20, index=True)  # queued|running|succeeded|failed|cancelled
    attempts: int = 0
    error: str | None = Field(default=None, max_length=4000)
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class PlaybackId(SQLModel, table=True):
    __tablename__ = "playback_ids"

    id: str = Field(default_factory=lambda: new_id("", 24), primary_key=True, max_length=40)
    asset_id: str | None = Field(default=None, sa_column=Column(String(40), ForeignKey("assets.id", ondelete="CASCADE"), nullable=True, index=True))
    policy: str = Field(default="public", max_length=10)  # public|signed
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))

