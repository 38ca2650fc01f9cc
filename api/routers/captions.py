"""Text tracks: `/v1/assets/{id}/text-tracks` (manage) and `/play/{playback_id}/text/…` (serve).

Upload is multipart: `file` (WebVTT or SRT; SRT is converted), `language`
(BCP 47), optional `name` and `default`. Invalid text → 422 with the reason.
Served: `text/{id}.vtt` (the file, immutable like a segment) and
`text/{id}/index.m3u8` (its HLS media playlist, one segment for the whole
duration); the multivariant playlist and the MPD list every track.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep, SessionDep, require
from api.origin import (
    load_presentation,
    open_playback,
    serve_stored,
    serve_text,
)
from api.schemas import UtcDateTime, error_responses
from api.upload import new_tmp_dir, receive_multipart
from core.db.models_media import TextTrackRow
from core.errors import NotFound, Unprocessable
from core.media.captions import MAX_TEXT_BYTES
from core.media.manifests import HLS_CONTENT_TYPE
from core.media.manifests.hls import render_subtitles_playlist
from core.services import captions as service
from core.services.assets import get_asset

router = APIRouter(prefix="/v1/assets", tags=["text tracks"])
playback_router = APIRouter(tags=["playback"], responses=error_responses(403, 404))
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


class TextTrackPublic(BaseModel):
    id: str
    asset_id: str
    type: str = "text"
    text_type: str = "subtitles"
    language: str
    name: str
    default: bool
    source_format: str
    cues: int
    url: str  # relative to the playback root: /play/{playback_id}/{url}
    created_at: UtcDateTime


class TextTracksPublic(BaseModel):
    data: list[TextTrackPublic]
    count: int


def _public(row: TextTrackRow) -> TextTrackPublic:
    return TextTrackPublic(id=row.id, asset_id=row.asset_id, language=row.language, name=row.name,
                           default=row.is_default, source_format=row.source_format, cues=row.cues,
                           url=service.as_text_track(row).uri, created_at=row.created_at)


def _flag(raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise Unprocessable(f"default must be true or false, got {value[:20]!r}")


def _forget(request: Request, asset_id: str) -> None:
    """Make this process's origin re-read presentation.json now rather than within its cache TTL."""
    origin = request.app.state.ctx.extra.get("origin")
    if origin is None:
        return
    origin.forget(asset_id)


_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "language"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "WebVTT or SRT"},
        "language": {"type": "string", "description": "BCP 47, e.g. en or pt-BR"},
        "name": {"type": "string"}, "default": {"type": "boolean"}}}}}}}


@router.post("/{asset_id}/text-tracks", status_code=201, response_model=TextTrackPublic,
             dependencies=[require("write")], openapi_extra=_UPLOAD_BODY,
             responses={400: {}, 401: {}, 404: {}, 409: {}, 413: {}, 422: {"description": "invalid text"}})
async def create_text_track(request: Request, asset_id: str, ctx: ContextDep, session: SessionDep) -> TextTrackPublic:
    form = await receive_multipart(request, tmp_dir=new_tmp_dir(ctx.settings.data_dir), max_bytes=MAX_TEXT_BYTES)
    try:
        if form.file_path is None:
            raise Unprocessable("the upload needs a 'file' part (WebVTT or SRT)")
        if not form.fields.get("language"):
            raise Unprocessable("the upload needs a 'language' field (BCP 47, e.g. en or pt-BR)")
        data = form.file_path.read_bytes()
    finally:
        form.discard()
    row = await run_in_threadpool(
        service.add_text_track, session, ctx.storage, asset_id=asset_id, data=data, filename=form.filename or "",
        language=form.fields["language"], name=form.fields.get("name"), default=_flag(form.fields.get("default")))
    _forget(request, asset_id)
    return _public(row)


@router.get("/{asset_id}/text-tracks", response_model=TextTracksPublic, dependencies=[require("read")],
            responses={401: {}, 404: {}})
def list_text_tracks(asset_id: str, session: SessionDep) -> TextTracksPublic:
    get_asset(session, asset_id)
    rows = service.list_text_tracks(session, asset_id)
    return TextTracksPublic(data=[_public(r) for r in rows], count=len(rows))


@router.get("/{asset_id}/text-tracks/{track_id}", response_model=TextTrackPublic, dependencies=[require("read")],
            responses={401: {}, 404: {}})
def get_text_track(asset_id: str, track_id: str, session: SessionDep) -> TextTrackPublic:
    return _public(service.get_text_track(session, asset_id, track_id))


@router.delete("/{asset_id}/text-tracks/{track_id}", status_code=204, dependencies=[require("write")],
               responses={401: {}, 404: {}})
def delete_text_track(request: Request, asset_id: str, track_id: str, ctx: ContextDep,
                      session: SessionDep) -> Response:
    service.delete_text_track(session, ctx.storage, asset_id=asset_id, track_id=track_id)
    _forget(request, asset_id)
    return Response(status_code=204)


# -- origin -----------------------------------------------------------------------------------------


def _track_id(track_id: str) -> str:
    if not service.TRACK_ID.match(track_id):
        raise NotFound("no such text track")
    return track_id


@playback_router.head("/play/{playback_id}/text/{track_id}.vtt", include_in_schema=False)
@playback_router.get("/play/{playback_id}/text/{track_id}.vtt",
                           responses={403: {}, 404: {}}, summary="A WebVTT text track")
async def text_file(request: Request, playback_id: str, track_id: str) -> Response:
    pr = await open_playback(request, playback_id)
    relative = f"text/{_track_id(track_id)}.vtt"
    return await serve_stored(request, pr, relative, "text/vtt; charset=utf-8")


@playback_router.head("/play/{playback_id}/text/{track_id}/index.m3u8", include_in_schema=False)
@playback_router.get("/play/{playback_id}/text/{track_id}/index.m3u8",
                           responses={403: {}, 404: {}}, summary="HLS media playlist of a text track")
async def text_playlist(request: Request, playback_id: str, track_id: str) -> Response:
    pr = await open_playback(request, playback_id)
    loaded = await load_presentation(pr)
    text = next((t for t in loaded.presentation.text_tracks if t.id == _track_id(track_id)), None)
    if text is None:
        raise NotFound(f"no text track {track_id} in this asset")
    body = render_subtitles_playlist(loaded.presentation, text, query=pr.query)
    return serve_text(request, pr, body, HLS_CONTENT_TYPE, loaded, final=loaded.presentation.complete)
