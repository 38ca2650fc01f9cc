"""`/` (dashboard), `/player/{playback_id}` and `/static/…`: status codes, caching, security headers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from player import vendor
from player.site import Site
from tests.helpers import app_client
from tests.origin.fabricate import fabricate


@pytest.fixture
def client(tmp_path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as client:
        client.headers.pop("Authorization")  # pages and their files need no API key
        yield client


def _config(html: str) -> dict:
    return json.loads(re.search(r'<script id="abr-config" type="application/json">(.*?)</script>', html).group(1))


def test_dashboard_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text):
        assert client.get(url).status_code == 200, url
    assert _config(r.text)["engines"]["hls"]["version"] == "1.7.4"


def test_player_page_for_public_and_signed_ids(client):
    ctx = client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    for pid in (made.public_id, made.signed_id):
        r = client.get(f"/player/{pid}")
        assert r.status_code == 200
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors *" in csp and "connect-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "x-frame-options" not in r.headers
        config = _config(r.text)
        assert config["playbackId"] == pid
        locked = vendor.load_lock()
        assert config["engines"]["dash"]["integrity"] == locked[vendor.ENGINE_FILES["dash"]].integrity


@pytest.mark.parametrize("pid", ["nosuchplaybackid", "UPPER", "a" * 41, "with-dash"])
def test_unknown_playback_id_is_a_404_page(client, pid):
    r = client.get(f"/player/{pid}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html") and "Video not found" in r.text
    assert "<script>" not in r.text


def test_deleted_asset_player_is_gone(client):
    ctx = client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    from core.db.models import Asset
    from sqlmodel import Session

    with Session(ctx.engine) as s:
        s.delete(s.get(Asset, made.asset_id))
        s.commit()
    assert client.get(f"/player/{made.public_id}").status_code == 404


def test_static_caching(client):
    site = Site()
    file = site.get("player.js")
    versioned = client.get(f"/static/player.js?v={file.version}")
    assert versioned.status_code == 200 and versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert versioned.headers["content-type"].startswith("text/javascript")
    assert versioned.headers["access-control-allow-origin"] == "*"
    assert client.get("/static/player.js").headers["cache-control"] == "no-cache"
    assert client.get("/static/player.js?v=stale").headers["cache-control"] == "no-cache"
    etag = versioned.headers["etag"]
    again = client.get("/static/player.js", headers={"If-None-Match": etag, "Accept-Encoding": "gzip"})
    assert again.status_code == 304 and not again.content


def test_static_gzip_and_head(client):
    name = f"vendor/{vendor.ENGINE_FILES['hls']}"
    raw = Site().get(name).data
    r = client.get(f"/static/{name}", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.content == raw  # httpx decodes it
    assert r.headers["etag"].endswith('-gzip"')
    plain = client.get(f"/static/{name}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == raw
    head = client.head(f"/static/{name}", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.headers["content-length"] == str(len(raw)) and not head.content


@pytest.mark.parametrize("path", ["/static/../pyproject.toml", "/static/vendor/../vendor.py", "/static/player.html",
                                  "/static/vendor/nothere.js", "/static/%2e%2e/vendor.py", "/static/"])
def test_static_refuses_other_paths(client, path):
    assert client.get(path).status_code == 404


def test_a_tampered_library_is_not_served(client, tmp_path):
    root = tmp_path / "player"
    shutil.copytree(Path(vendor.__file__).parent, root, ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    target = root / "vendor" / vendor.ENGINE_FILES["shaka"]
    target.write_bytes(target.read_bytes() + b"\n// injected")
    client.app.state.ctx.extra["player_site"] = Site(root)
    r = client.get(f"/static/vendor/{vendor.ENGINE_FILES['shaka']}")
    assert r.status_code == 500 and r.json()["error"]["code"] == "player_library_mismatch"
    assert r.headers["cache-control"] == "no-store"
