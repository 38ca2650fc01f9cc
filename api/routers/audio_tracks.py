"""Audio tracks added to a ready asset: `POST /v1/assets/{id}/audio-tracks` (a dub, a described version).

Multipart: `file` (any media with an audio stream), `language` (BCP 47),
optional `name` and `role` (`dub` by default; `description` for audio
description). → `202` with the track; it is encoded by a worker on the
asset's timeline and appears in the manifests once published (its
rendition's status goes `pending` → `encoding` → `ready`).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep, SessionDep, require
from api.upload import new_tmp_dir, receive_multipart
from core.errors import Unprocessable
from core.media.probe import probe
from core.queues import TASK_ADD_AUDIO
from core.services import audio_tracks as service

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/assets", tags=["audio tracks"])


class AudioTrackPublic(BaseModel):
    id: str
    asset_id: str
    language: str
    name: str
    role: str
    status: str


_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "language"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "media with an audio stream"},
        "language": {"type": "string", "description": "BCP 47, e.g. en or pt-BR"},
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["dub", "alternate", "commentary", "description", "main"]}}}}}}}


@router.post("/{asset_id}/audio-tracks", status_code=202, response_model=AudioTrackPublic,
             dependencies=[require("write")], openapi_extra=_UPLOAD_BODY,
             responses={400: {}, 401: {}, 404: {}, 409: {}, 413: {}, 415: {}, 422: {}})
async def add_audio_track(request: Request, asset_id: str, ctx: ContextDep, session: SessionDep) -> AudioTrackPublic:
    form = await receive_multipart(request, tmp_dir=new_tmp_dir(ctx.settings.data_dir),
                                   max_bytes=ctx.settings.max_upload_bytes)
    try:
        if form.file_path is None or form.file_size == 0:
            raise Unprocessable("the upload needs a non-empty 'file' part")
        if not form.fields.get("language"):
            raise Unprocessable("the upload needs a 'language' field (BCP 47, e.g. en or pt-BR)")
        info = await run_in_threadpool(probe, form.file_path)
        row, plan = await run_in_threadpool(
            service.add_audio_track, session, ctx.storage, asset_id=asset_id, source=form.file_path, info=info,
            language=form.fields["language"], name=form.fields.get("name"), role=form.fields.get("role"))
    finally:
        form.discard()
    try:
        ctx.queue.send(TASK_ADD_AUDIO, asset_id, plan)
    except Exception:
        log.warning("asset %s: audio track %s stored, but the broker is unreachable", asset_id, row.name,
                    exc_info=True)
    return AudioTrackPublic(id=row.name, asset_id=asset_id, language=plan["language"], name=plan["name"],
                            role=plan["role"], status=row.status)
