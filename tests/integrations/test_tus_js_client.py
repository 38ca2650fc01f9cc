"""The real tus-js-client (pinned in tests/integrations/js, `npm ci` there) uploads to a direct-upload URL,
aborts part-way, resumes from its stored upload in a new process, and the asset reaches ready."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.integrations.conftest import TUS
from tests.media_fixtures import make_clip

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "tus-js-client").is_dir():
        pytest.skip("node or tests/integrations/js/node_modules missing: run `npm ci --prefix tests/integrations/js`")
    return node


def _run(node: str, *args: str) -> dict:
    r = subprocess.run([node, str(JS / "upload.js"), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_tus_js_client_aborts_resumes_and_completes(node, server, tmp_path):
    clip = make_clip(tmp_path / "js", duration=3.0, width=640, height=360)
    size = clip.stat().st_size
    store = tmp_path / "tus-urls.json"
    up = server.direct_upload(cors_origin="https://app.example", settings={"passthrough": "tus-js"})

    first = _run(node, "start", clip, up["url"], store, size // 3)
    assert first["aborted"] and first["url"] == up["url"]
    offset = int(httpx.head(first["url"], headers=TUS).headers["upload-offset"])
    assert 0 < offset < size
    assert server.client.get(f"{server.url}/v1/uploads/{up['id']}").json()["status"] == "uploading"

    second = _run(node, "resume", clip, up["url"], store)
    assert second["done"] and second["url"] == first["url"]  # the same upload, continued
    done = server.client.get(f"{server.url}/v1/uploads/{up['id']}").json()
    assert done["status"] == "complete", done
    asset = server.wait_asset(done["asset_id"])
    assert asset["status"] == "ready" and asset["passthrough"] == "tus-js"
    stored = Path(server.env["ABR_DATA_DIR"]) / "storage" / "sources" / asset["id"] / "original"
    assert stored.read_bytes() == clip.read_bytes()
