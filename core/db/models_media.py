"""Tables of the media extras: uploaded text tracks (subtitles, captions).

The WebVTT itself lives in storage beside the media (`media/{asset}/text/{id}.vtt`);
the row is the record, and `presentation.json` carries a copy for the origin.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, String
from sqlmodel import Field, SQLModel

from core.db import models  # noqa: F401  (the tables its foreign keys point at)
from core.db.base import new_id, utcnow


class TextTrackRow(SQLModel, table=True):
    __tablename__ = "text_tracks"

    id: str = Field(default_factory=lambda: new_id("tt_"), primary_key=True, max_length=40)
    asset_id: str = Field(sa_column=Column(String(40), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False,
                                           index=True))
    language: str = Field(max_length=35)  # BCP 47
    name: str = Field(default="", max_length=200)
    is_default: bool = False
    source_format: str = Field(default="vtt", max_length=8)  # what was uploaded: vtt | srt
    cues: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
