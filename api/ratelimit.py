"""Per-key rate limits for the management API (429 with Retry-After when spent), with the `limits` library.

`rate` requests/s sustained with bursts of `burst`: at most `burst` requests in
any window of `burst / rate` seconds (a moving window, whole seconds). Where the
counts live:

- Redis when the API's broker is Redis (`ABR_BROKER_URL=redis://…`): one count
  per key shared by every API process, so N processes still allow `rate`, not N×;
- process memory on the embedded defaults (one API process, as `abr dev` runs).

A Redis that cannot be reached never fails a request: the process counts in
memory (per process) until Redis answers again, and says so in the log.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from core.errors import RateLimited

log = logging.getLogger(__name__)
RETRY_REDIS_AFTER_S = 5.0  # after a Redis failure, count in memory this long before trying Redis again


def shared_storage_url(broker_url: str | None) -> str | None:
    """The Redis URL the API processes share counts through, or None (count per process)."""
    if broker_url and broker_url.split("://", 1)[0] in ("redis", "rediss"):
        return broker_url
    return None


def window(rate: float, burst: int) -> RateLimitItemPerSecond:
    """`burst` requests per `burst / rate` seconds (rounded to whole seconds, at least 1)."""
    return RateLimitItemPerSecond(burst, max(1, round(burst / rate)), namespace="abr-api")


class RateLimiter:
    def __init__(self, rate: float, burst: int, storage_url: str | None = None) -> None:
        self.rate, self.burst = rate, burst
        self.item = window(rate, burst) if rate > 0 else None
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared = None
        if storage_url and rate > 0:
            storage = storage_from_string(storage_url, wrap_exceptions=True, key_prefix="abr-ratelimit",
                                          socket_timeout=0.5, socket_connect_timeout=0.5)
            self._shared = MovingWindowRateLimiter(storage)
        self._shared_down_until = 0.0

    @property
    def shared(self) -> bool:
        return self._shared is not None

    def hit(self, key: str) -> None:
        if self.item is None:
            return
        limiter = self._limiter()
        try:
            allowed = limiter.hit(self.item, key)
            stats = None if allowed else limiter.get_window_stats(self.item, key)
        except StorageError as exc:
            self._shared_down_until = time.monotonic() + RETRY_REDIS_AFTER_S
            log.warning("rate limits: Redis unreachable (%s); counting in this process for %.0f s",
                        exc.storage_error, RETRY_REDIS_AFTER_S)
            allowed = self._local.hit(self.item, key)
            stats = None if allowed else self._local.get_window_stats(self.item, key)
        if not allowed:
            wait = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(f"too many requests for this API key; retry in {wait} s", retry_after=wait)

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._shared is not None and time.monotonic() >= self._shared_down_until:
            return self._shared
        return self._local
