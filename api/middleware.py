"""Request ids as a plain ASGI middleware.

Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`) wraps every
response body in an extra task and queue; measured on the origin it cost
~45 % of segment throughput and doubled manifest latency. This does the same
job (a request id in a context variable, echoed as `X-Request-Id`) without
touching the body.
"""

from __future__ import annotations

import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.logging import request_id_var


def request_id(scope: Scope) -> str:
    """The client's `X-Request-Id` (64 characters at most), else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and value:
            return value.decode("latin-1")[:64]
    # 64 random bits name a request well enough; `uuid4` reads os.urandom every call.
    return f"{random.getrandbits(64):016x}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        header = (b"x-request-id", rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
