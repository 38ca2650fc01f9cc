"""`/tus/{upload_id}`: the tus 1.0 server behind a direct-upload URL (no API key; the id is the secret).

The creation endpoint and the upload resource are the same URL, so the one
URL a client got from `POST /v1/uploads` is all it needs (tus-js-client and
Uppy take it as `endpoint`). Core protocol plus creation,
creation-with-upload, termination, expiration and checksum; CORS for the
upload's `cors_origin`; `X-HTTP-Method-Override` for clients that cannot send
PATCH or DELETE.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager, suppress
from email.utils import format_datetime
from pathlib import Path

from fastapi import APIRouter, Request, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.deps import ContextDep
from api.errors import error_response
from api.schemas import error_responses
from core.db.models_integrations import Upload
from core.errors import AbrError, BadRequest, Conflict, NotFound, TooLarge
from core.queues import TASK_TRANSCODE
from core.services import uploads as service
from core.services.assets import MediaLimits

log = logging.getLogger(__name__)
SWEEP_INTERVAL = 300.0  # s between upload sweeps (expired uploads' partial files), per API process


async def _sweep_forever(ctx) -> None:
    while True:
        try:
            await run_in_threadpool(service.sweep, ctx.engine, _upload_dir(ctx))
        except Exception:  # noqa: BLE001 - a database outage must not end the sweeping
            log.warning("upload sweep failed", exc_info=True)
        await asyncio.sleep(SWEEP_INTERVAL)


@asynccontextmanager
async def _lifespan(app):
    """Sweep expired uploads at start and every SWEEP_INTERVAL while the API runs."""
    ctx = getattr(app.state, "ctx", None)
    task = asyncio.create_task(_sweep_forever(ctx)) if ctx is not None else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


router = APIRouter(prefix="/tus", tags=["uploads"], responses=error_responses(404), lifespan=_lifespan)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
COMMIT_EVERY = 16 * 1024 * 1024  # persist the offset this often while a PATCH streams (no checksum)
EXPOSE = ("Location, Upload-Offset, Upload-Length, Tus-Resumable, Upload-Expires, Tus-Version, Tus-Max-Size, "
          "Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata")
ALLOW_HEADERS = ("Authorization, Content-Type, Location, Upload-Offset, Upload-Length, Upload-Metadata, "
                 "Upload-Checksum, Upload-Defer-Length, Upload-Concat, Tus-Resumable, X-HTTP-Method-Override, "
                 "X-Requested-With, X-Request-Id")
ALLOW_METHODS = "POST, HEAD, PATCH, DELETE, OPTIONS"
_locks: dict[str, asyncio.Lock] = {}


class VersionMismatch(AbrError):
    code = "unsupported_version"
    status = 412


def _upload_dir(ctx) -> Path:
    return ctx.settings.data_dir / "uploads"


def _headers(request: Request, upload: Upload | None) -> dict[str, str]:
    h = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    origin = request.headers.get("origin")
    if upload is not None and origin and upload.cors_origin in ("*", origin):
        h.update({"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSE, "Vary": "Origin"})
    if upload is not None and upload.status in ("waiting", "uploading"):
        h["Upload-Expires"] = format_datetime(service.as_utc(upload.expires_at), usegmt=True)
    return h


def _discovery(ctx) -> dict[str, str]:
    return {"Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(ctx.settings.max_upload_bytes), "Tus-Checksum-Algorithm": "sha1,md5,sha256"}


def _load(ctx, upload_id: str) -> Upload:
    with Session(ctx.engine, expire_on_commit=False) as s:
        return service.open_for_tus(s, upload_id, upload_dir=_upload_dir(ctx))


async def _run(request: Request, ctx, upload_id: str, handler) -> Response:
    """Shared framing: version check, tus and CORS headers on every answer, errors in the public shape."""
    upload = None
    try:
        upload = await run_in_threadpool(_load, ctx, upload_id)
        if request.headers.get("tus-resumable") != TUS_VERSION:
            raise VersionMismatch(f"Tus-Resumable must be {TUS_VERSION}")
        response, upload = await handler(request, ctx, upload)
    except AbrError as exc:
        extra = {"Tus-Version": TUS_VERSION} if exc.status == 412 else {}
        return error_response(exc.status, exc.code, exc.message, {**_headers(request, upload), **extra})
    response.headers.update(_headers(request, upload))
    return response


def _int_header(request: Request, name: str) -> int:
    value = request.headers.get(name, "")
    if not value.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)


@router.options("/{upload_id}", status_code=204)
async def options(upload_id: str, request: Request, ctx: ContextDep) -> Response:
    """tus discovery, and the CORS preflight a browser sends first."""
    headers = _discovery(ctx)
    if request.headers.get("access-control-request-method"):
        try:
            upload = await run_in_threadpool(_load, ctx, upload_id)
        except AbrError:
            upload = None
        cors = _headers(request, upload)
        if "Access-Control-Allow-Origin" in cors:
            headers.update({"Access-Control-Allow-Origin": cors["Access-Control-Allow-Origin"], "Vary": "Origin",
                            "Access-Control-Allow-Methods": ALLOW_METHODS,
                            "Access-Control-Allow-Headers": ALLOW_HEADERS, "Access-Control-Max-Age": "86400"})
    return Response(status_code=204, headers=headers)


@router.post("/{upload_id}", status_code=201)
async def create(upload_id: str, request: Request, ctx: ContextDep) -> Response:
    override = request.headers.get("x-http-method-override", "").upper()
    handler = {"PATCH": _patch, "DELETE": _delete, "HEAD": _head}.get(override, _create)
    return await _run(request, ctx, upload_id, handler)


@router.api_route("/{upload_id}", methods=["HEAD"], status_code=200)
async def head(upload_id: str, request: Request, ctx: ContextDep) -> Response:
    return await _run(request, ctx, upload_id, _head)


@router.patch("/{upload_id}", status_code=204)
async def patch(upload_id: str, request: Request, ctx: ContextDep) -> Response:
    return await _run(request, ctx, upload_id, _patch)


@router.delete("/{upload_id}", status_code=204)
async def delete(upload_id: str, request: Request, ctx: ContextDep) -> Response:
    return await _run(request, ctx, upload_id, _delete)


async def _create(request: Request, ctx, upload: Upload):
    if "upload-concat" in request.headers:
        raise BadRequest("the concatenation extension is not supported")
    if "upload-length" not in request.headers:
        raise BadRequest("Upload-Length is required (deferred length is not supported)")
    length = _int_header(request, "upload-length")
    metadata = service.parse_metadata(request.headers.get("upload-metadata"))

    def begin() -> Upload:
        with Session(ctx.engine, expire_on_commit=False) as s:
            return service.begin(s, upload.id, length=length, metadata=metadata,
                                 max_bytes=ctx.settings.max_upload_bytes, upload_dir=_upload_dir(ctx))

    upload = await run_in_threadpool(begin)
    base = (ctx.settings.public_url or str(request.base_url)).rstrip("/")
    headers = {"Location": f"{base}/tus/{upload.id}"}
    has_body = request.headers.get("content-type", "").startswith(OFFSET_CONTENT_TYPE)
    if has_body or length == 0:
        # creation-with-upload (or an empty file, which is complete the moment it exists)
        upload = await _write(request, ctx, upload) if has_body else await _complete(ctx, upload)
        headers["Upload-Offset"] = str(upload.offset)
    return Response(status_code=201, headers=headers), upload


async def _head(request: Request, ctx, upload: Upload):
    if upload.status == "waiting":
        raise NotFound("no upload has been created at this URL yet; POST to create it")
    headers = {"Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length)}
    return Response(status_code=200, headers=headers), upload


async def _patch(request: Request, ctx, upload: Upload):
    if not request.headers.get("content-type", "").startswith(OFFSET_CONTENT_TYPE):
        return Response(status_code=415, content=f"Content-Type must be {OFFSET_CONTENT_TYPE}"), upload
    if upload.status == "waiting":
        raise NotFound("no upload has been created at this URL yet; POST to create it")
    offset = _int_header(request, "upload-offset")
    if upload.status != "uploading" or offset != upload.offset:
        raise Conflict(f"Upload-Offset {offset} does not match the upload's offset {upload.offset}")
    upload = await _write(request, ctx, upload)
    return Response(status_code=204, headers={"Upload-Offset": str(upload.offset)}), upload


async def _delete(request: Request, ctx, upload: Upload):
    def terminate() -> None:
        with Session(ctx.engine) as s:
            service.terminate(s, upload.id, upload_dir=_upload_dir(ctx))

    await run_in_threadpool(terminate)
    return Response(status_code=204), None


async def _write(request: Request, ctx, upload: Upload) -> Upload:
    """Stream the body to the file at the committed offset; one writer per upload at a time."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and upload.offset + int(declared) > upload.length:
        raise TooLarge(f"the body goes past Upload-Length ({upload.length})")
    checksum = service.Checksum.parse(request.headers.get("upload-checksum"))
    lock = _locks.setdefault(upload.id, asyncio.Lock())
    if lock.locked():
        raise Conflict("another request is writing this upload; retry after it finished")
    async with lock:
        path = service.data_path(_upload_dir(ctx), upload.id)
        with service.writer_lock(path):  # and no other API process (the asyncio lock covers only this one)
            upload = await _write_locked(request, ctx, upload, path, checksum)
    if upload.offset == upload.length:
        upload = await _complete(ctx, upload)
    return upload


async def _write_locked(request: Request, ctx, upload: Upload, path: Path, checksum) -> Upload:
    """The write itself, under both locks: from the committed offset, committing as it goes."""
    upload = await run_in_threadpool(_load, ctx, upload.id)  # the offset as committed now
    sink = service.ChunkSink(path, offset=upload.offset, length=upload.length, checksum=checksum)
    try:
        try:
            async for chunk in request.stream():
                # A plain write: the page cache takes it in microseconds, and a thread hop per
                # 64 KiB chunk would cost more than it saves.
                sink.write(chunk)
                if checksum is None and sink.offset - sink.committed >= COMMIT_EVERY:
                    await _commit(ctx, upload.id, sink)
        except ClientDisconnect:
            # Keep what arrived (the client resumes from there) unless it cannot be verified.
            log.info("upload %s: client went away at %d bytes", upload.id, sink.offset)
            if checksum is not None:
                sink.discard()
        except AbrError:
            sink.discard()
            raise
        sink.verify()
        await _commit(ctx, upload.id, sink)
    finally:
        sink.close()
    upload.offset = sink.offset
    return upload


async def _commit(ctx, upload_id: str, sink: service.ChunkSink) -> None:
    if sink.offset != sink.committed:
        sink.flush()  # in the OS' hands before the database says so: survives an API crash
        await run_in_threadpool(service.commit_offset, ctx.engine, upload_id, old=sink.committed, new=sink.offset)
        sink.committed = sink.offset


async def _complete(ctx, upload: Upload) -> Upload:
    upload = await run_in_threadpool(service.finalize, ctx.engine, ctx.storage, upload.id,
                                     upload_dir=_upload_dir(ctx), limits=MediaLimits.from_settings(ctx.settings))
    _locks.pop(upload.id, None)
    if upload.asset_id:
        ctx.queue.send(TASK_TRANSCODE, upload.asset_id)
        log.info("upload %s complete: asset %s", upload.id, upload.asset_id)
    return upload
