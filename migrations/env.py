"""Alembic environment: the same settings and SQLModel metadata as the app."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.db.tables  # noqa: F401  (registers every table)
from core.db.engine import make_engine

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    from core.config import get_settings

    url = get_settings().resolved_database_url

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    # render_as_batch: SQLite can only ALTER tables by copying them.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
