"""The origin: `/play/{playback_id}/…` manifests and segments, CDN-cacheable.

Every request is classified (`core.origin.paths`), its playback id resolved
and, for signed ids, its token checked (`api.origin`, the request layer every
`/play` router shares); then manifests are rendered from `presentation.json`
(cached, see `core.origin.service`) and segments are streamed from storage
(`api.origin.segment_response`). Cache headers per class: `core.origin.policy`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.flights import single_flight
from api.live_origin import live_manifest, live_media_ahead
from api.origin import (
    TOKEN_TEMPLATE_HEADER,
    authorize,
    front_template,
    get_origin,
    manifest_from_memory,
    manifest_response,
    playback_root,
    resolve_playback,
    segment_response,
)
from api.schemas import error_responses
from core.errors import NotFound
from core.media.manifests import ManifestFilter
from core.origin.paths import Kind, Target, check_playback_id, classify
from core.origin.service import OriginService
from core.services.playback import PlaybackTarget

router = APIRouter(tags=["playback"], responses=error_responses(400, 403, 404, 416))


@router.head("/play/{playback_id}/master.m3u8", include_in_schema=False)
@router.get("/play/{playback_id}/master.m3u8", summary="HLS multivariant playlist")
async def master_playlist(request: Request, playback_id: str) -> Response:
    return await _serve(request, playback_id, "master.m3u8")


@router.head("/play/{playback_id}/manifest.mpd", include_in_schema=False)
@router.get("/play/{playback_id}/manifest.mpd", summary="MPEG-DASH MPD")
async def dash_manifest(request: Request, playback_id: str) -> Response:
    return await _serve(request, playback_id, "manifest.mpd")


@router.head("/play/{playback_id}/{path:path}", include_in_schema=False)
@router.get("/play/{playback_id}/{path:path}",
                  summary="Media playlists and segments referenced by the manifests")
async def playback_file(request: Request, playback_id: str, path: str) -> Response:
    return await _serve(request, playback_id, path)


async def _serve(request: Request, playback_id: str, path: str) -> Response:
    origin = get_origin(request)
    check_playback_id(playback_id)
    target = classify(path)
    playback = await resolve_playback(origin, playback_id)
    token_ttl, query = authorize(request.query_params.get("token"), playback, origin.keys)
    if target.kind is Kind.SEGMENT:
        try:
            return await segment_response(request, origin, playback, target, token_ttl)
        except NotFound:
            if not playback.live:
                raise
        # Not stored (yet): LL streams answer the segment being written and hold the next part.
        return await live_media_ahead(request, origin, playback, target, token_ttl)
    return await _manifest(request, origin, playback, target, token_ttl, query)


async def _manifest(request: Request, origin: OriginService, playback: PlaybackTarget, target: Target,
                    token_ttl: int | None, query: str) -> Response:
    selected = ManifestFilter.from_query(request.query_params) if target.kind in (Kind.MASTER, Kind.MPD) \
        else ManifestFilter()
    if playback.live:
        return await live_manifest(request, playback, target, selected, token_ttl, query)
    root = playback_root(request, playback.playback_id) if playback.policy == "encrypted" else ""
    template = front_template(origin, query, TOKEN_TEMPLATE_HEADER in request.headers)
    query = template or query
    rendered = manifest_from_memory(origin, playback.asset_id, target, selected, query, root)
    if rendered is None:
        rendered = await single_flight(("manifest", playback.asset_id, target, selected, query, root),
                                       origin.manifest, playback.asset_id, target, selected, query, root)
    return manifest_response(request, rendered, target, token_ttl, template=template is not None)
