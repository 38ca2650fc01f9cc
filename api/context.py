"""What the app holds for its lifetime, built once from settings by the factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from api.queue import TaskQueue
from api.ratelimit import RateLimiter
from core.config import Settings
from core.storage import Storage


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    storage: Storage
    queue: TaskQueue
    rate_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))
    extra: dict = field(default_factory=dict)
