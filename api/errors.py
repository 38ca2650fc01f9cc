"""One place that turns errors into the public error body `{"error": {code, message}}`."""

from __future__ import annotations

import logging

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import AbrError, MissingObject, RateLimited, StorageError

log = logging.getLogger("abr.api")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "too_large", 415: "invalid_media", 422: "unprocessable", 429: "rate_limited"}


_PUBLIC_PREFIXES = ("/play/", "/player/")  # answered without an API key


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    # Errors must never be cached long by a CDN.
    h = {"Cache-Control": "no-store"}
    h.update(headers or {})
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=h)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AbrError)
    async def _domain(request: Request, exc: AbrError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(int(exc.retry_after))}
        message = exc.message
        if isinstance(exc, MissingObject):
            log.info("%s %s: no object %r in storage", request.method, request.url.path, exc.key)
        elif isinstance(exc, StorageError) and request.url.path.startswith(_PUBLIC_PREFIXES):
            # Its text names storage keys, buckets and hosts: for the logs, not for anyone who asks.
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
            message = "storage is unavailable; retry shortly"
        return error_response(exc.status, exc.code, message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return error_response(422, "unprocessable", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(sqlalchemy.exc.OperationalError)
    @app.exception_handler(sqlalchemy.exc.InterfaceError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        # A database restart or network blip: the client should retry, not report a bug.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(503, "unavailable", "the database is unavailable; retry shortly", {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; it has been logged")
