"""`Cache-Control` per request class: what a CDN in front of the origin may keep, and how long.

| request                                        | Cache-Control                                     |
|------------------------------------------------|---------------------------------------------------|
| init / media segment                           | `public, max-age=31536000, immutable`             |
| manifest, presentation complete (VOD, final)   | `public, max-age=86400, stale-while-revalidate=3600` |
| manifest, presentation still publishing        | `public, max-age=2`                               |
| live manifest (`live_cache_control`)           | `public, max-age=<half a segment, ≥ 1>`           |
| presigned redirect (S3 with `s3_presign`)      | `public, max-age=600` (URL valid 3600 s, or the token's rest) |
| any error                                      | `no-store` (see `api/errors.py`)                  |

Why: a segment's bytes never change under its name, so it is immutable. A
complete presentation's manifests are a pure function of files that no
longer change, so a day is safe; the short stale-while-revalidate lets a
CDN refresh them without a player ever waiting. While renditions are still
being published a manifest changes every few seconds, so two seconds (half
a typical short segment) bounds how late a player learns of new media while
still collapsing a crowd of players onto one origin request per edge.

Signed playback: a response is only as long-lived as its token, so
`max-age` is capped at the token's remaining lifetime and a CDN stops
serving the URL (which holds the token) when the token expires.
"""

from __future__ import annotations

from core.origin.paths import Kind

SEGMENT_MAX_AGE = 31_536_000
COMPLETE_MANIFEST_MAX_AGE = 86_400
COMPLETE_MANIFEST_SWR = 3_600
PUBLISHING_MANIFEST_MAX_AGE = 2
PRESIGN_EXPIRES = 3_600
PRESIGN_REDIRECT_MAX_AGE = 600  # a cached redirect always points at a URL valid ≥ 50 more minutes
NO_STORE = "no-store"


def cache_control(kind: Kind, *, complete: bool, token_ttl: int | None = None) -> str:
    """The `Cache-Control` value for a successful response.

    `complete`: for manifests, whether their content is final (ignored for
    segments). `token_ttl`: seconds the request's playback token stays
    valid, for signed playback ids; `None` for public ones.
    """
    if kind is Kind.SEGMENT:
        value = _capped(SEGMENT_MAX_AGE, token_ttl)
        return f"public, max-age={value}, immutable" if value else NO_STORE
    value = _capped(manifest_max_age(complete=complete), token_ttl)
    if not value:
        return NO_STORE
    if complete and token_ttl is None:
        return f"public, max-age={value}, stale-while-revalidate={COMPLETE_MANIFEST_SWR}"
    return f"public, max-age={value}"  # a signed one: never served stale past the token's end


def manifest_max_age(*, complete: bool) -> int:
    """A manifest's max-age before any token's cap."""
    return COMPLETE_MANIFEST_MAX_AGE if complete else PUBLISHING_MANIFEST_MAX_AGE


def live_cache_control(max_age: int, *, ended: bool, token_ttl: int | None = None) -> str:
    """Live manifests: about half a segment while live (`max_age`), as a complete manifest once ended."""
    if ended:
        return cache_control(Kind.MPD, complete=True, token_ttl=token_ttl)
    value = _capped(max_age, token_ttl)
    return f"public, max-age={value}" if value else NO_STORE


def presign_expires(token_ttl: int | None) -> int:
    """Seconds a presigned URL stays valid: never past the playback token it was handed out for.

    Otherwise a redirect for a signed playback id would be a way to keep
    fetching segments for an hour after the token expired.
    """
    return PRESIGN_EXPIRES if token_ttl is None else max(1, min(PRESIGN_EXPIRES, token_ttl))


def redirect_cache_control(*, token_ttl: int | None = None) -> str:
    value = _capped(PRESIGN_REDIRECT_MAX_AGE, token_ttl)
    return f"public, max-age={value}" if value else NO_STORE


def _capped(max_age: int, token_ttl: int | None) -> int:
    return max_age if token_ttl is None else max(0, min(max_age, token_ttl))
