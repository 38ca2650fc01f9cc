"""The asset event stream's protocol (api/asset_events.py): exact events per state, keep-alives, a clean end."""

from __future__ import annotations

import asyncio
import json

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from api import asset_events as protocol

QUEUED = {"id": "as_1", "status": "queued", "progress": 0.0}
READY = {"id": "as_1", "status": "ready", "progress": 100.0}


def wire(events) -> str:
    return "".join(e.encode().decode() for e in events)


def test_a_changed_state_is_sent_with_its_id_and_an_unchanged_one_is_not():
    events, last, done = protocol.step("as_1", None, QUEUED)
    qid = protocol.state_id(QUEUED)
    assert wire(events) == f"id: {qid}\nevent: asset\ndata: {json.dumps(QUEUED)}\n\n"
    assert (last, done) == (qid, False)
    assert protocol.step("as_1", qid, dict(QUEUED)) == ([], qid, False)  # equal state, equal id


def test_the_final_state_is_followed_by_the_end_event():
    rid = protocol.state_id(READY)
    events, last, done = protocol.step("as_1", protocol.state_id(QUEUED), READY)
    assert wire(events) == (f"id: {rid}\nevent: asset\ndata: {json.dumps(READY)}\n\n"
                            f'id: {rid}\nevent: end\ndata: {{"id": "as_1", "status": "ready"}}\n\n')
    assert (last, done) == (rid, True)
    # resumed with Last-Event-ID of the final state: only the end event
    events, _, done = protocol.step("as_1", rid, READY)
    assert wire(events) == f'id: {rid}\nevent: end\ndata: {{"id": "as_1", "status": "ready"}}\n\n' and done


def test_a_deleted_asset_ends_the_stream():
    events, last, done = protocol.step("as_1", "x", None)
    assert wire(events) == ('id: deleted\nevent: deleted\ndata: {"id": "as_1"}\n\n'
                            'id: deleted\nevent: end\ndata: {"id": "as_1", "status": "deleted"}\n\n')
    assert (last, done) == ("deleted", True)


def test_state_ids_ignore_key_order_and_differ_between_states():
    assert protocol.state_id({"a": 1, "b": 2}) == protocol.state_id({"b": 2, "a": 1})
    assert protocol.state_id(QUEUED) != protocol.state_id(READY)


def test_keep_alives_while_nothing_happens_then_a_clean_end():
    async def events():
        yield protocol.opening()
        await asyncio.sleep(0.55)
        for event in protocol.step("as_1", None, READY)[0]:
            yield event

    app = Starlette(routes=[Route("/events", lambda request: protocol.response(events(), keepalive=0.1))])

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
            return await client.get("/events")

    r = asyncio.run(get())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-store"
    assert r.text.startswith("retry: 2000\n\n")
    assert r.text.count(": keep-alive\n\n") >= 3
    assert r.text.endswith('event: end\ndata: {"id": "as_1", "status": "ready"}\n\n')
