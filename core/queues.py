"""Queue and task names, and the Celery configuration both sides agree on.

Plain data (no Celery import) so that `core` stays free of the queue
framework: the API builds a sending client from it, the workers a consumer.
"""

from __future__ import annotations

QUEUE_TRANSCODE = "transcode"
QUEUE_LIVE = "live"
QUEUE_DEFAULT = "default"
ALL_QUEUES = (QUEUE_TRANSCODE, QUEUE_LIVE, QUEUE_DEFAULT)

TASK_TRANSCODE = "assets.transcode"
TASK_ENCODE_CHUNK = "assets.encode_chunk"
TASK_ADD_AUDIO = "assets.add_audio_track"
TASK_PING = "system.ping"
TASK_LIVE = "live_streams.run"
TASK_WEBHOOK_DELIVER = "webhooks.deliver"

# Priorities (Redis: 0 is served first; the SQLAlchemy transport ignores them).
# Chunks of an asset already being encoded go before new whole-asset jobs, so
# started work finishes first and a burst of uploads queues behind it. Live
# has its own queue and its own workers (see README "Scaling out"): a priority
# inside a shared queue would still wait for a busy slot.
PRIORITY_CHUNK = 2
PRIORITY_DEFAULT = 5
PRIORITY_TRANSCODE = 6
PRIORITY_STEPS = list(range(10))

TASK_ROUTES = {
    TASK_TRANSCODE: {"queue": QUEUE_TRANSCODE, "priority": PRIORITY_TRANSCODE},
    TASK_ENCODE_CHUNK: {"queue": QUEUE_TRANSCODE, "priority": PRIORITY_CHUNK},
    TASK_ADD_AUDIO: {"queue": QUEUE_TRANSCODE, "priority": PRIORITY_DEFAULT},
    TASK_PING: {"queue": QUEUE_DEFAULT},
    TASK_LIVE: {"queue": QUEUE_LIVE},
    TASK_WEBHOOK_DELIVER: {"queue": QUEUE_DEFAULT},
}


def result_backend_for(broker_url: str) -> str:
    """Results (only the few tasks that return one, e.g. `system.ping`) live beside the broker."""
    if broker_url.startswith("sqla+"):
        return "db+" + broker_url[len("sqla+"):]
    return broker_url


def celery_config(broker_url: str, result_backend: str | None = None) -> dict:
    conf: dict = {
        "broker_url": broker_url,
        "task_routes": TASK_ROUTES,
        "task_default_queue": QUEUE_DEFAULT,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        # The database is the record of a job; late acks let a broker that
        # supports redelivery (Redis) hand a job back if a worker dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }
    if result_backend:
        conf["result_backend"] = result_backend
    if broker_url.startswith("redis"):
        # A transcode can outlast Redis' default 1 h visibility timeout; without
        # this the same job would be delivered to a second worker mid-encode.
        # priority_steps: one Redis list per step, polled high to low; queue_order_strategy
        # "priority": a worker on `-Q live,transcode` always drains live first.
        conf["broker_transport_options"] = {"visibility_timeout": 12 * 3600, "priority_steps": PRIORITY_STEPS,
                                            "sep": ":", "queue_order_strategy": "priority"}
        conf["task_default_priority"] = PRIORITY_DEFAULT
    return conf
