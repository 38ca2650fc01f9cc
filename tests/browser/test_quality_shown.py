"""The dashboard shows each rendition's measured VMAF (per-title ladder), and a dash where none was measured."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import open_context
from tests.media_fixtures import make_clip

pytestmark = pytest.mark.timeout(180)


def test_asset_page_shows_measured_vmaf(server, browser, clips):
    clip = make_clip(clips / "quality.mp4", duration=4, width=320, height=180, fps=30)
    created = server.upload(clip, {"ladder": "auto", "segment_duration": 2})
    asset = server.wait_ready(created["id"])
    video = next(r for r in asset["renditions"] if r["codec"] == "h264")
    q = video["quality"]
    assert q is not None and q["samples"] == 2 and 0 <= q["vmaf_p5"] <= q["vmaf_mean"] <= 100

    ctx = open_context(browser, key=server.key)
    page = ctx.new_page()
    page.goto(f"{server.url}/#/assets/{asset['id']}")
    row = page.locator("table.renditions tbody tr", has_text=video["id"])
    row.wait_for()
    cell = row.locator("td.quality")
    assert cell.inner_text().replace("\u00a0", " ") == f"VMAF {q['vmaf_mean']:.1f} · p5 {q['vmaf_p5']:.1f}"
    assert re.search(r"\(2 samples\)$", cell.get_attribute("title"))
    audio = page.locator("table.renditions tbody tr", has_text="audio").locator("td.quality")
    assert audio.inner_text() == "–"
    ctx.close()
