"""Bounds for `preview.mjpeg`, the live preview a viewer can hold open for as long as it likes.

Each open preview costs a storage read of the live thumbnail every half
second, for as long as the connection lasts, so an anonymous viewer must not
be able to open them without end:

- a signed playback id's preview ends when its token expires (`preview_deadline`),
  as every other response for it stops being usable then;
- `PreviewSlots` caps the previews open at once per playback id and per API
  process; beyond, `RateLimited` (429 with `Retry-After`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from core.errors import RateLimited

RETRY_AFTER_S = 10  # a preview usually stays open for minutes; try again a little later


def preview_deadline(now: float, token_ttl: int | None) -> float | None:
    """The monotonic time the preview must end at: when its token expires; None for public ids."""
    return None if token_ttl is None else now + max(0, token_ttl)


@dataclass
class PreviewSlots:
    per_playback: int
    per_process: int
    _open: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def total(self) -> int:
        return sum(self._open.values())

    def acquire(self, playback_id: str) -> None:
        """Take a slot for one preview of `playback_id`, or raise `RateLimited` saying which cap is full."""
        with self._lock:
            if self._open.get(playback_id, 0) >= self.per_playback:
                raise RateLimited(f"{self.per_playback} previews of this playback id are already open "
                                  "(ABR_PREVIEW_PER_PLAYBACK_ID); close one or retry later", retry_after=RETRY_AFTER_S)
            if self.total >= self.per_process:
                raise RateLimited(f"this server already streams {self.per_process} previews "
                                  "(ABR_PREVIEW_PER_PROCESS); retry later", retry_after=RETRY_AFTER_S)
            self._open[playback_id] = self._open.get(playback_id, 0) + 1

    def release(self, playback_id: str) -> None:
        with self._lock:
            left = self._open.get(playback_id, 0) - 1
            if left > 0:
                self._open[playback_id] = left
            else:
                self._open.pop(playback_id, None)
