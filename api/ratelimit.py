"""Per-key token buckets for the management API (429 with Retry-After when empty).

Kept in process memory: exact for one API process, and with N API processes
behind a balancer each key gets up to N times the rate — stated in the
README; a shared limiter (Redis) is the step after that.
"""

from __future__ import annotations

import math
import threading
import time

from core.errors import RateLimited


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
                raise RateLimited(f"too many requests for this API key; retry in {wait:.1f} s",
                                  retry_after=max(1, math.ceil(wait)))
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # bounded memory; forgetting buckets only forgives
            self._buckets[key] = (tokens - 1.0, now)
