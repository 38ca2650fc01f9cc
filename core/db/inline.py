"""Point reads the event loop may make itself, without a thread: SQLite files only.

The origin looks a playback id up when it is not in memory: a player's first
request, or a probe with a made-up id. Through the thread pool and a `Session`
that lookup cost ~1 ms of the API's CPU per request when requests come one at a
time (bench/origin.py's unknown ids behind the nginx front, perf and py-spy):
the hop to a worker thread and back (a futex wake-up each way, on a core the
API shares), anyio's limiter and the session's set-up and tear-down, for a query
SQLite answers in ~7 µs. On an SQLite file (the embedded default) the query is
run where the request is, on a connection kept for it.

Why the loop may wait on it: SQLite is a library reading a local file, and in
WAL mode (core/db/engine.py) a reader never waits for a writer. The one wait
left, a lock held while the WAL index is rebuilt, is bounded here by a short
`busy_timeout`; past it the caller gets `Unavailable` and takes the thread pool
as before. PostgreSQL (a round trip to a server) always takes the thread pool:
`InlineReader.for_engine` is None there, and for an in-memory database (another
connection would see another database).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.sql import ClauseElement

BUSY_MS = 20  # the longest the event loop waits for SQLite's lock; then the thread pool


class Unavailable(Exception):
    """The read could not be made here now (locked, or another thread is using the connection)."""


class InlineReader:
    """One read-only SQLite connection, opened in the process that uses it, for single-row reads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()  # TestClient and the server may call from two threads
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._sql: dict[ClauseElement, str] = {}

    @classmethod
    def for_engine(cls, engine: Engine | None) -> InlineReader | None:
        """A reader for `engine`'s database if it is an SQLite file, else None."""
        if engine is None:
            return None
        url = engine.url
        database = url.database
        if url.get_backend_name() != "sqlite" or not database or database == ":memory:" \
                or database.startswith("file:") or url.query:
            return None
        return cls(str(Path(database).resolve()))

    def first(self, statement: ClauseElement, params: tuple) -> tuple | None:
        """The first row of `statement` (a point read: compiled once, positional parameters in
        `params`), or None.

        Unavailable when it cannot be answered now (the caller uses the thread pool instead).
        """
        if not self._lock.acquire(blocking=False):
            raise Unavailable("the connection is in use by another thread")
        try:
            conn = self._connection()
            sql = self._sql.get(statement)
            if sql is None:
                sql = self._sql[statement] = str(statement.compile(dialect=_DIALECT))
            rows = conn.execute(sql, params).fetchall()  # run to its end: no read left open between calls
            return rows[0] if rows else None
        except sqlite3.OperationalError as exc:  # locked past BUSY_MS, or the file is gone
            self._close()
            raise Unavailable(str(exc)) from exc
        finally:
            self._lock.release()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # opened after a fork, never inherited
            if not Path(self.path).is_file():
                raise sqlite3.OperationalError(f"no database file at {self.path}")
            conn = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, check_same_thread=False,
                                   isolation_level=None)  # autocommit: no transaction left open between reads
            conn.execute("PRAGMA query_only=ON")
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _sqlite_dialect():
    from sqlalchemy.dialects import sqlite

    return sqlite.dialect(paramstyle="qmark")


_DIALECT = _sqlite_dialect()
