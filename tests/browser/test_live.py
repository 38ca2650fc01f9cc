"""The dashboard's live section (#/live) and the player's live controls, against a real `abr dev`.

A pull stream reads an HLS source that ffmpeg writes on loopback (tests/live/sources.py); the
live worker of `abr dev` packages it and the player plays it with the LIVE badge, the DVR seek
bar and "go live". Stopping it turns the recording into an asset, opened from the stream's page.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.browser.conftest import PHONE, open_context, screenshot, wait_playing
from tests.live.sources import hls_live_source

pytestmark = pytest.mark.timeout(180)

LIVE_STATE = """() => {
  const v = document.querySelector('video'); const p = window.abrPlayer; const w = p.liveWindow();
  return {live: p.live, currentTime: v.currentTime, start: w.start, end: w.end, target: w.target,
          badge: !document.getElementById('live-badge').hidden, golive: !document.getElementById('golive').hidden,
          time: document.getElementById('time').textContent};
}"""


def test_pull_stream_from_the_dashboard_goes_live_plays_stops_and_records(server, browser, tmp_path):
    with hls_live_source(tmp_path / "source") as source:
        ctx = open_context(browser, key=server.key)
        page = ctx.new_page()
        page.goto(server.url + "/")
        page.click("#nav-live")
        page.wait_for_url(re.compile(r"#/live$"))
        page.check("#live-pull")
        page.fill("#live-source", source)
        assert page.is_checked("#live-record")
        page.click("#live-create-submit")
        page.wait_for_url(re.compile(r"#/live/[A-Za-z0-9_-]+$"))
        stream_id = page.url.rsplit("/", 1)[1]
        assert page.input_value("#live-source-url") == source

        # Status comes from polling the live-stream resource: connecting, then active.
        page.wait_for_selector(".detail-head .badge[data-status='active']", timeout=45_000)
        page.wait_for_selector("#live-preview:not([hidden]) #live-thumb", timeout=15_000)
        assert page.evaluate("() => document.getElementById('live-thumb').naturalWidth") > 0
        assert page.input_value("#url-hls").endswith("/master.m3u8")

        page.frame_locator("#player-frame").locator("#bigplay").click()
        player = next(f for f in page.frames if "/player/" in f.url)
        wait_playing(player, past=1.0, timeout=30_000)
        player.wait_for_function("() => window.abrPlayer.live && !document.getElementById('live-badge').hidden")
        state = player.evaluate(LIVE_STATE)
        assert state["badge"] and not state["golive"], state
        screenshot(page, "dashboard-live-desktop", full_page=True)

        # DVR: the seek bar spans the window; going back shows "Go live", which returns to the edge.
        # (the window grows from the first segment: wait until there is room behind the live target)
        player.wait_for_function("() => { const w = window.abrPlayer.liveWindow(); return w.target - w.start > 5; }",
                                 timeout=30_000)
        player.evaluate("() => { const s = document.getElementById('seek'); s.value = '0';"
                        " s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); }")
        player.wait_for_function("() => !document.getElementById('golive').hidden")
        behind = player.evaluate(LIVE_STATE)
        assert behind["target"] - behind["currentTime"] > 3, behind
        assert behind["time"].startswith("−"), behind  # how far behind live
        page.evaluate("() => window.scrollTo(0, 0)")  # the player's top is under the sticky top bar otherwise
        player.hover("#player")  # wake the controls
        player.click("#golive")
        player.wait_for_function("() => document.getElementById('golive').hidden")
        back = player.evaluate(LIVE_STATE)
        assert abs(back["target"] - back["currentTime"]) < 3, back

        page.click("#live-stop")
        page.wait_for_selector(".detail-head .badge[data-status='ended']", timeout=30_000)
        assert page.is_hidden("#live-stop")
        link = page.locator("#live-recording-link")
        link.wait_for(timeout=15_000)
        recording_id = server.client.get(f"/v1/live-streams/{stream_id}").json()["recording_asset_id"]
        assert recording_id and link.get_attribute("href") == f"#/assets/{recording_id}"
        link.click()
        page.wait_for_url(re.compile(f"#/assets/{recording_id}$"))
        page.wait_for_selector(".detail-head .badge[data-status='ready']", timeout=60_000)
        page.locator("iframe#player-frame").wait_for()

        # Delete the stream from its page: the list no longer has it.
        page.goto(f"{server.url}/#/live/{stream_id}")
        page.once("dialog", lambda d: d.accept())
        page.click("#live-delete")
        page.wait_for_url(re.compile(r"#/live$"))
        page.wait_for_selector("#live-list")
        assert page.locator(f".live-row[data-id='{stream_id}']").count() == 0
        screenshot(page, "dashboard-live-list", full_page=True)
        assert server.client.get(f"/v1/live-streams/{stream_id}").status_code == 404
        ctx.close()


ONE_STREAM = re.compile(r"/v1/live-streams/[A-Za-z0-9_-]+$")


def _rewrite_ingest(page, ingest):
    """Serve the live-stream resource with another `ingest` (absent when None): servers old and new."""
    from playwright.sync_api import Error as PlaywrightError

    def handle(route):
        try:
            response = route.fetch()
            body = response.json()
            if ingest is None:
                body.pop("ingest", None)
            else:
                body["ingest"] = ingest(body)
            route.fulfill(response=response, body=json.dumps(body))
        except PlaywrightError:
            pass  # a poll cut short by the reload: nothing to answer
    page.unroute_all(behavior="ignoreErrors")
    page.route(ONE_STREAM, handle)


def test_push_stream_shows_ingest_settings_for_obs(server, browser):
    ctx = open_context(browser, key=server.key)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.url}/#/live")
    assert page.is_checked("#live-push")
    assert page.is_hidden("#live-source")
    page.click("#live-create-submit")
    page.wait_for_url(re.compile(r"#/live/[A-Za-z0-9_-]+$"))
    stream = server.client.get(f"/v1/live-streams/{page.url.rsplit('/', 1)[1]}").json()
    key = stream["stream_key"]
    page.wait_for_selector(".detail-head .badge[data-status='idle']")
    assert page.input_value("#ingest-key") == key
    server_url = page.input_value("#ingest-server")
    assert re.fullmatch(r"rtmp://[^/]+:\d+/live", server_url), server_url
    assert page.input_value("#ingest-url") == f"{server_url}/{key}"
    hint = page.inner_text("#obs-hint")
    assert "Keyframe Interval 2 s" in hint and "Custom" in hint
    assert "Waiting for an encoder" in page.inner_text("#live-placeholder")
    page.locator("#live-ingest .field", has=page.locator("#ingest-key")).locator("button").click()
    page.wait_for_selector(".toast:has-text('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == key
    screenshot(page, "dashboard-live-push", full_page=True)
    phone = open_context(browser, viewport=PHONE, phone=True, key=server.key)
    small = phone.new_page()
    small.goto(page.url)
    small.wait_for_selector("#obs-hint")
    assert small.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(small, "dashboard-live-push-phone", full_page=True)
    phone.close()

    # A server that checks its RTMP listener and says it is not running, and why.
    _rewrite_ingest(page, lambda b: {"rtmp": f"rtmp://example.test:1935/live/{b['stream_key']}", "srt": None,
                                     "rtmp_status": {"available": False, "reason": "nginx is not installed"}})
    page.reload()
    page.wait_for_selector("#ingest-unavailable")
    assert "nginx is not installed" in page.inner_text("#ingest-unavailable")
    assert page.input_value("#ingest-server") == "rtmp://example.test:1935/live"
    assert page.input_value("#ingest-key") == key

    # A server without `ingest`: the key is still there, and a note instead of a URL.
    _rewrite_ingest(page, None)
    page.reload()
    page.wait_for_selector("#ingest-unknown")
    assert page.input_value("#ingest-key") == key
    assert page.locator("#ingest-server").count() == 0
    assert not errors, errors

    server.client.delete(f"/v1/live-streams/{stream['id']}")
    ctx.close()


@pytest.fixture(scope="module")
def pull_stream(server, tmp_path_factory):
    """One pull stream (1 s segments) from a loopback HLS source, active, for the engine tests."""
    with hls_live_source(tmp_path_factory.mktemp("live-source")) as source:
        r = server.client.post("/v1/live-streams", json={"source_url": source, "segment_duration": 1,
                                                         "record": False})
        assert r.status_code == 201, r.text
        stream = r.json()
        deadline = time.monotonic() + 45
        while server.client.get(f"/v1/live-streams/{stream['id']}").json()["status"] != "active":
            assert time.monotonic() < deadline, server.log.read_text()[-3000:]
            time.sleep(0.3)
        yield stream
        server.client.delete(f"/v1/live-streams/{stream['id']}")


# The seek bar dragged halfway, with every seeking event the video then sees (the engine's own, too).
SEEK_BACK = """() => {
  const v = document.querySelector('video'); window.__seeks = [];
  if (!window.__seekTrace) {
    window.__seekTrace = true;
    v.addEventListener('seeking', () => { const w = window.abrPlayer.liveWindow();
      if (window.__seeks) window.__seeks.push({to: v.currentTime, start: w.start, target: w.target}); });
  }
  const s = document.getElementById('seek'); s.value = '500';
  s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));
}"""
# Behind live as the viewer sees it: "Go live" shown, the player marked behind-live, the time negative,
# and over 3 s behind the engine's live target, all at once (the state, or false).
BEHIND_LIVE = """() => {
  const v = document.querySelector('video'); const w = window.abrPlayer.liveWindow();
  const time = document.getElementById('time').textContent;
  const shown = !document.getElementById('golive').hidden;
  const marked = document.getElementById('player').classList.contains('behind-live');
  return shown && marked && w.target - v.currentTime > 3 && time.startsWith('−')
    ? {currentTime: v.currentTime, start: w.start, end: w.end, target: w.target, time, marked} : false;
}"""


def _wait(page, condition: str, what: str, timeout: float = 20_000, stream=None) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, timeout=timeout)
    except PlaywrightTimeout:
        where = "" if stream is None else _stream_report(*stream)
        raise AssertionError(f"{what}: not within {timeout / 1000:.0f} s: {page.evaluate(LIVE_STATE)}\n"
                             f"{page.log.text()}{where}") from None


def _stream_report(server, live) -> str:
    """Whether the stream itself stalled (origin window not growing) or only the player misbehaved."""
    body = server.client.get(f"/v1/live-streams/{live['id']}").json()
    return f"\nstream: status={body.get('status')}\nserver log tail:\n{server.log.read_text()[-2500:]}"


@pytest.mark.parametrize("engine", ["hls", "dash", "shaka"])
def test_player_live_badge_dvr_and_go_live(server, pull_stream, page, engine):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{server.url}/player/{pull_stream['playback_ids'][0]['id']}?engine={engine}&autoplay=1")
    wait_playing(page, past=0.5, log=page.log)
    page.wait_for_function("() => window.abrPlayer.live && !document.getElementById('live-badge').hidden")
    page.wait_for_function("() => { const w = window.abrPlayer.liveWindow(); return w.target - w.start > 20; }",
                           timeout=60_000)
    page.wait_for_function("() => document.getElementById('golive').hidden")  # playing at the live edge
    # Halfway into a DVR window of 20 s or more, as a viewer drags back. Not near the window's start:
    # an engine moves a seek that lands there to a position it holds safe, which in a short window is
    # near the live edge. Under CI's load the Shaka case twice ended 2.2 s behind its live target after
    # a seek well inside the range (3.15 s in a 12 s window went to 10.11 s; 12 s asked in a 24 s window,
    # the playhead at 22.1 s; the cause is not known), which 10 seeks in a row on an idle machine never did. A viewer drags again: so does this
    # test, up to 3 times, and every try's seeking events and state are printed (and kept in the failure).
    tries = []
    for _ in range(3):
        page.evaluate(SEEK_BACK)
        try:
            behind = page.wait_for_function(BEHIND_LIVE, timeout=15_000).json_value()
            break
        except PlaywrightTimeout:
            tries.append({"seeks": page.evaluate("() => window.__seeks"), "state": page.evaluate(LIVE_STATE)})
    else:
        raise AssertionError(f"Go live after seeking back: not within 3 tries: {tries}\n"
                             f"{page.log.text()}{_stream_report(server, pull_stream)}")
    print(f"{engine}: seek back held on try {len(tries) + 1}; earlier tries: {tries}")
    assert behind["target"] - behind["currentTime"] > 3 and behind["time"].startswith("−") and behind["marked"]
    page.hover("#player")
    if engine == "hls":
        screenshot(page, "player-live-behind")
    page.click("#golive")
    _wait(page, "() => document.getElementById('golive').hidden", "back at the live edge after Go live")
    back = page.evaluate(LIVE_STATE)
    assert abs(back["target"] - back["currentTime"]) < 3, back
    wait_playing(page, past=back["currentTime"] + 1, log=page.log)  # and it plays on from there
    assert not [line for line in page.log if line.startswith("pageerror")], page.log.text()
