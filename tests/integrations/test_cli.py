"""`abr upload`, `abr assets ls`, `abr watch` against a running API and worker, with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from cli.upload import _state_key
from tests.conftest import REPO_ROOT
from tests.helpers import TEST_KEY
from tests.integrations.conftest import TUS


def _abr(server, *args: str, key: str = TEST_KEY, state_dir=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, ABR_API_URL=server.url, ABR_API_KEY=key)
    if state_dir is not None:
        env["ABR_STATE_DIR"] = str(state_dir)
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_upload_wait_ls_and_watch(server, clip, tmp_path):
    r = _abr(server, "upload", str(clip), "--wait", "--codecs", "h264", state_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    asset_id = r.stdout.strip()
    assert "100.0%" in r.stderr and "ready" in r.stderr
    assert server.client.get(f"{server.url}/v1/assets/{asset_id}").json()["status"] == "ready"
    ls = _abr(server, "assets", "ls")
    assert ls.returncode == 0 and asset_id in ls.stdout
    assert _abr(server, "watch", asset_id).returncode == 0
    assert json.loads((tmp_path / "uploads.json").read_text()) == {}  # finished uploads are forgotten


def test_upload_resumes_a_remembered_upload(server, clip, tmp_path):
    data = clip.read_bytes()
    up = server.direct_upload()
    location = httpx.post(up["url"], headers={**TUS, "Upload-Length": str(len(data))}).headers["location"]
    half = len(data) // 2
    httpx.patch(location, content=data[:half], headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    # what an interrupted run leaves behind
    (tmp_path / "uploads.json").write_text(json.dumps({_state_key(clip, server.url): {
        "id": up["id"], "tus_url": location}}))
    r = _abr(server, "upload", str(clip), state_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"resuming upload {up['id']} at {half}" in r.stderr
    done = server.client.get(f"{server.url}/v1/uploads/{up['id']}").json()
    assert done["status"] == "complete" and r.stdout.strip() == done["asset_id"]


def test_exit_codes(server, tmp_path):
    assert _abr(server, "upload").returncode == 2  # usage
    assert _abr(server, "upload", str(tmp_path / "missing.mp4")).returncode == 2
    assert _abr(server, "assets", "ls", key="wrong").returncode == 3
    assert _abr(server, "watch", "as_doesnotexist").returncode == 4
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not media at all" * 100)
    r = _abr(server, "upload", str(junk), state_dir=tmp_path)
    assert r.returncode == 1 and "errored" in r.stderr
    env_url = dict(os.environ, ABR_API_URL="http://127.0.0.1:9", ABR_API_KEY=TEST_KEY)
    r = subprocess.run([sys.executable, "-m", "cli.main", "assets", "ls"], env=env_url, cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 5
