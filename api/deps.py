"""Dependency types, declared once and taken by routes as parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
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


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def get_principal(request: Request, ctx: ContextDep, session: SessionDep) -> Principal:
    principal = authenticate(session, _bearer(request), static_keys=ctx.settings.static_api_keys)
    ctx.rate_limiter.hit(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: str):
    def _check(principal: PrincipalDep) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the '{scope}' scope")
        return principal

    return Depends(_check)
