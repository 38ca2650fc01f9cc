"""Encrypted (CENC + ClearKey) playback in Chromium: dash.js and Shaka play with a token, fail without one."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Media, wait_playing
from tests.media_fixtures import make_clip

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def encrypted(server, clips) -> Media:
    src = make_clip(clips / "encrypted.mp4", duration=6, width=320, height=180, fps=30)
    created = server.upload(src, {"segment_duration": 2, "playback_policy": "encrypted"})
    return Media(server.wait_ready(created["id"]))


@pytest.mark.parametrize("engine", ["dash", "shaka", None])
def test_encrypted_plays_with_a_token(server, encrypted, page, engine):
    pid = encrypted.playback_id
    licences = []
    page.on("request", lambda r: licences.append(r.method) if "/keys/clearkey" in r.url else None)
    page.on("response", lambda r: page.log.append(f"{r.status} {r.request.method} {r.url[:120]}") if r.status >= 400 else None)
    query = f"engine={engine}&" if engine else ""
    page.goto(f"{server.url}/player/{pid}?{query}autoplay=1&token={server.token(pid)}")
    state = wait_playing(page, past=2.5, log=page.log)
    assert state["protocol"] == "dash" and state["videoHeight"] > 0
    assert "POST" in licences  # the key came from our licence endpoint


@pytest.mark.parametrize("engine", ["dash", "shaka"])
def test_without_a_valid_token_the_key_is_refused(server, encrypted, page, engine):
    pid = encrypted.playback_id
    # The manifest and segments are opened by a token for another id? No: a token that expires at once
    # would stop the manifest too. So the page gets a good manifest, and the licence call is forced to 403.
    page.route("**/keys/clearkey*", lambda route: route.continue_(url=route.request.url.split("?")[0]))
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if "/keys/clearkey" in r.url else None)
    page.goto(f"{server.url}/player/{pid}?engine={engine}&autoplay=1&token={server.token(pid)}")
    page.wait_for_selector("#message:not([hidden])", timeout=30_000)
    assert 403 in statuses
    assert page.evaluate("document.querySelector('video').currentTime") < 0.5


@pytest.mark.parametrize(("engine", "key_request"), [("hls", ("POST", "clearkey")), ("shaka", ("GET", "identity"))])
def test_encrypted_hls_plays_with_a_token(server, encrypted, page, engine, key_request):
    """The same CENC segments as SAMPLE-AES-CTR HLS: hls.js via EME ClearKey (our licence), Shaka via identity."""
    pid = encrypted.playback_id
    keys = []
    page.on("request", lambda r: keys.append((r.method, r.url.split("?")[0].rsplit("/", 1)[-1])) if "/keys/" in r.url else None)
    page.on("response", lambda r: page.log.append(f"{r.status} {r.request.method} {r.url[:120]}") if r.status >= 400 else None)
    page.goto(f"{server.url}/player/{pid}?engine={engine}&protocol=hls&autoplay=1&token={server.token(pid)}")
    state = wait_playing(page, past=2.5, log=page.log)
    assert state["protocol"] == "hls" and state["videoHeight"] > 0
    assert key_request in keys, keys  # hls.js: EME licence (KID from the data URI); Shaka: the identity key


@pytest.mark.parametrize("engine", ["hls", "shaka"])
def test_encrypted_hls_without_a_valid_token_the_key_is_refused(server, encrypted, page, engine):
    pid = encrypted.playback_id
    # Playlists and segments keep their token; every key request loses it (as a leaked key URL would).
    page.route("**/keys/*", lambda route: route.continue_(url=route.request.url.split("?")[0]))
    statuses = []
    page.on("response", lambda r: statuses.append(r.status) if "/keys/" in r.url else None)
    page.goto(f"{server.url}/player/{pid}?engine={engine}&protocol=hls&autoplay=1&token={server.token(pid)}")
    page.wait_for_selector("#message:not([hidden])", timeout=30_000)
    assert 403 in statuses
    assert page.evaluate("document.querySelector('video').currentTime") < 0.5


def test_encrypted_live_stream_plays_with_a_token(server, page, tmp_path):
    """A live stream with playback_policy encrypted: dash.js plays its CENC segments with our ClearKey licence."""
    import time

    from tests.live.sources import hls_live_source

    with hls_live_source(tmp_path / "source") as source:
        r = server.client.post("/v1/live-streams", json={"source_url": source, "segment_duration": 1, "record": False,
                                                         "playback_policy": "encrypted"})
        assert r.status_code == 201, r.text
        stream = r.json()
        try:
            deadline = time.monotonic() + 45
            while server.client.get(f"/v1/live-streams/{stream['id']}").json()["status"] != "active":
                assert time.monotonic() < deadline, server.log.read_text()[-3000:]
                time.sleep(0.3)
            pid = stream["playback_ids"][0]["id"]
            licences = []
            page.on("request", lambda r: licences.append(r.method) if "/keys/clearkey" in r.url else None)
            page.on("response", lambda r: page.log.append(f"{r.status} {r.request.method} {r.url[:120]}")
                    if r.status >= 400 else None)
            page.goto(f"{server.url}/player/{pid}?engine=dash&autoplay=1&token={server.token(pid)}")
            state = wait_playing(page, past=1.5, log=page.log)
            assert state["protocol"] == "dash" and state["videoHeight"] > 0
            assert page.evaluate("() => window.abrPlayer.live")
            assert "POST" in licences  # the key came from our licence endpoint, for the live playback id
        finally:
            server.client.delete(f"/v1/live-streams/{stream['id']}")
