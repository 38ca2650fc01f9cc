"""Dependency types, declared once and taken by routes as parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.context import AppContext
from core.config import Settings
from core.services.keys import Principal, authenticate
from core.errors import Forbidden
from core.storage import Storage


def get_context(request: Request) -> AppContext:
    return request.app.state.ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    with Session(ctx.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_settings_dep(ctx: ContextDep) -> Settings:
    return ctx.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_storage(ctx: ContextDep) -> Storage:
    return ctx.storage


StorageDep = Annotated[Storage, Depends(get_storage)]


# FastAPI's HTTPBearer only reads the header (auto_error=False: `authenticate` words the 401);
# declaring it makes OpenAPI carry the bearer scheme on every route that needs a key, so the
# docs' Authorize button works.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="apiKey",
                           description="An API key: `ABR_API_KEYS`, `abr keys create`, or the one `abr dev` prints.")


def get_principal(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
                  ctx: ContextDep, session: SessionDep) -> Principal:
    token = credentials.credentials.strip() if credentials is not None else None
    principal = authenticate(session, token or None, static_keys=ctx.settings.static_api_keys)
    ctx.rate_limiter.hit(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: str):
    def _check(principal: PrincipalDep) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the '{scope}' scope")
        return principal

    return Depends(_check)
