"""A playback id looked up on the event loop itself, on an SQLite file (core/db/inline.py).

Run on both backends (`engine`: the embedded SQLite file, then PostgreSQL): on
SQLite the origin reads the id where the request is, on PostgreSQL it takes
the thread pool, and either way the answer is `find_playback`'s.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from sqlmodel import Session

from api.flights import look_up_playback
from core.db.engine import make_engine
from core.db.inline import InlineReader, Unavailable
from core.origin.service import OriginService
from core.services.playback import SigningKeys, find_playback
from core.storage import open_storage
from tests.helpers import settings_from
from tests.origin.fabricate import fabricate


@pytest.fixture
def origin(engine, backend_env):
    storage = open_storage(settings_from(backend_env).resolved_storage_url)
    return OriginService(engine=engine, storage=storage, keys=SigningKeys.from_settings("test-signing-key-of-32-bytes-or-more!!"))


def test_the_inline_read_is_for_sqlite_files_only(engine, tmp_path):
    reader = InlineReader.for_engine(engine)
    if engine.dialect.name == "sqlite":
        assert reader is not None and reader.path == str(tmp_path / "data" / "abr.sqlite")
    else:
        assert reader is None  # PostgreSQL: a round trip to a server never runs on the event loop
    assert InlineReader.for_engine(make_engine("sqlite://")) is None  # in memory: another connection, another database
    assert InlineReader.for_engine(make_engine("sqlite:///file:x?mode=memory&uri=true")) is None


def test_the_origin_answers_as_find_playback_on_either_backend(origin, engine):
    made = fabricate(engine, origin.storage)
    with Session(engine) as session:
        expected = {pid: find_playback(session, pid) for pid in (made.public_id, made.signed_id, "nosuchid00000000000000")}
    assert expected[made.public_id].asset_id == made.asset_id and expected[made.signed_id].signed

    async def looked_up():
        return {pid: await look_up_playback(origin, pid, ("test", pid)) for pid in expected}

    assert asyncio.run(looked_up()) == expected
    for pid, target in expected.items():
        assert origin.playback_known(pid) == (target, False)  # cached as load_playback caches it
    if engine.dialect.name == "sqlite":
        assert origin.playback_inline(made.public_id) == expected[made.public_id]
    else:
        with pytest.raises(Unavailable):
            origin.playback_inline(made.public_id)


@pytest.mark.parametrize("backend_env", ["embedded"], indirect=True)
def test_a_writer_in_a_transaction_does_not_hold_the_read_up(origin, engine):
    """WAL: the read sees the last commit while another connection writes, without waiting for it."""
    made = fabricate(engine, origin.storage)
    writer = sqlite3.connect(InlineReader.for_engine(engine).path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM playback_ids WHERE id = ?", (made.public_id,))
        assert origin.playback_inline(made.public_id).asset_id == made.asset_id  # not yet committed
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert origin.playback_inline(made.public_id) is None


@pytest.mark.parametrize("backend_env", ["embedded"], indirect=True)
def test_when_the_read_cannot_be_made_here_the_thread_pool_answers(origin, engine):
    made = fabricate(engine, origin.storage)
    reader = origin.inline
    reader._lock.acquire()  # another thread is reading on the connection right now
    try:
        with pytest.raises(Unavailable):
            origin.playback_inline(made.public_id)
        target = asyncio.run(look_up_playback(origin, made.public_id, ("test", made.public_id)))
    finally:
        reader._lock.release()
    assert target.asset_id == made.asset_id

    gone = InlineReader(reader.path + ".gone")  # the file is not there (moved away, a wrong path)
    with pytest.raises(Unavailable):
        gone.first(None, ())


@pytest.mark.parametrize("backend_env", ["embedded"], indirect=True)
def test_the_connection_is_read_only_and_never_shared_across_a_fork(origin, engine):
    made = fabricate(engine, origin.storage)
    reader = origin.inline
    assert origin.playback_inline(made.public_id) is not None
    first = reader._conn
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        first.execute("DELETE FROM playback_ids")
    reader._pid = -1  # as a process forked after the parent opened it sees it
    assert origin.playback_inline(made.public_id) is not None
    assert reader._conn is not first

    seen = []
    worker = threading.Thread(target=lambda: seen.append(origin.playback_inline(made.public_id)))
    worker.start()
    worker.join()
    assert seen[0] is not None and seen[0].asset_id == made.asset_id  # any thread may use it, one at a time
