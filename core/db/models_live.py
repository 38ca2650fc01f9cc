"""The `live_streams` table: one row per live stream (push or pull), the record of its state.

A live stream's playback id is an ordinary `playback_ids` row with no asset;
`live_streams.playback_id` points at it, so playback ids stay one namespace
(and signed tokens work the same way for live and VOD).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, DateTime, ForeignKey, String
from sqlmodel import Field, SQLModel

from core.db import models  # noqa: F401  (the tables its foreign keys point at)
from core.db.base import new_id, utcnow


class LiveStream(SQLModel, table=True):
    __tablename__ = "live_streams"

    id: str = Field(default_factory=lambda: new_id("ls_"), primary_key=True, max_length=40)
    stream_key: str = Field(sa_column=Column(String(64), unique=True, nullable=False, index=True))
    # idle | connecting | active | reconnecting | ended | errored (core/live/state.py)
    status: str = Field(default="idle", max_length=20, index=True)
    source_url: str | None = Field(default=None, max_length=2000)  # pull sources; None: push
    settings: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    plan: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # ladder planned from the probe
    playback_id: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("playback_ids.id", ondelete="SET NULL"), nullable=True))
    recording_asset_id: str | None = Field(default=None, sa_column=Column(
        String(40), ForeignKey("assets.id", ondelete="SET NULL"), nullable=True))
    stop_requested: bool = False
    reconnects: int = 0
    passthrough: str | None = Field(default=None, max_length=2000)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=4000)
    worker_id: str | None = Field(default=None, max_length=80)  # the task run that owns the stream
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    # When its recent takeovers happened (ISO times, the last `live_takeover_window` seconds only):
    # a stream that kills worker after worker is stopped rather than passed on forever (core/live/takeover.py).
    takeovers: list | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    connected_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
