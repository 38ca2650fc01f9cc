"""CORS for players on other origins (hls.js, dash.js, Shaka fetch everything by script).

`ABR_CORS_ORIGINS` is `*` (default: any page may embed the media) or a
comma-separated list of origins (`https://app.example,https://b.example`),
echoed back one at a time with `Vary: Origin`. Preflights are answered
here, before routing: GET, HEAD and OPTIONS, the request headers the player
asked for (players send `Range`, and some add their own), cached 24 h by
the browser. `Content-Length`, `Content-Range`, `Date` and `ETag` are
exposed (dash.js reads `Date` for live clock sync).

`PlaybackCORS` is a plain ASGI middleware (cheaper than Starlette's
`BaseHTTPMiddleware` and framework-free) scoped to one path prefix, so the
management API keeps its own policy.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ALLOW_METHODS = "GET, HEAD, OPTIONS"
DEFAULT_ALLOW_HEADERS = "Range, If-None-Match, If-Modified-Since, If-Range, Accept-Encoding"
EXPOSE_HEADERS = "Content-Length, Content-Range, Date, ETag"
PREFLIGHT_MAX_AGE = "86400"
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


def parse_origins(setting: str) -> frozenset[str] | None:
    """None means any origin (`*`); else the allowed origins, without trailing slashes."""
    items = {o.strip().rstrip("/") for o in setting.split(",") if o.strip()}
    if not items or "*" in items:
        return None
    return frozenset(items)


def cors_headers(origin: str | None, allowed: frozenset[str] | None) -> list[tuple[str, str]]:
    """Headers for an actual (non-preflight) response."""
    if allowed is None:
        return [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]
    headers = [("Vary", "Origin")]
    if origin and origin in allowed:
        headers[:0] = [("Access-Control-Allow-Origin", origin), ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]
    return headers


def preflight_headers(origin: str | None, requested_headers: str | None,
                      allowed: frozenset[str] | None) -> list[tuple[str, str]]:
    """Headers of the 204 answering an `OPTIONS` preflight."""
    headers = [("Allow", ALLOW_METHODS)]
    if allowed is not None:
        headers.append(("Vary", "Origin, Access-Control-Request-Headers"))
        if not origin or origin not in allowed:
            return headers
    else:
        headers.append(("Vary", "Access-Control-Request-Headers"))
    requested = (requested_headers or "").strip()
    allow_headers = requested if requested and _HEADER_LIST.match(requested) else DEFAULT_ALLOW_HEADERS
    headers += [
        ("Access-Control-Allow-Origin", "*" if allowed is None else origin or ""),
        ("Access-Control-Allow-Methods", ALLOW_METHODS),
        ("Access-Control-Allow-Headers", allow_headers),
        ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
    ]
    return headers


def raw_cors_headers(origin: str | None, allowed: frozenset[str] | None) -> list[tuple[bytes, bytes]]:
    """`cors_headers` in ASGI form (lower-case names, latin-1 values)."""
    return [(k.lower().encode(), v.encode("latin-1")) for k, v in cors_headers(origin, allowed)]


class PlaybackCORS:
    """Adds CORS headers to every response under `prefix` and answers its OPTIONS requests."""

    def __init__(self, app: ASGIApp, *, origins: str = "*", prefix: str = "/play/") -> None:
        self.app = app
        self.allowed = parse_origins(origins)
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        origin = header(scope, b"origin")
        if scope["method"] == "OPTIONS":
            headers = preflight_headers(origin, header(scope, b"access-control-request-headers"), self.allowed)
            headers.append(("Content-Length", "0"))
            await send({"type": "http.response.start", "status": 204,
                        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers]})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = raw_cors_headers(origin, self.allowed)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", ())) + extra
            await send(message)

        await self.app(scope, receive, send_with_cors)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None
