"""`/v1/uploads`: direct uploads. The `url` is a one-time tus endpoint (see `api/routers/tus.py`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ContextDep, SessionDep, require
from api.schemas import ErrorInfo, UtcDateTime
from core.db.models_integrations import Upload
from core.services import uploads as service
from core.services.assets import AssetSettings

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


class UploadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cors_origin: str = Field(default="*", max_length=2000, description="the browser origin allowed to upload")
    settings: AssetSettings = Field(default_factory=AssetSettings, description="settings of the asset it becomes")


class UploadPublic(BaseModel):
    id: str
    url: str
    status: Literal["waiting", "uploading", "complete", "expired", "errored"]
    asset_id: str | None
    error: ErrorInfo | None
    offset: int
    length: int | None
    cors_origin: str
    expires_at: UtcDateTime
    created_at: UtcDateTime


class UploadsPublic(BaseModel):
    data: list[UploadPublic]
    count: int


def upload_public(row: Upload, request: Request, ctx) -> UploadPublic:
    base = (ctx.settings.public_url or str(request.base_url)).rstrip("/")
    return UploadPublic(id=row.id, url=f"{base}/tus/{row.id}", status=row.status, asset_id=row.asset_id,
                        error=ErrorInfo(code=row.error_code, message=row.error_message or "") if row.error_code
                        else None, offset=row.offset, length=row.length, cors_origin=row.cors_origin,
                        expires_at=service.as_utc(row.expires_at), created_at=service.as_utc(row.created_at))


@router.post("", status_code=201, response_model=UploadPublic, dependencies=[require("write")],
             responses={401: {}, 403: {}, 422: {}})
def create_upload(body: UploadCreate, request: Request, ctx: ContextDep, session: SessionDep) -> UploadPublic:
    row = service.create_upload(session, cors_origin=body.cors_origin, settings=body.settings,
                                expiry_s=ctx.settings.upload_expiry)
    return upload_public(row, request, ctx)


@router.get("", response_model=UploadsPublic, dependencies=[require("read")])
def list_uploads(request: Request, ctx: ContextDep, session: SessionDep,
                 limit: Annotated[int, Query(ge=1, le=100)] = 25,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> UploadsPublic:
    rows, count = service.list_uploads(session, limit=limit, offset=offset)
    return UploadsPublic(data=[upload_public(r, request, ctx) for r in rows], count=count)


@router.get("/{upload_id}", response_model=UploadPublic, dependencies=[require("read")], responses={404: {}})
def get_upload(upload_id: str, request: Request, ctx: ContextDep, session: SessionDep) -> UploadPublic:
    row = service.get_upload(session, upload_id, upload_dir=ctx.settings.data_dir / "uploads")
    return upload_public(row, request, ctx)
