"""`POST /v1/playback-tokens`: tokens that open a signed playback id until they expire."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.deps import SessionDep, require
from api.origin import get_origin
from api.schemas import UtcDateTime, error_responses
from core.services.playback import MAX_EXPIRES_IN, create_playback_token

router = APIRouter(prefix="/v1/playback-tokens", tags=["playback"], responses=error_responses(404))


class PlaybackTokenCreate(BaseModel):
    playback_id: str = Field(min_length=1, max_length=40)
    expires_in: int = Field(default=3600, ge=1, le=MAX_EXPIRES_IN, description="seconds the token stays valid")


class PlaybackTokenPublic(BaseModel):
    token: str
    expires_at: UtcDateTime


@router.post("", status_code=201, response_model=PlaybackTokenPublic, dependencies=[require("write")])
def create_token(body: PlaybackTokenCreate, session: SessionDep, request: Request) -> PlaybackTokenPublic:
    token, expires_at = create_playback_token(
        session, playback_id=body.playback_id, expires_in=body.expires_in, keys=get_origin(request).keys
    )
    return PlaybackTokenPublic(token=token, expires_at=expires_at)
