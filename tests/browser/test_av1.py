"""AV1 beside H.264 from one master: players that decode AV1 play it, the others fall back to H.264.

One tiny asset (4 s, 320x180, one rung per family, 2 s segments) in the
`h264` and `av1` families. The fallback is a browser without AV1 as players
see it: `MediaSource.isTypeSupported` and `navigator.mediaCapabilities`
(hls.js, dash.js and Shaka ask one or both before they pick a variant) answer
"no" to every `av01` type, patched into the page before any script runs.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import Media, wait_playing

pytestmark = pytest.mark.timeout(240)

NO_AV1 = """(() => {
  const av1 = (type) => /av01/i.test(String(type));
  for (const MS of [window.MediaSource, window.ManagedMediaSource]) {
    if (!MS) continue;
    const supported = MS.isTypeSupported.bind(MS);
    MS.isTypeSupported = (type) => !av1(type) && supported(type);
  }
  const caps = navigator.mediaCapabilities;
  if (caps && caps.decodingInfo) {
    const decodingInfo = caps.decodingInfo.bind(caps);
    caps.decodingInfo = (config) => (config && config.video && av1(config.video.contentType)
      ? Promise.resolve({ supported: false, smooth: false, powerEfficient: false })
      : decodingInfo(config));
  }
})();"""

ENGINES = [
    pytest.param("", "hls", id="auto"),
    pytest.param("engine=hls", "hls", id="hlsjs-hls"),
    pytest.param("engine=dash", "dash", id="dashjs-dash"),
    pytest.param("engine=shaka", "shaka", id="shaka-dash"),
    pytest.param("engine=shaka&protocol=hls", "shaka", id="shaka-hls"),
]


@pytest.fixture(scope="module")
def av1_media(server, clips) -> Media:
    from tests.media_fixtures import make_clip

    source = make_clip(clips / "av1.mp4", duration=4, width=320, height=180, fps=30)
    asset = server.upload(source, {"codecs": ["h264", "av1"], "segment_duration": 2})
    return Media(server.wait_ready(asset["id"], timeout=180))


def playing_codec(page, query: str) -> tuple[dict, str]:
    page.goto(f"{page.server_url}/player/{page.playback_id}?{query}&autoplay=1")
    state = wait_playing(page, past=1.5, log=page.log)
    assert state["error"] is None, state
    assert 0 <= state["current"] < len(state["levels"]), state
    return state, state["levels"][state["current"]]["codec"]


@pytest.fixture
def av1_page(page, server, av1_media):
    page.server_url, page.playback_id = server.url, av1_media.playback_id
    return page


def test_one_master_and_one_mpd_offer_both_families(server, av1_media):
    assert {r["codec"] for r in av1_media.asset["renditions"]} == {"h264", "av1", "aac"}
    master = server.client.get(f"/play/{av1_media.playback_id}/master.m3u8").text
    # CODECS read from the init segments: AV1 main profile, level 2.0 (320x180), 8 bit.
    assert 'CODECS="av01.0.00M.08,mp4a.40.2"' in master and 'CODECS="avc1.64' in master
    mpd = server.client.get(f"/play/{av1_media.playback_id}/manifest.mpd").text
    assert 'codecs="av01.0.00M.08"' in mpd and 'codecs="avc1.64' in mpd


@pytest.mark.parametrize(("query", "engine"), ENGINES)
def test_a_browser_with_av1_plays_av1(av1_page, query, engine):
    state, codec = playing_codec(av1_page, query)
    assert state["engine"] == engine
    assert codec.startswith("av01."), state["levels"]
    assert state["videoHeight"] == 180
    assert not [line for line in av1_page.log if "error" in line.lower()], av1_page.log.text()


@pytest.mark.parametrize(("query", "engine"), ENGINES)
def test_a_browser_without_av1_plays_h264_from_the_same_master(av1_page, query, engine):
    av1_page.add_init_script(NO_AV1)
    state, codec = playing_codec(av1_page, query)
    assert av1_page.evaluate("() => MediaSource.isTypeSupported('video/mp4; codecs=\"av01.0.01M.08\"')") is False
    assert state["engine"] == engine
    assert codec.startswith("avc1."), state["levels"]
    assert state["videoHeight"] == 180
    assert not [line for line in av1_page.log if "error" in line.lower()], av1_page.log.text()
