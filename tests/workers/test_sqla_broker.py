"""The embedded broker's channel survives two threads (workers/sqla_broker.py, issue #15).

In the prefork worker the consumer thread polls (`_get`) while billiard's
supervisor thread requeues the message of a lost pool child (`_put`), both on one
channel. kombu's own channel shares one SQLAlchemy Session between them and
breaks within milliseconds (InvalidRequestError / IllegalStateChangeError /
"cannot start a transaction within a transaction"); that error killed the
worker's consumer, after which the worker received no task at all.
"""

from __future__ import annotations

import threading
import time
from queue import Empty

from kombu import Connection
from kombu.transport import sqlalchemy as kombu_sqla

from workers import sqla_broker

MESSAGES = 200


def _race(channel) -> tuple[list[str], list[int]]:
    """A consumer thread polls while a second thread publishes on the same channel: (errors, bodies got)."""
    errors: list[str] = []
    got: list[int] = []
    published = threading.Event()

    def consume() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (published.is_set() and len(got) >= MESSAGES):
            try:
                got.append(channel._get("q")["body"])
            except Empty:
                if published.is_set():
                    return  # all published and the queue is empty: nothing more will come
            except Exception as e:  # what kombu's own channel raises here
                errors.append(f"_get: {e!r}")
                return

    def publish() -> None:
        try:
            for i in range(MESSAGES):
                channel._put("q", {"body": i})
        except Exception as e:
            errors.append(f"_put: {e!r}")
        finally:
            published.set()

    threads = [threading.Thread(target=consume), threading.Thread(target=publish)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "a thread hung on the channel"
    return errors, got


def test_one_channel_used_by_two_threads_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(kombu_sqla.Transport, "Channel", kombu_sqla.Transport.Channel)  # undone after the test
    monkeypatch.setattr(kombu_sqla.Transport, "polling_interval", kombu_sqla.Transport.polling_interval)
    sqla_broker.install(polling_interval=0.1)
    with Connection(f"sqla+sqlite:///{tmp_path}/broker.sqlite") as conn:
        channel = conn.channel()
        assert isinstance(channel, sqla_broker.Channel)
        assert conn.transport.polling_interval == 0.1
        channel._new_queue("q")
        errors, got = _race(channel)
        if len(got) < MESSAGES:  # the consumer may have stopped on an empty queue just before the last put
            while True:
                try:
                    got.append(channel._get("q")["body"])
                except Empty:
                    break
    assert not errors, errors
    assert sorted(got) == list(range(MESSAGES))  # each message delivered once, none lost


def test_tables_made_by_another_process_meanwhile_do_not_fail_the_open(tmp_path, monkeypatch):
    """`abr dev`'s API and workers create the broker's tables at once on a new file.

    Another process is simulated by a second engine creating the tables between
    create_all's existence check and its CREATE TABLE (SQLite has no
    CREATE-if-absent across that gap): kombu's own channel fails the open with
    "table kombu_queue already exists"; ours opens and works.
    """
    import sqlalchemy

    url = f"sqlite:///{tmp_path / 'broker.sqlite'}"
    real_create_all = kombu_sqla.metadata.create_all
    raced = []

    def create_all_losing_the_race(bind, *args, **kwargs):
        if not raced:
            raced.append(True)
            other = sqlalchemy.create_engine(url)
            real_create_all(other)  # after this process's check said "absent"
            other.dispose()
            return real_create_all(bind, checkfirst=False)
        return real_create_all(bind, *args, **kwargs)

    monkeypatch.setattr(kombu_sqla.metadata, "create_all", create_all_losing_the_race)
    monkeypatch.setattr(kombu_sqla.Channel, "_engines", {})

    monkeypatch.setattr(kombu_sqla.Transport, "Channel", kombu_sqla.Channel)
    with Connection(f"sqla+{url}") as conn:
        try:
            conn.default_channel._put("q", {"body": 1})
        except sqlalchemy.exc.OperationalError as e:
            assert "already exists" in str(e)
        else:
            raise AssertionError("kombu's own channel did not meet the race: the test no longer simulates it")

    raced.clear()
    monkeypatch.setattr(kombu_sqla.Channel, "_engines", {})
    sqla_broker.install(polling_interval=0.1)
    with Connection(f"sqla+{url}") as conn:
        conn.default_channel._put("q", {"body": 2})
        assert conn.default_channel._get("q")["body"] == 2
    assert raced, "the race was not simulated"
