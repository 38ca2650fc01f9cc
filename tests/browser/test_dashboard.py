"""The dashboard at `/`: sign in, upload with a real progress bar, live status, the asset page, delete."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PHONE, open_context, screenshot, wait_playing
from tests.media_fixtures import make_clip

pytestmark = pytest.mark.timeout(180)


def test_upload_through_the_dashboard_reaches_ready_and_plays(server, media, browser, clips):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    clip = make_clip(clips / "dashboard-upload.mp4", duration=6, width=640, height=360, fps=30)
    ctx = open_context(browser)
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    page.goto(server.url + "/")
    page.fill("#api-key", "abr_not_a_key")
    page.click("button[type=submit]")
    page.wait_for_selector(".form-error:has-text('not accepted')")
    page.fill("#api-key", server.key)
    page.click("button[type=submit]")
    page.wait_for_selector(f".asset-row[data-id='{media['main'].id}']")

    # Throttle uploads so that the bar shows bytes really being sent (XHR upload progress).
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                   "uploadThroughput": clip.stat().st_size / 2.5})
    page.set_input_files("#file-input", str(clip))
    page.wait_for_function("() => [...document.querySelectorAll('.upload [role=progressbar]')]"
                           ".some((b) => { const v = +b.getAttribute('aria-valuenow'); return v > 0 && v < 100; })")
    screenshot(page, "dashboard-uploading-desktop")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                   "uploadThroughput": -1})
    page.wait_for_selector(".upload.done", timeout=30_000)

    row = page.locator(".asset-row", has_text=clip.name)
    row.wait_for()
    asset_id = row.get_attribute("data-id")
    try:  # best effort: a picture of the live progress, if the encode is slow enough to catch it
        page.wait_for_selector(f".asset-row[data-id='{asset_id}'][data-status='processing'] .progress-track",
                               timeout=10_000)
        screenshot(page, "dashboard-processing-desktop")
    except PlaywrightTimeout:
        pass
    # Live status through the event stream, not a page reload.
    page.wait_for_selector(f".asset-row[data-id='{asset_id}'][data-status='ready']", timeout=60_000)
    assert any(url.endswith(f"/v1/assets/{asset_id}/events") for url in requests)
    screenshot(page, "dashboard-list-desktop", full_page=True)

    row.click()
    page.wait_for_url(re.compile(f"#/assets/{asset_id}$"))
    page.locator("iframe#player-frame").wait_for()
    rows = page.locator("table.renditions tbody tr")
    assert rows.count() == 3  # 360p, 240p, audio
    assert page.input_value("#url-hls").endswith("/master.m3u8")
    assert page.input_value("#url-dash").endswith("/manifest.mpd")
    page.frame_locator("#player-frame").locator("#bigplay").click()
    player = next(f for f in page.frames if "/player/" in f.url)
    wait_playing(player, past=2.0)
    player.evaluate("() => document.querySelector('video').pause()")
    screenshot(page, "dashboard-asset-desktop", full_page=True)

    # Phone-sized screen: same data, one column.
    phone = open_context(browser, viewport=PHONE, phone=True, key=server.key)
    small = phone.new_page()
    small.goto(server.url + "/")
    small.locator(f".asset-row[data-id='{asset_id}']").wait_for()
    assert small.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(small, "dashboard-list-phone", full_page=True)
    small.goto(f"{server.url}/#/assets/{asset_id}")
    small.locator("iframe#player-frame").wait_for()
    small.frame_locator("#player-frame").locator("#bigplay").wait_for()
    next(f for f in small.frames if "/player/" in f.url).wait_for_function(
        "() => document.querySelector('video').readyState >= 2")  # the first frame is on screen
    assert small.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(small, "dashboard-asset-phone", full_page=True)
    phone.close()

    # Delete from the asset page.
    page.once("dialog", lambda d: d.accept())
    page.click("#delete")
    page.wait_for_url(re.compile(r"#/$"))
    page.locator(f".asset-row[data-id='{media['main'].id}']").wait_for()
    assert page.locator(f".asset-row[data-id='{asset_id}']").count() == 0
    assert server.client.get(f"/v1/assets/{asset_id}").status_code == 404
    ctx.close()


def test_signed_asset_page_plays_with_a_token(server, media, browser):
    ctx = open_context(browser, key=server.key)
    page = ctx.new_page()
    page.goto(f"{server.url}/#/assets/{media['signed'].id}")
    frame = page.locator("iframe#player-frame")
    frame.wait_for()
    assert "?token=" in frame.get_attribute("src")
    assert "?token=" in page.input_value("#url-hls")
    page.frame_locator("#player-frame").locator("#bigplay").click()
    wait_playing(next(f for f in page.frames if "/player/" in f.url), past=1.0)
    ctx.close()


def test_rejected_upload_shows_the_error_not_a_full_bar(server, browser, tmp_path):
    notes = tmp_path / "notes.mp4"  # named like a video, but text: the server probes it and answers 415
    notes.write_text("not a video\n" * 2000)
    ctx = open_context(browser, key=server.key)
    page = ctx.new_page()
    page.goto(server.url + "/")
    page.set_input_files("#file-input", str(notes))
    row = page.locator(".upload.failed", has_text="notes.mp4")
    row.wait_for(timeout=20_000)
    answer = server.client.post("/v1/assets", files={"file": ("notes.mp4", notes.read_bytes())},
                                data={"settings": '{"codecs":["h264"]}'})
    assert answer.status_code == 415, answer.text
    error = answer.json()["error"]
    assert row.locator(".upload-note").inner_text() == "Rejected"
    alert = row.locator("[role=alert]").inner_text()
    assert f"415 {error['code']}" in alert and error["message"] in alert
    assert row.locator("[role=progressbar], .progress-fill").count() == 0
    screenshot(page, "dashboard-upload-rejected")
    ctx.close()


def test_asset_list_shows_the_names_the_api_keeps_and_searches_them(server, media, browser):
    """Assets uploaded with curl or the CLI show their file names too (not only the dashboard's own uploads)."""
    ctx = open_context(browser)  # a fresh profile: no names remembered in this browser
    page = ctx.new_page()
    page.goto(server.url + "/")
    page.fill("#api-key", server.key)
    page.click("button[type=submit]")
    main, signed = media["main"].id, media["signed"].id
    page.locator(f".asset-row[data-id='{main}']", has_text="main.mp4").wait_for()
    page.locator(f".asset-row[data-id='{signed}']", has_text="signed.mp4").wait_for()

    page.fill("#asset-search", "signed")
    page.wait_for_function(f"() => !document.querySelector(\".asset-row[data-id='{main}']\")")
    assert page.locator(f".asset-row[data-id='{signed}']").count() == 1
    page.fill("#asset-search", "no-such-name")
    page.wait_for_selector(".empty:has-text('No assets match')")
    page.fill("#asset-search", "")
    page.locator(f".asset-row[data-id='{main}']").wait_for()
    ctx.close()
