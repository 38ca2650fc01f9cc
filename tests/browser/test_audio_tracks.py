"""Audio tracks in Chromium: hls.js, dash.js and Shaka list three languages and switch during playback."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Media, screenshot, wait_playing
from tests.media_fixtures import make_multi_audio_clip

pytestmark = pytest.mark.timeout(180)

AUDIO_STATE = "() => ({ tracks: window.abrPlayer.audioTracks(), current: window.abrPlayer.audioTrack(), " \
              "t: document.querySelector('video').currentTime })"


@pytest.fixture(scope="module")
def languages(server, clips) -> Media:
    src = make_multi_audio_clip(clips / "languages.mp4", duration=8, width=320, height=180)
    created = server.upload(src, {"segment_duration": 2, "audio": {"labels": {"2": {"role": "description"}}}})
    return Media(server.wait_ready(created["id"]))


@pytest.mark.parametrize("engine", ["hls", "dash", "shaka"])
def test_audio_menu_switches_language_while_playing(server, languages, page, engine):
    page.goto(f"{server.url}/player/{languages.playback_id}?engine={engine}&autoplay=1")
    wait_playing(page, past=0.5, log=page.log)
    page.wait_for_function("() => window.abrPlayer.audioTracks().length === 3", timeout=20_000)
    state = page.evaluate(AUDIO_STATE)
    assert sorted(t["lang"] for t in state["tracks"]) == ["en", "es", "fr"], state
    assert state["tracks"][state["current"]]["lang"] == "en"  # the default track

    page.mouse.move(400, 300)  # wake the controls
    page.click("#audio")
    items = page.locator("#audio-menu button")
    assert items.count() == 3
    labels = [items.nth(i).inner_text() for i in range(3)]
    assert any("Español" in label and "(AD)" in label for label in labels), labels
    if engine == "hls":
        screenshot(page, "player-audio-menu")
    french = next(t["index"] for t in state["tracks"] if t["lang"] == "fr")
    page.click(f"#audio-menu button[data-track='{french}']")
    page.wait_for_function(f"() => window.abrPlayer.audioTrack() === {french}", timeout=20_000)
    assert page.inner_text("#audio-label") == "fr"
    # No stall: playback goes on two more seconds after the switch.
    wait_playing(page, past=page.evaluate(AUDIO_STATE)["t"] + 2, log=page.log)
