"""Faults survived: every asset ends `ready` (identical to a clean run) or `errored` with a reason, never stuck.

- the worker's process group SIGKILLed mid-encode, three times on one asset;
- more kills than ABR_JOB_MAX_ATTEMPTS allows;
- Redis (without persistence) restarted with a job queued, and down during an upload;
- Redis restarted with a webhook delivery queued;
- PostgreSQL restarted in the middle of a job;
- the API process killed in the middle of a multipart upload;
- the storage filling up during a transcode.

Redis and PostgreSQL are private servers on free ports (tests/reliability/services.py):
the machine's shared ones are never restarted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, func, select

from cli.migrate import upgrade
from core.db.engine import make_engine
from core.db.models import Asset
from tests.conftest import _unavailable, free_port
from tests.helpers import TEST_KEY, settings_from
from tests.media_fixtures import make_clip
from tests.reliability.faults import (
    SETTINGS,
    assert_same_outputs,
    running_stack,
)
from tests.reliability.services import (
    postgres_available,
    private_postgres,
    private_redis,
    redis_available,
)
from tests.reliability.smallfs import fill, small_filesystem

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("faults") / "clip.mp4", duration=6, width=320, height=240, fps=30)


def test_worker_sigkilled_three_times_mid_encode_then_identical_to_a_clean_run(tmp_path, clip):
    with running_stack(tmp_path) as stack:
        clean = stack.wait(stack.upload(clip)["id"])
        assert clean["status"] == "ready", clean["error"]

        asset_id = stack.upload(clip)["id"]
        # 1: the progressive first family half published; 2 and 3: the staged second family.
        for needle, delay in (("libx264", 0.1), ("libvpx", 0.0), ("libvpx", 0.05)):
            stack.worker.wait_for_ffmpeg(needle)
            time.sleep(delay)  # let the first segments of the progressive family out
            stack.worker.kill()
            assert stack.asset(asset_id)["status"] == "processing"  # killed mid-encode, not after it
            stack.worker.start()

        asset = stack.wait(asset_id)
        assert asset["status"] == "ready", asset["error"]
        assert stack.job(asset_id).attempts == 4 and stack.job(asset_id).status == "succeeded"
        assert {r["status"] for r in asset["renditions"]} == {"ready"}
        assert_same_outputs(stack.media(clean["id"]), stack.media(asset_id))
        assert not list((stack.data_dir / "storage" / "staging").glob(f"{asset_id}/*/*"))


def test_more_kills_than_max_attempts_ends_errored_with_the_reason(tmp_path, clip):
    with running_stack(tmp_path, {"ABR_JOB_MAX_ATTEMPTS": "2"}) as stack:
        asset_id = stack.upload(clip)["id"]
        for _ in range(2):
            stack.worker.wait_for_ffmpeg("libx264")
            stack.worker.kill()
            stack.worker.start()
        asset = stack.wait(asset_id)
        assert asset["status"] == "errored"
        assert asset["error"]["code"] == "worker_lost"
        assert "stopped 2 times" in asset["error"]["message"]
        assert stack.job(asset_id).status == "failed"
        assert (stack.data_dir / "storage" / "sources" / asset_id / "original").is_file()  # nothing lost


def _need(why: str | None, what: str) -> None:
    if why is not None:
        _unavailable(what, RuntimeError(why))  # a failure in CI, a skip elsewhere


def test_redis_restart_loses_the_queued_message_and_the_reconciler_resends_it(tmp_path, clip):
    _need(redis_available(), "a private redis-server")
    with (private_redis(tmp_path / "redis") as redis_server,
          running_stack(tmp_path, {"ABR_BROKER_URL": redis_server.url}, start_worker=False) as stack):
        queued = stack.upload(clip)["id"]  # no worker yet: the message waits in Redis...
        redis_server.restart()  # ...and is gone (no persistence)
        stack.worker.start()
        asset = stack.wait(queued)
        assert asset["status"] == "ready", asset["error"]

        redis_server.stop()  # the broker is down during an upload: the asset is kept, 201
        during = stack.upload(clip)
        assert during["status"] == "queued"
        redis_server.start()
        asset = stack.wait(during["id"])
        assert asset["status"] == "ready", asset["error"]
        assert stack.worker.alive


def test_redis_restart_loses_a_webhook_delivery_and_the_reconciler_resends_it(tmp_path, clip):
    _need(redis_available(), "a private redis-server")
    from tests.integrations.receiver import Receiver

    receiver = Receiver()
    with (private_redis(tmp_path / "redis") as redis_server,
          running_stack(tmp_path, {"ABR_BROKER_URL": redis_server.url, "ABR_ALLOW_PRIVATE_URLS": "1"},
                        start_worker=False) as stack):
        hook = stack.client.post("/v1/webhooks", json={"url": receiver.url, "events": ["asset.created"]})
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        asset_id = stack.upload(clip)["id"]  # asset.created: a delivery row, and its message in Redis...
        redis_server.restart()  # ...which is gone (no persistence)
        stack.worker.start()
        event = receiver.wait_for("asset.created", timeout=60)  # resent once 2 s overdue (FAST_JOBS)
        assert event["data"]["id"] == asset_id and receiver.bad_signatures == 0
        deliveries = stack.client.get(f"/v1/webhooks/{hook.json()['id']}/deliveries").json()["data"]
        assert [(d["status"], d["attempts"]) for d in deliveries] == [("delivered", 1)]
        assert stack.wait(asset_id)["status"] == "ready"
    receiver.close()


def test_postgres_restarted_mid_job_and_the_job_still_ends_ready(tmp_path, clip):
    _need(postgres_available(), "a private PostgreSQL cluster")
    with (private_postgres() as pg,
          running_stack(tmp_path, {"ABR_DATABASE_URL": pg.url}) as stack):
        asset_id = stack.upload(clip)["id"]
        stack.worker.wait_for_ffmpeg("libx264")
        pg.restart()  # immediate: every connection of the API and of the worker is cut
        asset = stack.wait(asset_id)
        assert asset["status"] == "ready", asset["error"]
        assert stack.job(asset_id).status == "succeeded"
        assert stack.worker.alive


# -- the API killed during an upload --------------------------------------------------------------

def _start_api(env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api"], env=dict(os.environ, **env),
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{env['ABR_PORT']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"API did not start:\n{log.read_text()[-3000:]}")


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def test_api_killed_mid_upload_leaves_nothing_half_made(tmp_path, clip):
    data_dir = tmp_path / "data"
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(data_dir), "ABR_API_KEYS": TEST_KEY,
           "ABR_HOST": "127.0.0.1", "ABR_PORT": str(free_port())}
    settings = settings_from(env)
    upgrade(settings.resolved_database_url)
    body = clip.read_bytes()
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    api = _start_api(env, tmp_path / "api.log")
    try:
        with socket.create_connection(("127.0.0.1", int(env["ABR_PORT"]))) as sock:
            sock.sendall((f"POST /v1/assets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TEST_KEY}\r\n"
                          f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                          f"Content-Length: {len(head) + len(body) + len(tail)}\r\n\r\n").encode())
            sock.sendall(head + body[: len(body) // 2])
            partial = _wait_for_partial_upload(data_dir / "tmp")
            _kill_group(api)  # mid-body
        assert 0 < partial.stat().st_size < len(body)
        engine = make_engine(settings.resolved_database_url)
        with Session(engine) as s:
            assert s.exec(select(func.count()).select_from(Asset)).one() == 0  # nothing half-made is visible
        engine.dispose()
        storage = data_dir / "storage"
        assert not storage.exists() or not any(p.is_file() for p in storage.rglob("*"))

        api = _start_api(env, tmp_path / "api.log")
        assert not partial.exists(), "the partial upload was not swept at start-up"
        url, auth = f"http://127.0.0.1:{env['ABR_PORT']}", {"Authorization": f"Bearer {TEST_KEY}"}
        with open(clip, "rb") as fh:
            r = httpx.post(f"{url}/v1/assets", files={"file": ("clip.mp4", fh, "video/mp4")}, headers=auth,
                           timeout=60)
        assert r.status_code == 201, r.text
        assert httpx.get(f"{url}/v1/assets", headers=auth).json()["count"] == 1
        assert not list((data_dir / "tmp").glob("upload-*"))
    finally:
        _kill_group(api)


def _wait_for_partial_upload(tmp_dir: Path, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = [p for p in tmp_dir.glob("upload-*") if p.stat().st_size > 0] if tmp_dir.exists() else []
        if files:
            time.sleep(0.2)  # let the server write what it has received
            return files[0]
        time.sleep(0.05)
    raise AssertionError("the API never started writing the upload")


# -- storage full --------------------------------------------------------------------------------

def test_storage_full_during_a_transcode_ends_errored_with_a_reason(tmp_path, clip):
    storage = tmp_path / "data" / "storage"
    with small_filesystem(storage, 3 * 1024 * 1024) as why:
        if why is not None:
            _unavailable("a small filesystem to fill (fuse2fs or tmpfs)", RuntimeError(why))
        with running_stack(tmp_path, start_worker=False) as stack:
            asset_id = stack.upload(clip, {**SETTINGS, "codecs": ["h264"]})["id"]
            source = storage / "sources" / asset_id / "original"
            assert source.is_file()
            fill(storage, leave=16 * 1024)
            stack.worker.start()
            asset = stack.wait(asset_id)
            assert asset["status"] == "errored"
            assert "no space left" in asset["error"]["message"].lower(), asset["error"]
            assert stack.job(asset_id).status == "failed"
            assert source.is_file() and source.read_bytes() == clip.read_bytes()  # the original is kept
            assert stack.worker.alive
            assert not list((stack.data_dir / "work").glob("*/*"))  # scratch cleaned up
