"""Per-process worker context (engine, storage, ffmpeg), built once from the app's settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.engine import Engine

from core.config import Settings
from core.db.engine import make_engine
from core.media.ffmpeg import find_ffmpeg
from core.storage import Storage, open_storage


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    storage: Storage
    ffmpeg: str


@lru_cache(maxsize=1)
def get_worker_context() -> WorkerContext:
    from workers.celery_app import app

    settings: Settings = app.abr_settings  # type: ignore[attr-defined]
    return WorkerContext(
        settings=settings,
        engine=make_engine(settings.resolved_database_url),
        storage=open_storage(settings.resolved_storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                             presign=settings.s3_presign),
        ffmpeg=find_ffmpeg(settings.ffmpeg),
    )
