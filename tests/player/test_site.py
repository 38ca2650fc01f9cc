"""Static files, hashed URLs and page templates of the player and dashboard."""

from __future__ import annotations

import json
import re

from player.site import Site, escape_html, inline_json


def test_names_outside_the_allowed_set_are_not_served():
    site = Site()
    assert site.get("player.js") is not None
    assert site.get("vendor/hls.min.js") is not None
    assert site.get("vendor/hls.js.LICENSE.txt") is not None
    for name in ["../vendor.py", "vendor/../site.py", "dashboard.html", "player.html", "/etc/passwd",
                 "vendor/evil.js", "__init__.py", "vendor/../../pyproject.toml", "PLAYER.JS", ""]:
        assert site.get(name) is None, name


def test_url_names_the_content():
    site = Site()
    url = site.url("player.js")
    version = site.get("player.js").version
    assert url == f"/static/player.js?v={version}" and re.fullmatch(r"[0-9a-f]{16}", version)


def test_engines_carry_sri_hashes():
    engines = Site().engines()
    assert set(engines) == {"hls", "dash", "shaka"}
    for engine in engines.values():
        assert engine["integrity"].startswith("sha384-") and engine["src"].startswith("/static/vendor/")


def test_render_fills_placeholders_safely():
    html = Site().render("player.html", config={"playbackId": "abc", "evil": "</script><script>alert(1)"})
    assert "{{" not in html and "</script><script>alert(1)" not in html
    config = json.loads(re.search(r'<script id="abr-config" type="application/json">(.*?)</script>', html).group(1))
    assert config["evil"] == "</script><script>alert(1)"
    assert inline_json("<!--&") == '"\\u003c!--\\u0026"'
    assert escape_html('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"
