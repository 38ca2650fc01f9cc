"""The origin's hot path in plain ASGI: cached manifests and page-cached segments, before FastAPI.

Players ask the same few URLs over and over: every viewer of a stream
reloads the same playlists and fetches the same segments. Through FastAPI
each of those requests paid for routing, the `Request` object, dependency
resolution, the `Response` class and five middleware layers, and at 200
connections a manifest GET's p99 was 38–51 ms (bench/origin.py). This
middleware, the outermost one, answers a `/play/…` GET or HEAD itself when
everything it needs is already in memory, doing no I/O that could wait:

- the playback id is in the origin's `PlaybackCache` and, for signed ids,
  the request's token verifies (pure HMAC);
- for a manifest: its presentation is in memory, and the manifest is
  cached for the presentation's current etag or rendered now (CPU only,
  `OriginService.manifest_known`);
- for a segment on local storage, when the server has the ASGI
  `http.response.pathsend` extension (Granian): a whole segment above
  `INLINE_READ_BYTES` is handed to the server by path, cached or not, signed
  or not — the server reads and sends it outside Python, so no byte of it
  passes through the interpreter and the process holds no copy (on the
  realistic bench, a 2.5 GB working set, this took the segments that missed
  the page cache off the FastAPI routes and its thread pool, and cut the
  server's CPU per GB served; bench/origin.py); such an answer only `lstat`s
  the file (`core.origin.files.stat_local`), it does not open it;
- any other segment (a range, a small one, or a server without pathsend):
  it is one of the process's hot objects (`core.origin.hot`, whole recent
  segments in memory), or its bytes are all in the kernel's page cache,
  read with `preadv(RWF_NOWAIT)`, which fails instead of waiting for the
  disk (and then, whole, it becomes a hot object); a small whole segment
  that is not in the page cache goes by path too where the server can.

A request it cannot answer only because the playback id, or a manifest's
presentation, is not in memory yet (a cold start, a player's first request
for an id) is not handed on: it awaits the one database lookup and the one
presentation read that every concurrent request for the id shares
(`single_flight`, with the routes' own keys), then is answered here. On
bench/origin.py's cold lists those requests went through the routes, whose
stack cost several times the lookup.

Entries just past their lifetime are still used while one background
refresh runs (`api/flights.py`), as the routes do. Anything else — a miss,
live manifests, S3, a 416, any error, any bug here — goes on to the
FastAPI routes untouched, which do the I/O in worker threads, fill the
caches and produce errors in the API's format.

A response does not depend on which path served it: both build status and
headers with the same planners (`core.origin.answer`), and this middleware
adds what the three middleware it skips would have added — CORS
(`core.origin.cors`), `X-Request-Id` (`api.middleware`) and the request
count (`core.metrics`). tests/origin/test_fastpath.py compares the two
paths' answers to the same requests.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from urllib.parse import parse_qsl

from api import front_gate
from api.errors import error_response
from api.flights import single_flight
from api.middleware import request_id
from api.origin import (
    INLINE_READ_BYTES,
    PATHSEND,
    TOKEN_TEMPLATE_HEADER,
    authorize,
    front_expires,
    front_template,
    manifest_from_memory,
    playback_from_memory,
    resolve_playback,
)
from core import metrics
from core.errors import AbrError, MissingObject, NotFound
from core.layout import media_key
from core.media.manifests import ManifestFilter
from core.origin import policy
from core.origin.answer import Answer, plan_manifest, segment_answer
from core.origin.cors import parse_origins, raw_cors_headers
from core.origin.files import open_local, stat_local
from core.origin.paths import PLAYBACK_ID, Kind, Target, classify

log = logging.getLogger(__name__)
PREFIX = "/play/"
_METHODS = frozenset({"GET", "HEAD"})
_NO_FILTER = ManifestFilter()
# The request headers an answer depends on; the rest are never looked at.
_WANTED = frozenset({b"if-none-match", b"if-modified-since", b"range", b"if-range", b"accept-encoding",
                     b"origin", b"x-request-id", TOKEN_TEMPLATE_HEADER.encode()})
_CONDITIONAL = ("if-none-match", "if-modified-since", "range")  # a plain request has none of these
_MAX_MEMO = 64
_MAX_SEGMENT_ANSWERS = 4096
_SEGMENT_ANSWERS: dict[tuple, tuple[Answer, list[tuple[bytes, bytes]]]] = {}
# api/errors.py's answer to MissingObject, byte for byte (tests/origin/test_fastpath.py compares them).
_MISSING_BODY = b'{"error":{"code":"not_found","message":"no such file"}}'
_MISSING_HEADERS = [(b"cache-control", b"no-store"), (b"content-length", str(len(_MISSING_BODY)).encode()),
                    (b"content-type", b"application/json")]
_api_log = logging.getLogger("abr.api")
_MAX_LOCAL_PATHS = 16384


class ByPath(str):
    """A body the server sends itself from this file (`http.response.pathsend`).

    `start`: the body begins at this byte of the file (a range), for a server that sends
    ranges itself (`respond(ranges=True)`); `pathsend` has no offset.
    """

    start = 0

    @classmethod
    def part(cls, path: str, start: int) -> "ByPath":
        body = cls(path)
        body.start = start
        return body


def _redirect(target: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 200, [(b"x-accel-redirect", target.encode("latin-1")), (b"content-length", b"0")], b""


class OriginFastPath:
    def __init__(self, app, *, origin_for, cors_origins: str = "*") -> None:
        """`origin_for(scope)`: the process's `OriginService` (one per app: asked once)."""
        self.app = app
        self.origin_for = origin_for
        self.allowed = parse_origins(cors_origins)
        self._origin = None
        self._cors_memo: dict[str | None, list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            found = None
        elif scope["path"].startswith(front_gate.PREFIX):
            found = await self._gate(scope)
        else:
            found = self.respond(scope)
            if found is None and await self._load(scope):
                found = self.respond(scope)
        if found is not None:
            status, headers, body = found
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if isinstance(body, ByPath):
                await send({"type": PATHSEND, "path": str(body)})
            else:
                await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def respond(self, scope, *, ranges: bool = False) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """(status, every header, body) for an HTTP request this path answers now, counted; else None.

        Also called by the server itself before any ASGI task exists (api/sendfile_server.py),
        with `ranges`: that server sends a range of a file by path too.
        """
        if scope["method"] not in _METHODS:
            return None
        if not scope["path"].startswith(PREFIX):
            return None
        try:
            found = self.answer(scope, ranges=ranges)
        except Exception:  # noqa: BLE001 - a bug here must not cost the request: the routes answer it
            log.exception("origin fast path failed on %s; handing it to the routes", scope["path"])
            return None
        if found is None:
            return None
        status, headers, body, asked = found
        metrics.observe_origin(scope["path"], status)
        return status, headers + self._cors(asked.get("origin")) \
            + [(b"x-request-id", request_id(scope).encode("latin-1"))], body

    async def _load(self, scope) -> bool:
        """Bring into memory what `respond` lacked for a `/play/…` request: True when it loaded something.

        A cold id (one database lookup) and, for a VOD manifest, its presentation (one read), each
        shared by every concurrent request for it (`single_flight`, the routes' own keys and calls),
        so the request is then answered here instead of through the routes: at a cold start or when
        a player first asks for an id, the routes' stack cost ~1 ms of CPU per request, several times
        the lookup (bench/origin.py, 12,000-request cold list: ~40 % of the API's samples, py-spy).
        Whatever still needs the routes (an unknown rendition, live, an error) goes on to them.
        """
        if scope["method"] not in _METHODS or not scope["path"].startswith(PREFIX):
            return False
        split = _split(scope["path"])
        if split is None:
            return False
        playback_id, target = split
        origin = self._origin or self._find_origin(scope)
        loaded = False
        known = origin.playback_known(playback_id)
        if known is None:
            try:
                playback = await resolve_playback(origin, playback_id)  # the routes' own shared lookup
            except NotFound:
                return True  # an unknown id: remembered now, its 404 is answered from memory
            except Exception:  # noqa: BLE001 - the routes look again and answer the error in the API's format
                return False
            loaded = True
        else:
            playback = known[0]
        if target.kind is not Kind.SEGMENT and playback is not None and not playback.live \
                and not origin.presentation_known(playback.asset_id):
            try:
                await single_flight(("presentation", playback.asset_id), origin.presentation, playback.asset_id)
            except Exception:  # noqa: BLE001 - no playable media yet, or storage failing: the routes answer
                return loaded
            loaded = True
        return loaded

    async def _gate(self, scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The nginx front's gate (api/front_gate.py), before any routing; None: the route's (no front)."""
        if scope["method"] not in _METHODS:
            return None
        origin = self._origin or self._find_origin(scope)
        if origin.front_index is None:
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            return _redirect(await front_gate.answer(origin, scope["path"], query))
        except Exception:  # noqa: BLE001 - the route answers it (and logs what went wrong there)
            log.exception("front gate failed on %s; handing it to the route", scope["path"])
            return None

    def answer(self, scope, *, ranges: bool = False) -> tuple[int, list[tuple[bytes, bytes]], bytes, dict[str, str]] | None:
        """(status, ASGI headers, body, request headers) when it can be given without waiting now.

        The body is bytes, or a `ByPath` the server sends by path.
        None hands the request on to the routes.
        """
        split = _split(scope["path"])
        if split is None:
            return None
        playback_id, target = split
        origin = self._origin or self._find_origin(scope)
        known, playback = playback_from_memory(origin, playback_id)
        if playback is None:
            if known and scope["method"] == "GET":
                # An id the database said it does not know, remembered for the cache's TTL (players of a
                # deleted asset keep asking): the routes' 404, byte for byte, without their stack.
                return 404, *_unknown_playback(playback_id), _asked(scope)
            return None
        headers = _asked(scope)
        method = scope["method"]
        query_string = scope.get("query_string")
        try:
            query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)) if query_string else {}
            token_ttl, carried = authorize(query.get("token"), playback, origin.keys)
            if target.kind is Kind.SEGMENT:
                pathsend = PATHSEND in scope.get("extensions", ())
                try:
                    found = _segment(origin, playback.asset_id, target, token_ttl, method, headers, pathsend,
                                     pathsend and ranges)
                except MissingObject as missing:
                    if method != "GET" or playback.live:
                        return None  # live: a low-latency stream answers what is being written (api.live_origin)
                    # As api/errors.py answers it (same log line, body and headers): a player probing
                    # past the end, or a stale playlist, should not cost the whole FastAPI stack.
                    _api_log.info("%s %s: no object %r in storage", method, scope["path"], missing.key)
                    return 404, _MISSING_HEADERS, _MISSING_BODY, headers
                return None if found is None else (*found, headers)
            if playback.live:
                return None  # live manifests change every segment: core/live renders them
            if playback.policy == "encrypted" and target.kind is Kind.MPD:
                return None  # its licence URL is written under the request's public URL: the routes render it
            selected = ManifestFilter.from_query(query) if query and target.kind in (Kind.MASTER, Kind.MPD) \
                else _NO_FILTER
            template = front_template(origin, carried, TOKEN_TEMPLATE_HEADER in headers)
            carried = template or carried
            # Rendered here when its presentation is in memory: no I/O, and no trip through the routes.
            rendered = manifest_from_memory(origin, playback.asset_id, target, selected, carried, render=True)
        except AbrError:
            return None  # the routes answer it (a rendition the asset lacks: 404), in the API's error format
        if rendered is None:
            return None
        cache = policy.cache_control(target.kind, complete=rendered.complete, token_ttl=token_ttl)
        plain = not any(name in headers for name in _CONDITIONAL)
        memo_key = (headers.get("accept-encoding"), cache, method)
        if plain and (memo := rendered.answers.get(memo_key)) is not None:
            return (*memo, headers)
        answer, body = plan_manifest(rendered, cache_control=cache, method=method, request_headers=headers)
        if answer.status == 416:
            return None
        found = (answer.status, answer.raw_headers() + front_expires(origin, rendered, token_ttl, template is not None),
                 body[answer.start : answer.start + answer.length])
        if plain:
            if len(rendered.answers) >= _MAX_MEMO:
                rendered.answers.clear()  # signed ids: a new max-age every second
            rendered.answers[memo_key] = found
        return (*found, headers)

    def _cors(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """CORS headers for a request from `origin` (page origin), as `core.origin.cors` decides them."""
        key = None if self.allowed is None else origin  # with `*` they never depend on the origin
        cached = self._cors_memo.get(key)
        if cached is None:
            cached = raw_cors_headers(origin, self.allowed)
            if len(self._cors_memo) < _MAX_MEMO:
                self._cors_memo[key] = cached
        return cached

    def _find_origin(self, scope):
        self._origin = self.origin_for(scope)
        return self._origin


def _asked(scope) -> dict[str, str]:
    """The request headers an answer depends on (`_WANTED`), by lower-case name."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"] if name in _WANTED}


@lru_cache(maxsize=1024)
def _unknown_playback(playback_id: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The routes' answer to an unknown playback id (api/errors.py renders it): (headers, body)."""
    answer = error_response(404, "not_found", f"no playback id {playback_id}")
    return answer.raw_headers, bytes(answer.body)


def _split(path: str) -> tuple[str, Target] | None:
    """(playback id, target) of a `/play/{id}/{rest}` path this path may answer; None otherwise."""
    playback_id, slash, rest = path[len(PREFIX):].partition("/")
    if not slash or not PLAYBACK_ID.match(playback_id):
        return None
    target = _classify(rest)
    return None if target is None else (playback_id, target)


@lru_cache(maxsize=4096)
def _classify(path: str) -> Target | None:
    """`classify`, remembered: players repeat the same few paths. None where it would raise."""
    try:
        return classify(path)
    except AbrError:
        return None


def _planned(info, target: Target, token_ttl, method: str, headers) -> tuple[Answer, list[tuple[bytes, bytes]]]:
    """`segment_answer` and its ASGI headers; remembered for plain requests (same file, ttl and method)."""
    plain = not any(name in headers for name in _CONDITIONAL)
    memo_key = (info.etag, target.rendition, target.file, token_ttl, method)
    if plain and (memo := _SEGMENT_ANSWERS.get(memo_key)) is not None:
        return memo
    answer = segment_answer(info, target, token_ttl=token_ttl, method=method, request_headers=headers)
    planned = answer, answer.raw_headers()
    if plain:
        if len(_SEGMENT_ANSWERS) >= _MAX_SEGMENT_ANSWERS:
            _SEGMENT_ANSWERS.clear()  # signed ids: a new max-age every second
        _SEGMENT_ANSWERS[memo_key] = planned
    return planned


def _segment(origin, asset_id: str, target: Target, token_ttl, method: str, headers,
             pathsend: bool = False, ranges: bool = False) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """(status, ASGI headers, body) for a segment, or None for the routes; `pathsend`: the server has it;
    `ranges`: it sends ranges by path too.

    MissingObject when the file is not there (local storage).
    """
    key = media_key(asset_id, target.relative or "")
    hot = origin.hot.get(key) if origin.hot is not None else None
    if hot is not None:
        info, data = hot
        answer, raw = _planned(info, target, token_ttl, method, headers)
        if answer.status == 416:
            return None
        if not (pathsend and answer.status == 200 and answer.length > INLINE_READ_BYTES):
            return answer.status, raw, \
                data if answer.length == len(data) else data[answer.start : answer.start + answer.length]
        # a whole large segment goes by path even when hot: the server sends it without copying it through Python
    paths = origin.local_paths
    path = paths.get(key, False)
    if path is False:
        path = origin.storage.local_path(key)  # validates the key and builds a Path: ~40 µs, the same keys repeat
        if len(paths) >= _MAX_LOCAL_PATHS:
            paths.clear()
        paths[key] = path = None if path is None else str(path)
    if path is None:
        return None  # object storage: the routes stream it or redirect
    if pathsend:
        # Most answers here go by path: they need the file's size and identity, not an open descriptor.
        info = stat_local(path, key)  # MissingObject: the caller answers 404
        answer, raw = _planned(info, target, token_ttl, method, headers)
        if answer.status == 200 and answer.length > INLINE_READ_BYTES:
            return answer.status, raw, ByPath(path)
        if ranges and answer.status == 206:
            # Without this a range was read into Python from the page cache, or by the routes in a
            # worker thread when not all of it was there (~0.37 ms of Python each on bench/origin.py).
            return answer.status, raw, ByPath.part(path, answer.start)
    local = open_local(path, key)  # MissingObject: the caller answers 404
    try:
        info = local.info
        answer, raw = _planned(info, target, token_ttl, method, headers)
        if answer.status == 416:
            return None
        body = b""
        if answer.length:
            if pathsend and answer.status == 200 and answer.length > INLINE_READ_BYTES:
                # The file was opened and checked (no symlinks) by open_local just above; the
                # server opens it again by path, reads it in its own threads and sends it.
                return answer.status, raw, ByPath(path)
            body = local.read_cached(answer.start, answer.length)
            if body is None:
                if pathsend and answer.status == 200:
                    return answer.status, raw, ByPath(path)  # on the disk: the server reads it, not a worker thread
                return None  # not all in the page cache: read in a worker thread by the routes
            if origin.hot is not None and answer.length == info.size:
                origin.hot.put(key, info, body)
        return answer.status, raw, body
    finally:
        local.close()

