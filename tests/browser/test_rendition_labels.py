"""Rungs are labelled by their short side everywhere, as their ids are (`h264-272p` is 272x640 portrait)."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import open_context

pytestmark = pytest.mark.timeout(120)

PORTRAIT = {
    "id": "as_portrait0000000000", "status": "ready", "playable": True, "progress": 100.0, "duration": 6.0,
    "source": {"video": {"display_width": 272, "display_height": 640, "codec": "h264"}, "audio": None},
    "renditions": [{"id": "h264-272p", "codec": "h264", "width": 272, "height": 640, "bitrate": 514_000,
                    "frame_rate": 30.0, "status": "ready"}],
    "playback_ids": [{"id": "pb_portrait0000000000", "policy": "signed"}], "playback": None, "error": None,
    "passthrough": "portrait phone clip", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
}


def test_dashboard_summary_names_a_portrait_rung_by_its_short_side(server, browser):
    ctx = open_context(browser, key=server.key)
    page = ctx.new_page()
    # Only the list is answered by the test: the label is computed in the page from these fields.
    page.route(re.compile(r"/v1/assets\?limit="), lambda route: route.fulfill(json={"data": [PORTRAIT], "count": 1}))
    page.goto(server.url + "/")
    facts = page.locator(f".asset-row[data-id='{PORTRAIT['id']}'] .asset-facts")
    facts.wait_for()
    assert "272p · H.264" in facts.inner_text()  # was "640p"
    ctx.close()
