"""Shared fixtures: real PostgreSQL and Redis where the machine runs them, and the embedded defaults.

PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) run on the
project's machines and in CI. Each test session gets its own throwaway
PostgreSQL database and Redis database number, so runs never see each other.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.skip_policy"]  # with CI=true, a skip not on its allow-list fails the run

PG_ADMIN_URL = os.environ.get("ABR_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ABR_TEST_REDIS", "redis://127.0.0.1:6379/13")
REPO_ROOT = Path(__file__).resolve().parent.parent


def _unavailable(what: str, exc: Exception) -> None:
    # In CI these services are part of the machine: their absence is a failure, not a skip.
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not reachable in CI: {exc}")
    pytest.skip(f"{what} not reachable: {exc}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; SQLAlchemy URL (psycopg 3)."""
    import psycopg

    name = f"abr_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.flushdb()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture(params=["embedded", "services"])
def backend_env(request, tmp_path: Path) -> dict[str, str]:
    """ABR_* settings for the embedded defaults and for PostgreSQL + Redis.

    The services variant uses a fresh PostgreSQL database per test (cheap) so
    migrations and data never leak between tests.
    """
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    if request.param == "services":
        pg = request.getfixturevalue("pg_database")
        redis_url = request.getfixturevalue("redis_url")
        import psycopg

        name = f"abr_t_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        env["ABR_DATABASE_URL"] = pg.rsplit("/", 1)[0] + "/" + name
        env["ABR_BROKER_URL"] = redis_url
        request.addfinalizer(lambda: _drop_database(name))
    return env


@pytest.fixture
def engine(backend_env):
    """A SQLAlchemy engine on `backend_env`'s database (SQLite, then PostgreSQL), migrated to head."""
    from cli.migrate import upgrade
    from core.db.engine import make_engine
    from tests.helpers import settings_from

    url = settings_from(backend_env).resolved_database_url
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


CHROMIUM = os.environ.get("ABR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]


@pytest.fixture(scope="module")
def playwright_instance():
    """One Playwright driver per test module.

    Its sync API cannot run twice in one thread, and while it runs it keeps an
    asyncio loop marked as running, which breaks `asyncio.run` in later tests:
    so it lives exactly as long as the module that needs it.
    """
    if not Path(CHROMIUM).exists():
        _unavailable("Chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install chromium)"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable("Playwright for Python", exc)
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def chromium_browser(playwright_instance):
    """Headless Chromium (Debian's package) shared by the browser tests; they open their own contexts."""
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
    yield browser
    browser.close()
