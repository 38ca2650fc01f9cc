"""kombu's SQLAlchemy transport (the embedded `sqla+sqlite` broker), made safe for the prefork worker.

The transport keeps ONE SQLAlchemy Session per channel and is written as if only
the consumer thread used it. In Celery's prefork worker on a polling transport
(`synloop`) that is not so: when a pool child dies, billiard's supervisor thread
reports the WorkerLostError and Celery's `Request.on_failure` rejects the late-ack
message with requeue=True there; kombu's virtual QoS then re-publishes it
(`_restore_at_beginning` -> `_put`) on the consumer's channel, so its Session,
while the consumer thread is inside `_get` (BEGIN IMMEDIATE ... commit). The two
interleave and the Session breaks ("This session is in 'prepared' state; no
further SQL can be emitted"); that InvalidRequestError is no connection error,
so the consumer dies ("Unrecoverable error") and the worker waits forever in its
warm shutdown for the running tasks: no task is received any more (issue #15,
1 in 5 takeover runs; tests/workers/test_sqla_broker.py reproduces it).

`Channel` here serializes every method of the channel that touches the Session
with one lock per channel. Holding it costs the rejecting thread at most one
`_get` (a few ms; SQLite's own busy timeout bounds a locked file).

It also opens the broker's tables race-free across processes: `abr dev` starts
the API and the workers at once, each creates the tables on first use, and on a
new SQLite file two can meet between create_all's existence check and its
CREATE TABLE; the loser got "table kombu_queue already exists", which Celery
reports as a lost broker connection before it retries (seen once in CI, printed
above `abr dev`'s banner).
"""

from __future__ import annotations

import threading

from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy.exc import OperationalError

_OPEN_TRIES = 5


class Channel(kombu_sqla.Channel):
    def __init__(self, connection, **kwargs) -> None:
        self._session_lock = threading.RLock()  # before super(): it may declare queues
        super().__init__(connection, **kwargs)

    def _open(self):
        # kombu caches the engine only after create_all succeeded, so a retry re-runs
        # create_all, whose check now sees the other process's tables.
        for attempt in range(_OPEN_TRIES):
            try:
                return super()._open()
            except OperationalError as e:
                if "already exists" not in str(e) or attempt == _OPEN_TRIES - 1:
                    raise

    def _new_queue(self, queue, **kwargs):
        with self._session_lock:
            return super()._new_queue(queue, **kwargs)

    def _put(self, queue, payload, **kwargs):
        with self._session_lock:
            return super()._put(queue, payload, **kwargs)

    def _get(self, queue):
        with self._session_lock:
            return super()._get(queue)

    def _purge(self, queue):
        with self._session_lock:
            return super()._purge(queue)

    def _size(self, queue):
        with self._session_lock:
            return super()._size(queue)


def install(polling_interval: float) -> None:
    """Use `Channel` for every `sqla+` connection of this process, polling every `polling_interval` s.

    Set on kombu's Transport class: the broker URL's `sqla+` prefix picks that
    class, and its broker_transport_options go to create_engine, which would
    reject a `polling_interval` option.
    """
    kombu_sqla.Transport.Channel = Channel
    kombu_sqla.Transport.polling_interval = polling_interval
