"""`preview.mjpeg`: ends when its token expires, and open previews are capped (429 + Retry-After)."""

from __future__ import annotations

import threading
import time

import pytest

from core.errors import RateLimited
from core.layout import media_key
from core.media.live_model import THUMBNAIL
from core.origin.preview import PreviewSlots, preview_deadline
from tests.helpers import app_client

pytestmark = pytest.mark.timeout(60)  # a preview that never ends must fail the test, not hang it


def test_preview_deadline():
    assert preview_deadline(100.0, None) is None
    assert preview_deadline(100.0, 30) == 130.0
    assert preview_deadline(100.0, -5) == 100.0


def test_slots_per_playback_id_and_per_process():
    slots = PreviewSlots(per_playback=2, per_process=3)
    slots.acquire("a")
    slots.acquire("a")
    with pytest.raises(RateLimited, match="2 previews of this playback id") as full:
        slots.acquire("a")
    assert full.value.retry_after == 10
    slots.acquire("b")
    with pytest.raises(RateLimited, match="already streams 3 previews"):
        slots.acquire("c")
    slots.release("a")
    slots.acquire("c")
    for pid in ("a", "b", "c"):
        slots.release(pid)
    assert slots.total == 0 and slots._open == {}


@pytest.fixture
def live(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, preview_per_playback_id=1, preview_per_process=8) as client:
        stream = client.post("/v1/live-streams", json={"playback_policy": "signed"}).json()
        ctx = client.app.state.ctx
        ctx.storage.put_bytes(media_key(stream["id"], THUMBNAIL), b"\xff\xd8 a jpeg \xff\xd9")
        yield client, stream["playback_ids"][0]["id"]


def _token(client, playback_id: str, seconds: int) -> str:
    r = client.post("/v1/playback-tokens", json={"playback_id": playback_id, "expires_in": seconds})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_mjpeg_is_closed_when_its_token_expires(live):
    client, playback_id = live
    token = _token(client, playback_id, 2)
    started = time.monotonic()
    r = client.get(f"/play/{playback_id}/preview.mjpeg", params={"token": token})  # returns once the stream ends
    took = time.monotonic() - started
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/x-mixed-replace")
    assert r.content.count(b"--abrframe\r\nContent-Type: image/jpeg") == 1  # the picture did not change
    assert 0.5 < took < 4.5, took  # ends with the token (2 s, less the part of a second already gone)
    # The expired token opens nothing more; the slot was given back when the stream ended.
    assert client.get(f"/play/{playback_id}/preview.mjpeg", params={"token": token}).status_code == 403
    assert client.app.state.ctx.extra["preview_slots"].total == 0


def test_a_second_preview_of_one_id_is_429_with_retry_after(live):
    client, playback_id = live
    token = _token(client, playback_id, 3)
    first: dict = {}
    holder = threading.Thread(target=lambda: first.update(r=client.get(f"/play/{playback_id}/preview.mjpeg",
                                                                       params={"token": token})))
    holder.start()
    slots_open = lambda: client.app.state.ctx.extra.get("preview_slots") is not None \
        and client.app.state.ctx.extra["preview_slots"].total == 1  # noqa: E731
    deadline = time.monotonic() + 5
    while not slots_open() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slots_open()
    second = client.get(f"/play/{playback_id}/preview.mjpeg", params={"token": token})
    assert second.status_code == 429, second.text
    assert second.headers["retry-after"] == "10" and second.json()["error"]["code"] == "rate_limited"
    assert "ABR_PREVIEW_PER_PLAYBACK_ID" in second.json()["error"]["message"]
    holder.join(10)
    assert first["r"].status_code == 200
    assert client.app.state.ctx.extra["preview_slots"].total == 0
