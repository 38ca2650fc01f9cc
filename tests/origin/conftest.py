from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.origin_fastpath import OriginFastPath
from tests.helpers import app_client
from tests.origin.fabricate import Fabricated, fabricate
from tests.s3_server import s3_endpoint  # noqa: F401


@pytest.fixture(scope="module")
def origin_client(tmp_path_factory) -> Iterator[TestClient]:
    """One embedded-defaults app per test module (migrations are the slow part)."""
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path_factory.mktemp("origin") / "data")}
    with app_client(env) as client:
        yield client


@pytest.fixture(scope="module")
def asset(origin_client) -> Fabricated:
    ctx = origin_client.app.state.ctx
    return fabricate(ctx.engine, ctx.storage)


@pytest.fixture
def served(monkeypatch):
    """Paths the fast path answered itself (True) or handed to the routes (False), in order."""
    seen: list[tuple[str, bool]] = []
    real = OriginFastPath.answer

    def recording(self, scope, **kwargs):
        found = real(self, scope, **kwargs)
        seen.append((scope["path"], found is not None))
        return found

    monkeypatch.setattr(OriginFastPath, "answer", recording)
    return seen
