"""The origin: what `/play/{playback_id}/…` serves and how a CDN may cache it.

Small modules, most of them pure functions with exact-output tests:

- `paths` — classify a request path (multivariant playlist, media playlist,
  MPD, segment) and refuse anything that could name another file.
- `policy` — the `Cache-Control` of each request class.
- `conditional` — validators (ETag, Last-Modified), `If-None-Match` /
  `If-Modified-Since` → 304, `Range` → 206/416, `Accept-Encoding`.
- `cors` — CORS headers and a small ASGI middleware scoped to `/play`.
- `files` — the local file behind a segment key, symlinks refused.
- `manifests` — per-process caches (presentation by storage etag, rendered
  manifests by everything that changes their bytes).

Nothing here imports FastAPI; `api/origin.py` (the origin's request layer) glues it to HTTP.
"""
