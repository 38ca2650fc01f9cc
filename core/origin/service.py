"""The origin's state for one process: lookups and caches behind `/play/…`.

A manifest GET should cost a few dictionary lookups, so three caches sit in
front of the database and the storage:

- playback id → (asset, policy), `PlaybackCache`, a few seconds (a deleted
  asset stops playing within that time);
- `presentation.json` → parsed `Presentation`, keyed by its storage etag and
  re-`stat`ed at most every `publishing_ttl` s while the presentation is
  still publishing, every `complete_ttl` s once it is complete;
- rendered manifests, keyed by everything that changes their bytes: asset,
  presentation etag, kind, rendition, the renditions a filter keeps (not the
  filter's numbers: `ManifestFilter.selection`) and the query carried into
  URIs (the token). Compressed variants are memoised beside them.

`*_known` methods never block (no I/O): the web layer tries them on the
event loop and falls back to the blocking method in a worker thread — or, for
a playback id on an SQLite file, `playback_inline`, a read on the loop itself
that costs less than the hop to a thread (core/db/inline.py). They
also answer for up to `STALE_GRACE` seconds past an entry's lifetime
(playback ids, and manifests of complete presentations), saying it is stale, so the caller serves it while one background refresh
runs (`api/flights.py`) rather than making every request in flight wait
on the same refresh.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.errors import NotFound
from core.layout import presentation_key
from core.media.manifests import (
    DASH_CONTENT_TYPE,
    HLS_CONTENT_TYPE,
    ManifestFilter,
    render_media_playlist,
    render_mpd,
    render_multivariant_playlist,
)
from core.media.model import Presentation
from core.origin.conditional import compress, strong_etag
from core.origin.hot import HotObjects
from core.origin.paths import Kind, Target
from core.db.inline import InlineReader, Unavailable
from core.services.playback import (PlaybackCache, PlaybackTarget, SigningKeys, find_playback,
                                   find_playback_statement, find_vod_playbacks, playback_from_row,
                                   recent_vod_playbacks)
from core.storage import ObjectInfo, Storage

MIN_COMPRESS_BYTES = 200  # below this gzip's own header makes it a loss
STALE_GRACE = 60.0  # s past its lifetime an entry may still answer while it is refreshed


class _Bounded(OrderedDict):
    """A FIFO-evicting dict with a lock for writers (readers use plain `get`)."""

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.lock = threading.Lock()

    def put(self, key, value) -> None:
        with self.lock:
            self[key] = value
            while len(self) > self.max_entries:
                self.popitem(last=False)


@dataclass
class LoadedPresentation:
    presentation: Presentation
    info: ObjectInfo
    fresh_until: float


@dataclass
class RenderedManifest:
    body: bytes
    content_type: str
    last_modified: datetime
    complete: bool  # its content is final
    etag: str = ""
    _encoded: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # Whole answers to plain requests (no conditional or range headers), built by the
    # fast path: (accept-encoding, cache-control, method) → (status, ASGI headers, body).
    answers: dict[tuple, tuple[int, list, bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.etag = strong_etag(hashlib.sha256(self.body).hexdigest()[:32])

    def encoded(self, coding: str | None) -> tuple[bytes, str, str | None]:
        """(body, etag, coding actually applied) for the requested content coding."""
        if coding is None or len(self.body) < MIN_COMPRESS_BYTES:
            return self.body, self.etag, None
        hit = self._encoded.get(coding)
        if hit is None:
            hit = (compress(self.body, coding), f'{self.etag[:-1]}-{coding}"')
            self._encoded[coding] = hit
        return hit[0], hit[1], coding


class OriginService:
    def __init__(self, *, engine: Engine, storage: Storage, keys: SigningKeys, presign: bool = False,
                 playback_ttl: float = 5.0, publishing_ttl: float = 0.5, complete_ttl: float = 30.0,
                 max_manifests: int = 4096, hot_bytes: int = 0) -> None:
        self.engine = engine
        self.inline = InlineReader.for_engine(engine)  # SQLite file: ids looked up without a thread
        self.storage = storage
        self.keys = keys
        self.presign = presign
        self.publishing_ttl = publishing_ttl
        self.complete_ttl = complete_ttl
        self.playbacks = PlaybackCache(ttl=playback_ttl)
        self._presentations: _Bounded = _Bounded(1024)
        self._manifests: _Bounded = _Bounded(max_manifests)
        self.hot = HotObjects(hot_bytes) if hot_bytes > 0 else None  # whole recent segments (core/origin/hot.py)
        self.front_index = None  # behind the nginx front: its id links (core/origin/front_index.py, api/origin.py)
        # storage key → local file path text (None: object storage), filled by the fast path
        self.local_paths: dict[str, str | None] = {}

    # -- playback ids ---------------------------------------------------------

    def playback_known(self, playback_id: str) -> tuple[PlaybackTarget | None, bool] | None:
        """From memory: (target or None for an unknown id, stale); None if not looked up lately."""
        entry = self.playbacks.entry(playback_id)
        if entry is None:
            return None
        expires, target = entry
        overdue = time.monotonic() - expires
        return None if overdue > STALE_GRACE else (target, overdue > 0)

    def playback(self, playback_id: str) -> PlaybackTarget:
        hit, target = self.playbacks.get(playback_id)
        if not hit:
            target = self.load_playback(playback_id)
        if target is None:
            raise NotFound(f"no playback id {playback_id}")
        return target

    def playback_inline(self, playback_id: str) -> PlaybackTarget | None:
        """`load_playback` where the caller is (the event loop), not in a thread: Unavailable where the
        database does not allow it (not an SQLite file, or locked; core/db/inline.py)."""
        if self.inline is None:
            raise Unavailable("not an SQLite file")
        target = playback_from_row(playback_id, self.inline.first(find_playback_statement(), (playback_id,)))
        self.playbacks.put(playback_id, target)
        return target

    def load_playback(self, playback_id: str) -> PlaybackTarget | None:
        """Look the id up in the database now and cache the answer (None: unknown id)."""
        with Session(self.engine) as session:
            target = find_playback(session, playback_id)
        self.playbacks.put(playback_id, target)
        return target

    def reload_vod_playbacks(self, playback_ids: list[str]) -> dict[str, PlaybackTarget]:
        """Look these ids of assets up again at once and cache the answers (None: gone).

        For the nginx front carrying the ids it links on to the next window: only ids that opened
        an asset are asked, so one not found now is gone (or its asset is).
        """
        with Session(self.engine) as session:
            found = find_vod_playbacks(session, playback_ids)
        for playback_id in playback_ids:
            self.playbacks.put(playback_id, found.get(playback_id))
        return found

    def recent_vod_playbacks(self, limit: int) -> dict[str, PlaybackTarget]:
        """Up to `limit` playback ids of the newest playable assets, looked up at once and cached."""
        with Session(self.engine) as session:
            found = recent_vod_playbacks(session, limit)
        for playback_id, target in found.items():
            self.playbacks.put(playback_id, target)
        return found

    # -- presentations --------------------------------------------------------

    def presentation(self, asset_id: str) -> LoadedPresentation:
        key = presentation_key(asset_id)
        try:
            info = self.storage.stat(key)
        except NotFound:
            self._presentations.pop(asset_id, None)
            raise NotFound("this asset has no playable media yet") from None
        loaded = self._presentations.get(asset_id)
        if loaded is None or loaded.info.etag != info.etag:
            data = self.storage.get_bytes(key)
            presentation = Presentation.from_dict(json.loads(data))
            loaded = LoadedPresentation(presentation, info, 0.0)
        ttl = self.complete_ttl if loaded.presentation.complete else self.publishing_ttl
        loaded = LoadedPresentation(loaded.presentation, info, time.monotonic() + ttl)
        self._presentations.put(asset_id, loaded)
        return loaded

    def presentation_known(self, asset_id: str) -> bool:
        """Whether `manifest_known` can render this asset's manifests from memory now."""
        return _overdue(self._presentations.get(asset_id)) is not None

    def forget(self, asset_id: str) -> None:
        """Re-read the asset's presentation.json on the next request (its text tracks changed)."""
        self._presentations.pop(asset_id, None)

    def _fresh_presentation(self, asset_id: str) -> LoadedPresentation | None:
        loaded = self._presentations.get(asset_id)
        return loaded if loaded is not None and loaded.fresh_until > time.monotonic() else None

    # -- manifests ------------------------------------------------------------

    def manifest_known(self, asset_id: str, target: Target, selected: ManifestFilter, query: str,
                       playback_root: str = "", *, render: bool = False) -> tuple[RenderedManifest, bool] | None:
        """From memory: (rendered manifest, its presentation is stale); None if not rendered lately.

        `render`: a manifest not rendered yet is rendered now from the presentation in memory
        (CPU only, no I/O; NotFound for a rendition it lacks). Each token of a signed id is its own
        variant, so on the realistic bench a third of the playlist requests were such first renders,
        and each went through the routes and a worker thread (~0.9 ms of CPU) for a ~0.1 ms render.
        """
        loaded = self._presentations.get(asset_id)
        overdue = _overdue(loaded)
        if overdue is None:
            return None
        key = _manifest_key(asset_id, loaded, target, selected, query, playback_root)
        rendered = self._manifests.get(key)
        if rendered is None and render:
            rendered = self._render(asset_id, loaded, target, selected, query, playback_root)
            self._manifests.put(key, rendered)
        return None if rendered is None else (rendered, overdue > 0)

    def manifest(self, asset_id: str, target: Target, selected: ManifestFilter, query: str,
                 playback_root: str = "") -> RenderedManifest:
        """`playback_root`: the public URL of `/play/{id}` (the MPD's absolute licence URL when encrypted)."""
        loaded = self._fresh_presentation(asset_id) or self.presentation(asset_id)
        key = _manifest_key(asset_id, loaded, target, selected, query, playback_root)
        rendered = self._manifests.get(key)
        if rendered is None:
            rendered = self._render(asset_id, loaded, target, selected, query, playback_root)
            self._manifests.put(key, rendered)
        return rendered

    def _render(self, asset_id: str, loaded: LoadedPresentation, target: Target, selected: ManifestFilter,
                query: str, playback_root: str) -> RenderedManifest:
        """Render a manifest; a signed id's is its token put into a template rendered once per variant.

        Every viewer of a signed id has a token of their own, so each one's first manifest is a
        new variant: rendered in full that was 57-270 µs (master, media playlist, MPD of
        bench/origin.py's ladder), put into the template a string replace and the ETag's hash.
        """
        token = _plain_token(query)
        if token is None or query == TEMPLATE_QUERY:
            return render_manifest(loaded.presentation, target, selected, query, loaded.info.mtime, playback_root)
        key = _manifest_key(asset_id, loaded, target, selected, TEMPLATE_QUERY, playback_root)
        template = self._manifests.get(key)
        if template is None:
            template = render_manifest(loaded.presentation, target, selected, TEMPLATE_QUERY, loaded.info.mtime,
                                       playback_root)
            self._manifests.put(key, template)
        return RenderedManifest(template.body.replace(_TEMPLATE_TOKEN, token), template.content_type,
                                template.last_modified, template.complete)


# A signed id's manifests are rendered once with this in place of the token, then each token is put
# in (here, or by the nginx front: api/origin.py `TOKEN_TEMPLATE_HEADER`). Unguessable per process,
# so nothing a user writes into an asset (a track's name) can hold it.
TOKEN_PLACEHOLDER = "abrtoken" + secrets.token_hex(16)
TEMPLATE_QUERY = "token=" + TOKEN_PLACEHOLDER
_TEMPLATE_TOKEN = TOKEN_PLACEHOLDER.encode()
# What a token verified as a JWT is made of (base64url parts and dots): written into URIs as it is.
_PLAIN_TOKEN = re.compile(r"token=([A-Za-z0-9_.-]{1,2048})")


def _plain_token(query: str) -> bytes | None:
    """The token a carried query holds, if it is one a template can take (anything else is rendered)."""
    m = _PLAIN_TOKEN.fullmatch(query) if query else None
    return m.group(1).encode() if m else None


def _overdue(loaded: LoadedPresentation | None) -> float | None:
    """Seconds `loaded` is past its lifetime (negative: fresh), or None when it may not answer at all.

    Only a complete presentation may be served stale: a publishing one changes every few
    seconds, and a CDN would keep a stale answer for its whole max-age on top.
    """
    if loaded is None:
        return None
    overdue = time.monotonic() - loaded.fresh_until
    return None if overdue > (STALE_GRACE if loaded.presentation.complete else 0) else overdue


def _manifest_key(asset_id: str, loaded: LoadedPresentation, target: Target, selected: ManifestFilter,
                  query: str, playback_root: str = "") -> tuple:
    """What a rendered manifest is cached under: the renditions a filter keeps, not its numbers (bounded keys).

    The playback root (host and playback id) only where it is written: an encrypted asset's MPD.
    """
    kept = selected.selection(loaded.presentation) if target.kind in (Kind.MASTER, Kind.MPD) else None
    root = playback_root if target.kind is Kind.MPD and loaded.presentation.protection is not None else ""
    return asset_id, loaded.info.etag, target, kept, query, root


def render_manifest(presentation: Presentation, target: Target, selected: ManifestFilter, query: str,
                    last_modified: datetime, playback_root: str = "") -> RenderedManifest:
    """Render one manifest; filters apply to the multivariant playlist and the MPD only."""
    if target.kind is Kind.MASTER:
        body = render_multivariant_playlist(selected.apply(presentation), query=query)
        return RenderedManifest(body.encode(), HLS_CONTENT_TYPE, last_modified, presentation.complete)
    if target.kind is Kind.MPD:
        body = render_mpd(selected.apply(presentation), query=query, playback_root=playback_root)
        return RenderedManifest(body.encode(), DASH_CONTENT_TYPE, last_modified, presentation.complete)
    if target.kind is Kind.MEDIA_PLAYLIST:
        track = next((t for t in presentation.tracks if t.id == target.rendition), None)
        if track is None:
            raise NotFound(f"no rendition {target.rendition} in this asset")
        body = render_media_playlist(track, ended=track.complete, query=query, protection=presentation.protection,
                                     segment_duration=presentation.segment_duration)
        return RenderedManifest(body.encode(), HLS_CONTENT_TYPE, last_modified, track.complete)
    raise ValueError(f"{target.kind} is not a manifest")
