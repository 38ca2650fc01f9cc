"""What the origin serves for a live playback id: live manifests, the thumbnail, the preview.

The live stream's media sits under `media/{live_stream_id}/` (the same
layout as an asset: `{rendition}/init.mp4`, `{rendition}/00001.m4s`), so
segments go through the origin's ordinary segment path (immutable). Only
manifests differ: they are rendered from `live.json`, which changes every
segment, and cached by CDNs for about half a segment. Low-latency streams
also answer a segment or part asked for before it is stored
(`segment_progress`, `part_progress`: api/live_origin.py waits on them).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from core import layout
from core.errors import BadRequest, NotFound
from core.media.live_model import LIVE_PRESENTATION, THUMBNAIL, LivePresentation
from core.media.manifests import DASH_CONTENT_TYPE, HLS_CONTENT_TYPE, ManifestFilter
from core.media.manifests.live import (
    last_part,
    next_part,
    render_live_media_playlist,
    render_live_mpd,
    render_live_multivariant_playlist,
)
from core.media.model import Track
from core.storage import ObjectInfo, Storage

RELOAD_INTERVAL = 0.05  # seconds between stats of live.json per stream and process
ADVANCE_PART_LIMIT = 3  # RFC 8216bis §6.2.5.2: a part this far past the last one is a 400


@dataclass
class _Loaded:
    live: LivePresentation
    info: ObjectInfo
    checked: float


class LiveManifests:
    """Per-process cache of parsed `live.json` files, keyed by their storage etag."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._loaded: dict[str, _Loaded] = {}
        self._lock = threading.Lock()

    def load(self, stream_id: str, *, fresh: bool = False) -> tuple[LivePresentation, ObjectInfo]:
        key = layout.media_key(stream_id, LIVE_PRESENTATION)
        now = time.monotonic()
        hit = self._loaded.get(stream_id)
        if not fresh and hit is not None and now - hit.checked < RELOAD_INTERVAL:
            return hit.live, hit.info
        try:
            info = self.storage.stat(key)
        except NotFound:
            raise NotFound("this live stream has no media yet") from None
        if hit is None or hit.info.etag != info.etag:
            live = LivePresentation.from_dict(json.loads(self.storage.get_bytes(key)))
        else:
            live = hit.live
        with self._lock:
            self._loaded[stream_id] = _Loaded(live, info, now)
        return live, info

    def local_path(self, stream_id: str) -> Path | None:
        """`live.json`'s file on local storage (for a stat without a thread hop); None on remote storage."""
        return self.storage.local_path(layout.media_key(stream_id, LIVE_PRESENTATION))

    def load_cached(self, stream_id: str) -> tuple[LivePresentation | None, ObjectInfo | None]:
        """The last loaded version, without touching storage (blocked requests check it on every change)."""
        hit = self._loaded.get(stream_id)
        return (hit.live, hit.info) if hit is not None else (None, None)

    def render(self, stream_id: str, kind: str, *, rendition: str | None, selected: ManifestFilter, query: str,
               time_url: str, skip: bool = False,
               playback_root: str = "") -> tuple[bytes, str, LivePresentation, ObjectInfo]:
        """(body, content type, the live presentation, its object info) for one live manifest."""
        live, info = self.load(stream_id)
        if kind == "master":
            live = _filtered(live, selected)
            body, content_type = render_live_multivariant_playlist(live, query=query), HLS_CONTENT_TYPE
        elif kind == "mpd":
            live = _filtered(live, selected)
            body = render_live_mpd(live, query=query, time_url=time_url, playback_root=playback_root)
            content_type = DASH_CONTENT_TYPE
        elif kind == "media_playlist":
            body = render_live_media_playlist(live, rendition or "", query=query, skip=skip)
            content_type = HLS_CONTENT_TYPE
        else:
            raise NotFound("not a live manifest")
        return body.encode(), content_type, live, info

    def thumbnail(self, stream_id: str) -> tuple[bytes, ObjectInfo]:
        key = layout.media_key(stream_id, THUMBNAIL)
        try:
            info = self.storage.stat(key)
        except NotFound:
            raise NotFound("this live stream has no thumbnail yet") from None
        return self.storage.get_bytes(key), info


def blocking_state(live: LivePresentation, rendition: str, msn: int, part: int | None) -> bool:
    """Whether a blocking reload for (`_HLS_msn`, `_HLS_part`) can be answered now (RFC 8216bis §6.2.5.2).

    True: the segment (no `part`) or the part is in the playlist, or the stream
    ended. False: wait for it. BadRequest: it is further ahead than the spec
    lets a client ask (more than two segments past the last one in the
    playlist, or ADVANCE_PART_LIMIT parts past the last part).
    """
    track = _track(live, rendition)
    if live.ended or not live.low_latency:
        return True
    complete = track.segments[-1].number if track.segments else 0
    newest = last_part(live, track) or (complete, -1)
    last_msn = max(complete, newest[0])
    if msn > last_msn + 2:
        raise BadRequest(f"_HLS_msn={msn} is more than two segments past the playlist's last ({last_msn})")
    if part is not None and msn == newest[0] and part > newest[1] + ADVANCE_PART_LIMIT:
        raise BadRequest(f"_HLS_part={part} is more than {ADVANCE_PART_LIMIT} parts past the last ({newest[1]})")
    if part is None:
        return msn <= complete
    return (msn, part) <= newest  # a part past the end of a finished segment: the next segment's first


class Progress(str, Enum):
    """Where a live segment or part stands for a request that arrived before it was stored."""

    READY = "ready"  # stored (the part is listed; the segment is complete)
    PART = "part"  # the segment is not complete, but the part asked for next is listed
    WAIT = "wait"  # coming soon: hold the request
    NEVER = "never"  # it will not come (too far ahead, a finished segment without it, the stream ended)


def segment_progress(live: LivePresentation, rendition: str, number: int, index: int = 0) -> Progress:
    """A media segment requested before it is complete, `index` parts of it already sent (LL-DASH).

    Only the segment being written (the one after the last complete) is
    waited for: a player asks for it once its first part is due
    (availabilityTimeOffset); anything further ahead stays a 404.
    """
    track = _track(live, rendition)
    complete = track.segments[-1].number if track.segments else 0
    if number <= complete:
        return Progress.READY
    if not live.low_latency or live.ended or number != complete + 1:
        return Progress.NEVER
    if any(p.segment == number and p.index == index for p in live.parts.get(rendition, ())):
        return Progress.PART
    return Progress.WAIT


def part_progress(live: LivePresentation, rendition: str, number: int, index: int) -> Progress:
    """A part requested before it is stored (the EXT-X-PRELOAD-HINT's, or at most ADVANCE_PART_LIMIT - 1 past it)."""
    track = _track(live, rendition)
    if any(p.segment == number and p.index == index for p in live.parts.get(rendition, ())):
        return Progress.READY
    if not live.low_latency or live.ended:
        return Progress.NEVER
    hint_msn, hint_index = next_part(live, track)
    if number != hint_msn or not hint_index <= index < hint_index + ADVANCE_PART_LIMIT:
        return Progress.NEVER  # a finished segment's parts never change; further ahead is not promised
    return Progress.WAIT


def _track(live: LivePresentation, rendition: str) -> Track:
    track = next((t for t in live.presentation.tracks if t.id == rendition), None)
    if track is None:
        raise NotFound(f"no rendition {rendition} in this live stream")
    return track


def _filtered(live: LivePresentation, selected: ManifestFilter) -> LivePresentation:
    if selected.is_empty:
        return live
    return LivePresentation(presentation=selected.apply(live.presentation), periods=live.periods,
                            dvr_window=live.dvr_window, ended=live.ended, published_at=live.published_at,
                            part_target=live.part_target, parts=live.parts)  # a filtered LL-DASH MPD stays LL


def live_max_age(segment_duration: float) -> int:
    """Half a segment, at least a second: a CDN collapses players without holding back new segments."""
    return max(1, int(segment_duration / 2))
