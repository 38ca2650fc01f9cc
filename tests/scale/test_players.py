"""The chunked asset plays across its chunk joins in hls.js and dash.js (the project's vendored player) in Chromium."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

from tests.conftest import free_port
from tests.helpers import TEST_KEY, settings_from
from tests.scale.conftest import start_cluster

pytestmark = pytest.mark.timeout(240)
CHROMIUM = os.environ.get("ABR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
STATE = """() => { const v = document.querySelector('video'); const p = window.abrPlayer;
  return {t: v && v.currentTime, paused: v && v.paused, error: (v && v.error && v.error.message) || (p && p.error),
          engine: p && p.engine}; }"""


@pytest.fixture
def origin_url(services_env):
    import uvicorn

    from api.app import create_app

    app = create_app(settings_from(services_env, api_keys=TEST_KEY))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


def test_chunked_asset_plays_across_joins(services_env, tmp_path, scale_clips, origin_url, chromium_browser):
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    source = scale_clips("long", duration=24, width=320, height=240, fps=30)
    stack, cluster = start_cluster(services_env, tmp_path, [("worker-a", "transcode,default"),
                                                            ("worker-b", "transcode,default")])
    with stack:
        created = cluster.upload(source, {"segment_duration": 2})
        assert cluster.wait(created["id"])["status"] == "ready"
        pid = created["playback_ids"][0]["id"]
        context = chromium_browser.new_context()  # the session's shared browser (tests/conftest.py)
        try:
            for engine in ("hls", "dash"):
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{origin_url}/player/{pid}?engine={engine}&autoplay=1")
                for seek, past in ((None, 1.0), (6.5, 9.0), (14.5, 17.0)):  # joins at 8 s and 16 s
                    if seek is not None:
                        page.evaluate(f"() => {{ document.querySelector('video').currentTime = {seek}; }}")
                    try:
                        page.wait_for_function(
                            f"() => {{ const v = document.querySelector('video'); "
                            f"return v && !v.paused && v.currentTime > {past}; }}", timeout=20_000)
                    except sync_api.TimeoutError:
                        raise AssertionError(f"{engine}: stuck before {past}s: {page.evaluate(STATE)} {errors}")
                state = page.evaluate(STATE)
                assert state["engine"] == engine and not state["error"] and not errors, (state, errors)
                page.close()
        finally:
            context.close()
