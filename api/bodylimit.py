"""Bounded request bodies on every route, as a plain ASGI middleware.

FastAPI reads a JSON body whole into memory before a route sees it, and
Starlette's form parser spools what it is sent: without a bound, one request
can make a process hold gigabytes. Every body is limited to
`ABR_MAX_BODY_BYTES` (1 MiB) except the few routes that take media, which
are bounded by their own limits (`body_limit`):

- `POST /v1/assets` multipart: `ABR_MAX_UPLOAD_BYTES` plus the form's small
  fields (`api.upload.receive_multipart` enforces both exactly);
- tus uploads (`application/offset+octet-stream` under `/tus/`):
  `ABR_MAX_UPLOAD_BYTES` (the upload's declared length is checked there too);
- `POST /v1/assets/{id}/text-tracks` multipart: the caption size limit.
- `POST /v1/overlays` (a PNG body): the overlay size limit.

A declared `Content-Length` above the limit is answered at once; a body that
runs past it (chunked, or lying about its length) is cut off where it
crosses it. Either way the answer is a 413 with the API's error body, and
whatever the route had started to answer is dropped.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.upload import MAX_FIELD_BYTES, MAX_FORM_FIELDS
from core.errors import TooLarge
from core.media.captions import MAX_TEXT_BYTES
from core.services.overlays import MAX_OVERLAY_BYTES

FORM_ALLOWANCE = (MAX_FORM_FIELDS + 1) * (MAX_FIELD_BYTES + 16 * 1024)  # fields, part headers, boundaries
_TEXT_TRACKS = re.compile(r"/v1/assets/[^/]+/text-tracks")


def body_limit(method: str, path: str, content_type: str, *, max_body: int, max_upload: int) -> int:
    """The most bytes the body of this request may have."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if method == "POST" and media_type == "multipart/form-data":
        if path == "/v1/assets":
            return max_upload + FORM_ALLOWANCE
        if _TEXT_TRACKS.fullmatch(path):
            return MAX_TEXT_BYTES + FORM_ALLOWANCE
    if path.startswith("/tus/") and media_type == "application/offset+octet-stream":
        return max_upload
    if method == "POST" and path == "/v1/overlays":  # a watermark PNG, the body itself
        return max(max_body, MAX_OVERLAY_BYTES)
    return max_body


class BodyTooLarge(TooLarge):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit} bytes for this route")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope["headers"] if name in (b"content-type", b"content-length")}
        limit = body_limit(scope["method"], scope["path"], headers.get(b"content-type", b"").decode("latin-1"),
                           max_body=self.max_body, max_upload=self.max_upload)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(scope, receive, send, limit)
            return
        received = 0
        exceeded = started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # whatever the route made of the cut-off body: the 413 goes out instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await _refuse(scope, receive, send, limit)


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    error = BodyTooLarge(limit)
    await error_response(error.status, error.code, error.message, {"Connection": "close"})(scope, receive, send)
