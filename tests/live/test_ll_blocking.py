"""LL-HLS blocking playlist reload through the API: held until the part exists, 400 too far ahead, many waiters."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest

from core.layout import media_key
from core.media.live_model import LIVE_PRESENTATION, Part
from tests.helpers import app_client
from tests.live.test_ll_hls_manifest import _live

pytestmark = pytest.mark.timeout(120)


def _publish(ctx, stream_id: str, live) -> None:
    ctx.storage.put_bytes(media_key(stream_id, LIVE_PRESENTATION), json.dumps(live.to_dict()).encode(),
                          content_type="application/json")


@pytest.fixture
def ll(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env) as client:
        stream = client.post("/v1/live-streams", json={"latency_mode": "low", "segment_duration": 1.0}).json()
        live = _live()  # the newest part: segment 4 part 1
        _publish(client.app.state.ctx, stream["id"], live)
        yield client, stream["id"], f"/play/{stream['playback_ids'][0]['id']}/360p/index.m3u8", live


@pytest.mark.parametrize("storage", ["local", "remote"])
def test_blocked_request_is_answered_when_its_part_is_published(ll, storage, monkeypatch):
    client, stream_id, url, live = ll
    if storage == "remote":  # what S3 says: no file to stat, the watcher asks the storage in the thread pool
        monkeypatch.setattr(client.app.state.ctx.storage, "local_path", lambda key: None)
    answer: dict = {}

    def ask():
        answer["response"] = client.get(url, params={"_HLS_msn": 4, "_HLS_part": 2})
        answer["at"] = time.monotonic()

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(0.5)  # the request is held meanwhile (it cannot have an answer: the part does not exist)
    assert "response" not in answer
    live.parts["360p"].append(Part(4, 2, 250, False))
    published = time.monotonic()
    _publish(client.app.state.ctx, stream_id, live)
    asker.join(10)
    r = answer["response"]
    assert r.status_code == 200
    assert '#EXT-X-PART:DURATION=0.25000,URI="00004.2.m4s"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="00004.3.m4s"' in r.text
    assert answer["at"] - published < 0.3, answer["at"] - published  # watcher every 4 / 20 ms; loaded CI box
    assert r.headers["cache-control"] == "public, max-age=6"  # this URL's answer never changes


def test_watcher_on_local_storage_reads_live_json_only_when_it_changed(ll, monkeypatch):
    """While requests wait, the watcher stats the file on the event loop: no load (thread hop, read, parse)
    per look, one per publish."""
    client, stream_id, url, live = ll
    from api.live_origin import live_manifests

    manifests = live_manifests(_Request(client.app))
    loads = []
    real = manifests.load
    monkeypatch.setattr(manifests, "load", lambda *a, **k: loads.append(k.get("fresh")) or real(*a, **k))
    answer: dict = {}
    asker = threading.Thread(target=lambda: answer.update(r=client.get(url, params={"_HLS_msn": 4, "_HLS_part": 2})))
    asker.start()
    time.sleep(1.0)  # 250 looks at 4 ms
    held = loads.count(True)
    live.parts["360p"].append(Part(4, 2, 250, False))
    _publish(client.app.state.ctx, stream_id, live)
    asker.join(10)
    assert answer["r"].status_code == 200 and "00004.2.m4s" in answer["r"].text
    assert held <= 1, loads  # the first look loads it once; unchanged, it is never read again
    assert loads.count(True) <= held + 1, loads  # and once after the publish


class _Request:
    def __init__(self, app) -> None:
        self.app = app


def test_ready_parts_answer_at_once_and_too_far_ahead_is_400(ll):
    client, _, url, _ = ll
    started = time.monotonic()
    r = client.get(url, params={"_HLS_msn": 4, "_HLS_part": 1})
    assert r.status_code == 200 and time.monotonic() - started < 1.0
    assert client.get(url, params={"_HLS_msn": 3}).status_code == 200
    for params in ({"_HLS_msn": 7}, {"_HLS_msn": 4, "_HLS_part": 5}, {"_HLS_msn": "x"}, {"_HLS_part": 1},
                   {"_HLS_skip": "NO"}):
        assert client.get(url, params=params).status_code == 400, params


def test_delta_update_through_the_api(ll):
    client, stream_id, url, _ = ll
    _publish(client.app.state.ctx, stream_id, _live(segments=10))
    time.sleep(0.1)  # past the per-process reload interval
    r = client.get(url, params={"_HLS_skip": "YES"})
    assert r.status_code == 200 and "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n" in r.text


def test_block_times_out_after_three_target_durations(ll):
    client, _, url, _ = ll
    started = time.monotonic()
    r = client.get(url, params={"_HLS_msn": 5, "_HLS_part": 0})
    took = time.monotonic() - started
    assert r.status_code == 200 and 2.9 < took < 4.5, took
    assert r.headers["cache-control"] == "no-store"  # not what it asked for: a CDN must not keep it


def test_a_thousand_blocked_requests_one_process_no_thread_per_waiter(ll):
    client, stream_id, url, live = ll
    app, ctx = client.app, client.app.state.ctx
    before = threading.active_count()
    peak = {"threads": before}

    async def main():
        transport = httpx.ASGITransport(app=app)
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", limits=limits) as http:
            tasks = [asyncio.create_task(http.get(url, params={"_HLS_msn": 4, "_HLS_part": 2}))
                     for _ in range(1000)]
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:  # all held: none answered, threads counted while they wait
                peak["threads"] = max(peak["threads"], threading.active_count())
                await asyncio.sleep(0.05)
            assert not any(t.done() for t in tasks)
            live.parts["360p"].append(Part(4, 2, 250, False))
            await asyncio.to_thread(_publish, ctx, stream_id, live)
            return await asyncio.gather(*tasks)

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 1000
    assert all('URI="00004.2.m4s"' in r.text for r in responses)
    # Waiting costs no thread. The request's synchronous lookups run on AnyIO's shared pool (40 threads
    # by default) before the wait, so up to that many may exist; a thread per waiter would be 1,000.
    assert peak["threads"] - before <= 40 + 8, (before, peak)
