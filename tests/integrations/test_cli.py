"""`abr upload`, `abr assets ls`, `abr watch` against a running API and worker, with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

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
    asset_id = r.stdout.strip()  # stdout stays the asset id alone: scripts read it
    assert "100.0%" in r.stderr and "ready" in r.stderr
    asset = server.client.get(f"{server.url}/v1/assets/{asset_id}").json()
    assert asset["status"] == "ready" and asset["name"] == clip.name
    pid = asset["playback_ids"][0]["id"]
    # where it plays, printed when it is done
    assert f"player  {server.url}/player/{pid}" in r.stderr
    assert f"HLS     {asset['playback']['hls']}" in r.stderr and f"DASH    {asset['playback']['dash']}" in r.stderr
    ls = _abr(server, "assets", "ls")
    line = next(x for x in ls.stdout.splitlines() if x.startswith(asset_id))
    assert ls.returncode == 0 and clip.name in line and ls.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"]
    found = _abr(server, "assets", "ls", "--search", clip.stem.upper())
    assert asset_id in found.stdout
    assert asset_id not in _abr(server, "assets", "ls", "--search", "no-such-name").stdout
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


def _client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABR_")}
    env.update(extra)
    return env


def test_token_asks_the_api_it_is_pointed_at(server, tmp_path):
    pid = server.client.post(f"{server.url}/v1/live-streams", json={"playback_policy": "signed"}).json()[
        "playback_ids"][0]["id"]
    # ABR_URL (or --url) and ABR_API_KEY: no data dir, no signing key, any port
    r = subprocess.run([sys.executable, "-m", "cli.main", "token", pid, "--expires-in", "600"],
                       env=_client_env(ABR_URL=server.url, ABR_API_KEY=TEST_KEY, PYTHONPATH=str(REPO_ROOT)),
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert f"{server.url}/play/{pid}/master.m3u8?token={token}" in r.stderr
    assert httpx.get(f"{server.url}/play/{pid}/master.m3u8", params={"token": token}).status_code != 403
    assert httpx.get(f"{server.url}/play/{pid}/master.m3u8").status_code == 403
    assert not (tmp_path / "data").exists()  # it used to create ./data/abr.sqlite wherever it ran


@pytest.mark.parametrize(("args", "code", "words"), [
    pytest.param(["--url", "http://127.0.0.1:9"], 5, "cannot reach the API at http://127.0.0.1:9", id="no-server"),
    pytest.param(["--key", "wrong"], 3, "ABR_API_KEY", id="wrong-key"),
    pytest.param([], 4, "no playback id", id="unknown-id"),
])
def test_token_fails_in_one_line(server, tmp_path, args, code, words):
    url = [] if "--url" in args else ["--url", server.url]
    key = [] if "--key" in args else ["--key", TEST_KEY]
    r = subprocess.run([sys.executable, "-m", "cli.main", "token", "pb_missing", *url, *key, *args],
                       env=_client_env(PYTHONPATH=str(REPO_ROOT)), cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == code
    assert len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
    assert r.stdout == "" and not (tmp_path / "data").exists()
