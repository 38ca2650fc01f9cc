"""Queues per job type: priorities in Redis, and live work never waits behind a burst of transcodes."""

from __future__ import annotations

import re
import time

import pytest
import redis

from core import metrics
from core.queues import ALL_QUEUES, PRIORITY_CHUNK, PRIORITY_TRANSCODE, TASK_ENCODE_CHUNK, TASK_LIVE, TASK_TRANSCODE
from tests.scale.conftest import start_cluster

pytestmark = pytest.mark.timeout(180)


def test_chunk_tasks_outrank_whole_asset_jobs_in_redis(redis_url):
    from api.queue import TaskQueue

    url = redis_url.rsplit("/", 1)[0] + "/14"  # a database no worker of this session consumes
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        queue = TaskQueue(url)
        queue.send(TASK_TRANSCODE, "as_1")  # the route's priority applies
        queue.app.send_task(TASK_ENCODE_CHUNK, args=["as_1", "f0c1"], queue="transcode", priority=PRIORITY_CHUNK)
        assert client.llen(f"transcode:{PRIORITY_TRANSCODE}") == 1
        assert client.llen(f"transcode:{PRIORITY_CHUNK}") == 1
        assert metrics.queue_depths(url, ALL_QUEUES) == {"transcode": 2, "live": 0, "default": 0}
    finally:
        client.flushdb()


def test_live_task_starts_while_the_transcode_worker_is_busy(services_env, tmp_path, scale_clips):
    source = scale_clips("long", duration=24, width=320, height=240, fps=30)
    stack, cluster = start_cluster(services_env, tmp_path, [("transcode", "transcode,default"), ("live", "live")])
    with stack:
        assets = [cluster.upload(source, {"segment_duration": 2})["id"] for _ in range(2)]  # a small burst
        cluster.wait(assets[0], until=("processing",), timeout=60)
        sent = time.monotonic()
        cluster.client.app.state.ctx.queue.send(TASK_LIVE, "ls_not_a_stream")
        live_log = cluster.logs[1]
        while time.monotonic() - sent < 10:
            if re.search(r"Task live_streams\.run\[[^\]]+\] received", live_log.read_text()):
                break
            time.sleep(0.1)
        started_after = time.monotonic() - sent
        busy = [cluster.client.get(f"/v1/assets/{a}").json()["status"] for a in assets]
        assert started_after < 3, f"the live task waited {started_after:.1f} s\n{live_log.read_text()[-2000:]}"
        assert "processing" in busy or "queued" in busy, busy  # the transcode worker was still busy
        assert not re.search(r"Task live_streams\.run\[", cluster.logs[0].read_text())
        for a in assets:
            assert cluster.wait(a, timeout=120)["status"] == "ready"
