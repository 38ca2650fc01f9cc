"""Prometheus metrics: what the API and the workers observe, and what is read from shared state at scrape time.

Two kinds of numbers, chosen so they work across machines:
- Events observed where they happen (job durations, encode speed, origin
  requests): counters and histograms in the observing process. Several
  processes on one machine (uvicorn `--workers`, Celery's prefork pool) share
  them through prometheus-client's multiprocess mode when
  `PROMETHEUS_MULTIPROC_DIR` is set (`abr worker` sets it for its pool); each
  worker machine serves its own `/metrics` on `ABR_WORKER_METRICS_PORT` and
  Prometheus scrapes every worker (docker/prometheus.yml).
- State shared by every machine (queue depth in the broker, jobs and live
  streams in the database) is read when `/metrics` on the API is scraped, so
  any number of API replicas report the same truth.
Without prometheus-client installed, observing is a no-op and `/metrics` says so.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

try:
    import prometheus_client as _pc
    from prometheus_client.core import GaugeMetricFamily
except ImportError:  # pragma: no cover - the dependency is declared; this keeps core importable without it
    _pc = None

_SPEED_BUCKETS = (0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100, 200)
_JOB_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)

if _pc is not None:
    JOB_DURATION = _pc.Histogram("abr_job_duration_seconds", "Wall time of finished jobs (transcode: whole asset; "
                                 "chunk: one chunked piece)", ["kind"], buckets=_JOB_BUCKETS)
    ENCODE_SPEED = _pc.Histogram("abr_encode_speed_ratio", "Media seconds encoded per wall second (x real time), "
                                 "per ffmpeg run", ["kind"], buckets=_SPEED_BUCKETS)
    ENCODED_MEDIA = _pc.Counter("abr_encoded_media_seconds", "Seconds of media encoded", ["kind"])
    ENCODE_WALL = _pc.Counter("abr_encode_wall_seconds", "Wall seconds spent in ffmpeg encodes", ["kind"])
    ORIGIN_REQUESTS = _pc.Counter("abr_origin_requests", "Requests under /play by class and HTTP status",
                                  ["class", "status"])


def observe_job(kind: str, seconds: float) -> None:
    if _pc is not None:
        JOB_DURATION.labels(kind).observe(seconds)


def observe_encode(kind: str, seconds: float, media_seconds: float) -> None:
    if _pc is None or seconds <= 0:
        return
    ENCODE_SPEED.labels(kind).observe(media_seconds / seconds)
    ENCODED_MEDIA.labels(kind).inc(media_seconds)
    ENCODE_WALL.labels(kind).inc(seconds)


_CLASSES = {".m3u8": "manifest", ".mpd": "manifest", ".m4s": "segment", ".mp4": "segment", ".webm": "segment",
            ".m4a": "segment", ".jpg": "image", ".jpeg": "image", ".png": "image", ".webp": "image",
            ".gif": "image", ".vtt": "text", ".json": "text"}


def origin_class(path: str) -> str:
    """manifest | segment | image | text | other, from a /play path's extension."""
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return _CLASSES.get(name[dot:].lower(), "other") if dot >= 0 else "other"


_origin_children: dict[tuple[str, int], object] = {}  # labels() costs ~2 µs a call; origin requests are hot


def observe_origin(path: str, status: int) -> None:
    if _pc is None:
        return
    key = (origin_class(path), status)
    child = _origin_children.get(key)
    if child is None:
        child = _origin_children[key] = ORIGIN_REQUESTS.labels(key[0], str(status))
    child.inc()


# -- scrape-time state ---------------------------------------------------------------------------
def queue_depths(broker_url: str, queues: tuple[str, ...]) -> dict[str, int]:
    """Messages waiting per queue, read from the broker (Redis lists, or the SQLAlchemy transport's table)."""
    if broker_url.startswith("redis"):
        import redis

        from core.queues import PRIORITY_STEPS

        client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            with client.pipeline() as pipe:
                for q in queues:
                    for key in [q] + [f"{q}:{p}" for p in PRIORITY_STEPS if p]:  # kombu: one list per priority
                        pipe.llen(key)
                counts = pipe.execute()
        finally:
            client.close()
        per = len(PRIORITY_STEPS)
        return {q: sum(counts[i * per:(i + 1) * per]) for i, q in enumerate(queues)}
    if broker_url.startswith("sqla+"):
        from sqlalchemy import create_engine, text

        engine = create_engine(broker_url[len("sqla+"):])
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT q.name, count(m.id) FROM kombu_queue q LEFT JOIN kombu_message m "
                                         "ON m.queue_id = q.id AND m.visible GROUP BY q.name")).all()
        except Exception:  # the transport creates its tables on first use
            rows = []
        finally:
            engine.dispose()
        found = {name: int(n) for name, n in rows}
        return {q: found.get(q, 0) for q in queues}
    return {}


def database_counts(engine) -> dict[str, dict[str, int]]:
    """{"jobs": {status: n}, "assets": {...}, "live_streams": {...}} (live only where its table exists)."""
    from sqlalchemy import func
    from sqlmodel import Session, select

    from core.db.models import Asset, Job

    tables = {"jobs": Job, "assets": Asset}
    try:
        from core.db.models_live import LiveStream

        tables["live_streams"] = LiveStream
    except ImportError:  # live streaming not installed in this tree
        pass
    out: dict[str, dict[str, int]] = {}
    with Session(engine) as s:
        for name, model in tables.items():
            try:
                rows = s.exec(select(model.status, func.count()).group_by(model.status)).all()
            except Exception:  # a table not migrated yet
                s.rollback()
                rows = []
            out[name] = {status: int(n) for status, n in rows}
    return out


class StateCollector:
    """Gauges computed on each scrape from the broker and the database."""

    def __init__(self, broker_url: str, engine, queues: tuple[str, ...]) -> None:
        self.broker_url, self.engine, self.queues = broker_url, engine, queues

    def collect(self):
        depth = GaugeMetricFamily("abr_queue_depth", "Tasks waiting in the broker, per queue", labels=["queue"])
        try:
            for queue, n in queue_depths(self.broker_url, self.queues).items():
                depth.add_metric([queue], n)
        except Exception:
            log.warning("metrics: the broker could not be read", exc_info=True)
        yield depth
        try:
            counts = database_counts(self.engine)
        except Exception:
            log.warning("metrics: the database could not be read", exc_info=True)
            return
        for name, help_text in (("jobs", "Jobs by status"), ("assets", "Assets by status"),
                                ("live_streams", "Live streams by state")):
            if name in counts:
                family = GaugeMetricFamily(f"abr_{name}", help_text, labels=["status"])
                for status, n in sorted(counts[name].items()):
                    family.add_metric([status], n)
                yield family


def render(*collectors) -> tuple[bytes, str]:
    """The text exposition of this process's metrics (all processes' in multiprocess mode) plus `collectors`."""
    if _pc is None:
        return b"# prometheus-client is not installed\n", "text/plain; charset=utf-8"
    registry = _pc.CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        body = _pc.generate_latest(registry)
    else:
        body = _pc.generate_latest(_pc.REGISTRY)
    if collectors:
        extra = _pc.CollectorRegistry(auto_describe=False)
        for c in collectors:
            extra.register(c)
        body += _pc.generate_latest(extra)
    return body, _pc.CONTENT_TYPE_LATEST


def serve_worker_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve this worker machine's metrics (every pool process, via the multiprocess directory)."""
    if _pc is None or not port:
        return
    registry = _pc.CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry = _pc.REGISTRY
    _pc.start_http_server(port, addr=host, registry=registry)
