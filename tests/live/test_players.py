"""hls.js and dash.js play a live stream in real Chromium and stay near the live edge."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.live.conftest import chromium, kill, push

VENDOR = REPO_ROOT / "player" / "vendor"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEGMENT = 1


def _library(*names: str) -> Path:
    for name in names:
        for found in sorted(VENDOR.rglob(name)):
            return found
    pytest.skip(f"{names[0]} is not vendored under player/vendor yet")


HLS_PAGE = """
const video = document.querySelector('video');
const hls = new Hls({liveSyncDurationCount: 2});
hls.loadSource(SOURCE); hls.attachMedia(video);
hls.on(Hls.Events.MANIFEST_PARSED, () => { video.muted = true; video.play(); });
window.edge = () => hls.liveSyncPosition !== null ? hls.liveSyncPosition - video.currentTime : null;
"""
DASH_PAGE = """
const video = document.querySelector('video');
const player = dashjs.MediaPlayer().create();
player.initialize(video, SOURCE, true);
video.muted = true;
// Distance to the newest segment listed in the MPD (the DVR window's end).
window.edge = () => { const w = player.getDvrWindow ? player.getDvrWindow() : null;
                      return w ? w.end - player.time() : null; };
"""


@pytest.mark.parametrize("kind", ["hls", "dash"])
def test_player_stays_near_the_live_edge(live_stack, kind, playwright_instance):
    chromium()

    lib = _library("hls.min.js") if kind == "hls" else _library("dash.all.min.js", "dash.mediaplayer.min.js")
    stream = live_stack.create(segment_duration=SEGMENT, record=False)
    publisher = push(f"{live_stack.rtmp}/{stream['stream_key']}", seconds=40, size="426x240", fps=15)
    try:
        live_stack.wait(stream["id"], ("active",), timeout=20)
        url = stream["playback"][kind]
        # Its own browser without the autoplay flag: dash.js must start live playback itself.
        browser = playwright_instance.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []  # uncaught exceptions in the page (a player's timer dying stalls live)
            page.on("pageerror", lambda e: errors.append(f"{e}\n{e.stack}"))
            page.set_content("<video width=426 height=240></video>")
            page.add_script_tag(content=lib.read_text())
            # Not `URL`: a page-level `const URL` shadows window.URL, and dash.js 5 calls `new URL()` when it
            # refreshes the MPD (the refresh throws, the MPD is never reloaded, playback stops at its end).
            page.add_script_tag(content=f"const SOURCE = {url!r};" + (HLS_PAGE if kind == "hls" else DASH_PAGE))
            page.wait_for_function("document.querySelector('video').currentTime > 3", timeout=30000)
            t0 = page.evaluate("document.querySelector('video').currentTime")
            time.sleep(4)
            t1 = page.evaluate("document.querySelector('video').currentTime")
            assert t1 - t0 > 2.5, f"playback does not advance; page errors: {errors}"
            edge = page.evaluate("window.edge()")
        finally:
            browser.close()
        assert not errors, errors
        # hls.js: ≤ 3 segments behind the newest listed segment. dash.js aims at the MPD's
        # suggestedPresentationDelay (3 segments) behind the wall-clock edge, which runs about one
        # segment (the one being encoded) plus publishing ahead of the newest listed segment.
        limit = 3 * SEGMENT + 1.5 if kind == "hls" else 4 * SEGMENT + 1.5
        assert edge is not None and edge <= limit, edge
    finally:
        kill(publisher)
        live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
