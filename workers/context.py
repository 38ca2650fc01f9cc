"""Per-process worker context (engine, storage, ffmpeg), built once from the worker's settings.

The Celery app module hands its settings over with `configure()`; tasks read
the context with `get_worker_context()`. Neither side imports the other's module
beyond this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.engine import Engine

from core.config import Settings, get_settings
from core.db.engine import make_engine
from core.media.ffmpeg import find_ffmpeg
from core.storage import Storage, open_storage


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    storage: Storage
    ffmpeg: str


_settings: list[Settings] = []


def configure(settings: Settings) -> None:
    """The settings this worker process runs with (called by `workers.celery_app.make_celery`)."""
    _settings[:] = [settings]
    get_worker_context.cache_clear()


@lru_cache(maxsize=1)
def get_worker_context() -> WorkerContext:
    settings = _settings[0] if _settings else get_settings()
    return WorkerContext(
        settings=settings,
        engine=make_engine(settings.resolved_database_url),
        storage=open_storage(settings.resolved_storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                             presign=settings.s3_presign),
        ffmpeg=find_ffmpeg(settings.ffmpeg),
    )
