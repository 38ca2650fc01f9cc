"""Migrations go up and down on SQLite and on PostgreSQL, and match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import core.db.tables  # noqa: F401  (registers every table)
from cli.migrate import downgrade, upgrade
from core.db.engine import make_engine
from tests.helpers import settings_from

TABLES = {"assets", "renditions", "jobs", "playback_ids", "api_keys"}


def test_up_down_up(backend_env):
    url = settings_from(backend_env).resolved_database_url
    upgrade(url)
    engine = make_engine(url)
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
        # The migrated schema is exactly what the models declare.
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
        downgrade(url)
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(url)
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend_env", ["services"], indirect=True)
def test_postgres_is_really_used(backend_env):
    url = settings_from(backend_env).resolved_database_url
    assert url.startswith("postgresql+psycopg://")
    upgrade(url)
    engine = make_engine(url)
    assert engine.dialect.name == "postgresql"
    engine.dispose()
