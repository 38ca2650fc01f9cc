"""`GET /v1/assets/{id}/events` on the deployed stack (`abr api`: Granian) with a real worker.

Every stream ends with a final `end` event and a clean end of body (no
"incomplete chunked read"), `Last-Event-ID` resumes without repeats, and
`abr upload --wait` rides out an API restart in the middle of its wait.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from api import asset_events
from cli.migrate import upgrade
from tests.conftest import REPO_ROOT, free_port
from tests.helpers import TEST_KEY, settings_from
from tests.integrations.conftest import ApiServer
from tests.workers.worker_proc import running_worker

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
STREAMS = 50
UPLOADS = 3


@pytest.fixture
def stack(tmp_path):
    """`abr api` (Granian, the default server) on embedded defaults; the test starts the worker when it wants."""
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"), "ABR_API_KEYS": TEST_KEY,
           "ABR_LOG_LEVEL": "INFO", "ABR_RATE_LIMIT": "0"}
    upgrade(settings_from(env).resolved_database_url)
    api = ApiServer(env=env, port=free_port(), log=tmp_path / "api.log", command="abr")
    api.start()
    try:
        yield api
    finally:
        api.stop()


def _upload(api: ApiServer, clip) -> str:
    with open(clip, "rb") as fh:
        r = api.client.post(f"{api.url}/v1/assets", files={"file": ("clip.mp4", fh, "video/mp4")},
                            data={"settings": json.dumps({"codecs": ["h264"]})})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _parse(body: str) -> list[dict]:
    """The events of an SSE body, as dicts of their fields (comments and the `retry:` block dropped)."""
    events = []
    for block in body.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        if "event" in fields:
            events.append(fields)
    return events


async def _read_stream(client: httpx.AsyncClient, url: str, asset_id: str) -> str:
    async with client.stream("GET", f"{url}/v1/assets/{asset_id}/events", headers=AUTH) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        # aread raises httpx.RemoteProtocolError on a body cut before its final chunk
        return (await r.aread()).decode()


async def _streams(url: str, asset_ids: list[str]) -> list[str | BaseException]:
    limits = httpx.Limits(max_connections=STREAMS + 5)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0), limits=limits) as client:
        return await asyncio.gather(*(_read_stream(client, url, asset_ids[i % len(asset_ids)])
                                      for i in range(STREAMS)), return_exceptions=True)


def test_fifty_streams_over_uploads_each_end_with_a_final_event_and_a_clean_body(stack, clip, tmp_path):
    asset_ids = [_upload(stack, clip) for _ in range(UPLOADS)]  # queued: no worker yet

    async def run() -> list[str | BaseException]:
        streams = asyncio.ensure_future(_streams(stack.url, asset_ids))
        await asyncio.sleep(1.0)  # every stream is open and has seen `queued`
        with running_worker(stack.env, log_path=tmp_path / "worker.log"):
            return await asyncio.wait_for(streams, timeout=180)

    results = asyncio.run(run())
    failures = [r for r in results if isinstance(r, BaseException)]
    assert not failures, f"{len(failures)} of {STREAMS} streams failed: {failures[:3]!r}"
    for body in results:
        assert body.startswith(f"retry: {asset_events.RETRY_MS}\n\n")
        events = _parse(body)
        assert events[0]["event"] == "asset" and json.loads(events[0]["data"])["status"] == "queued"
        assert all("id" in e for e in events)
        assert events[-1]["event"] == "end" and json.loads(events[-1]["data"])["status"] == "ready"
        assert json.loads(events[-2]["data"])["status"] == "ready" and events[-2]["id"] == events[-1]["id"]
        ids = [e["id"] for e in events if e["event"] == "asset"]
        assert len(ids) == len(set(ids))  # a state is sent once

    # Resuming with the last id: nothing repeats, the final event comes at once. A stale id gets the state.
    body = results[0]
    last = _parse(body)[-1]["id"]
    asset_id = json.loads(_parse(body)[-1]["data"])["id"]
    resumed = httpx.get(f"{stack.url}/v1/assets/{asset_id}/events", headers={**AUTH, "Last-Event-ID": last},
                        timeout=30)
    assert [e["event"] for e in _parse(resumed.text)] == ["end"]
    stale = httpx.get(f"{stack.url}/v1/assets/{asset_id}/events", headers={**AUTH, "Last-Event-ID": "old"},
                      timeout=30)
    assert [e["event"] for e in _parse(stale.text)] == ["asset", "end"]


def test_upload_wait_survives_an_api_restart(stack, clip, tmp_path):
    env = dict(os.environ, ABR_API_URL=stack.url, ABR_API_KEY=TEST_KEY, ABR_STATE_DIR=str(tmp_path / "state"))
    cli = subprocess.Popen([sys.executable, "-m", "cli.main", "upload", str(clip), "--wait"], env=env,
                           cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        asset_id = cli.stdout.readline().strip()  # printed once the upload is done; the wait starts
        assert asset_id.startswith("as_"), cli.stderr.read() if cli.poll() is not None else asset_id
        time.sleep(1.0)  # the CLI is reading the event stream of a queued asset (no worker yet)
        stack.restart(signal.SIGKILL)  # the stream is cut mid-body
        time.sleep(1.0)
        assert cli.poll() is None, cli.stderr.read()
        with running_worker(stack.env, log_path=tmp_path / "worker.log"):
            out, err = cli.communicate(timeout=180)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err
    assert "reconnecting" in err and "ready" in err
    assert stack.client.get(f"{stack.url}/v1/assets/{asset_id}").json()["status"] == "ready"
