"""An encrypted live stream end to end: a real RTMP push, CENC live segments, the key behind the token,
an encrypted recording under the same key, and no key material in any log line or API response."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from core.media.encryption import b64url
from core.media.ffmpeg import find_ffmpeg
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.live.conftest import kill, push

pytestmark = pytest.mark.timeout(150)


def senc_ivs(data: bytes) -> list[bytes]:
    """The per-sample IVs of every `senc` box of a CMAF segment (8-byte IVs, as ffmpeg writes them)."""
    found: list[bytes] = []

    def walk(start: int, end: int) -> None:
        at = start
        while at + 8 <= end:
            size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
            if size < 8:
                return
            if kind in (b"moof", b"traf"):
                walk(at + 8, at + size)
            elif kind == b"senc":
                flags, count, p = int.from_bytes(data[at + 9:at + 12], "big"), int.from_bytes(data[at + 12:at + 16], "big"), at + 16
                for _ in range(count):
                    found.append(data[p:p + 8])
                    p += 8
                    if flags & 2:  # subsamples
                        p += 2 + 6 * int.from_bytes(data[p:p + 2], "big")
            at += size

    walk(0, len(data))
    return found


def _decodes(path, key: bytes | None) -> int:
    """Frames an independent ffmpeg decodes from `path` (-xerror: the first decode error fails it); -1 on failure."""
    argv = [find_ffmpeg(), "-hide_banner", "-v", "error", "-xerror"]
    argv += ["-decryption_key", key.hex()] if key else []
    run = subprocess.run(argv + ["-i", str(path), "-map", "0:v:0", "-f", "framecrc", "-"], capture_output=True,
                         timeout=30)
    return -1 if run.returncode else sum(1 for line in run.stdout.splitlines() if line and not line.startswith(b"#"))


def _poll(get, ok, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        got = get()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


def test_encrypted_live_stream(live_stack, tmp_path):
    c = live_stack.client
    stream = live_stack.create(playback_policy="encrypted", segment_duration=1, record=True,
                               ladder=[{"height": 144, "bitrate": 200_000}])
    assert stream["playback_ids"][0]["policy"] == "encrypted"
    pid = stream["playback_ids"][0]["id"]
    publisher = push(f"{live_stack.rtmp}/{stream['stream_key']}", seconds=30, size="256x144", fps=15,
                     log=tmp_path / "push.log")
    try:
        live_stack.wait(stream["id"], ("active",), timeout=40)
        token = c.post("/v1/playback-tokens", json={"playback_id": pid, "expires_in": 600}).json()["token"]
        play = f"{live_stack.api}/play/{pid}"
        assert httpx.get(f"{play}/master.m3u8").status_code == 403  # signed: nothing without a token
        master = _poll(lambda: httpx.get(f"{play}/master.m3u8?token={token}"), lambda r: r.status_code == 200)
        assert master.status_code == 200, master.text
        video = re.search(r"^([\w-]+)/index\.m3u8", master.text, re.M).group(1)
        media = httpx.get(f"{play}/{video}/index.m3u8?token={token}").text

        # The key: 403 without a token, the 16 bytes with one; the ClearKey licence gives the same.
        assert httpx.get(f"{play}/keys/identity").status_code == 403
        assert httpx.post(f"{play}/keys/clearkey", json={"kids": []}).status_code == 403
        raw = httpx.get(f"{play}/keys/identity?token={token}")
        assert raw.status_code == 200 and raw.headers["cache-control"] == "private, no-store"
        key = raw.content
        assert len(key) == 16
        licence = httpx.post(f"{play}/keys/clearkey?token={token}", json={"kids": []}).json()
        (jwk,) = licence["keys"]
        assert base64.urlsafe_b64decode(jwk["k"] + "==") == key
        kid = base64.urlsafe_b64decode(jwk["kid"] + "==")

        # The playlists carry the VOD key tags, the MPD the ContentProtection, both naming this KID.
        kid_b64 = base64.b64encode(kid).decode()
        assert (f'#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,{kid_b64}",'
                f'KEYFORMAT="org.w3.clearkey"') in media
        assert f'#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="../keys/identity?token={token}",KEYFORMAT="identity"' in media
        mpd = httpx.get(f"{play}/manifest.mpd?token={token}").text
        validate_mpd(mpd)
        kid_uuid = "-".join((kid.hex()[:8], kid.hex()[8:12], kid.hex()[12:16], kid.hex()[16:20], kid.hex()[20:]))
        assert f'cenc:default_KID="{kid_uuid}"' in mpd and "e2719d58-a985-b3c9-781a-b030af78d30e" in mpd
        assert f"<dashif:Laurl>{play}/keys/clearkey?token={token}</dashif:Laurl>" in mpd  # absolute

        # A segment fetched directly: an independent ffmpeg cannot decode it; with the key it can.
        first = re.search(r"^(\d+\.m4s)", media, re.M).group(1)
        init = httpx.get(f"{play}/{video}/init.mp4?token={token}").content
        segment = httpx.get(f"{play}/{video}/{first}?token={token}").content
        (tmp_path / "seg.mp4").write_bytes(init + segment)
        assert _decodes(tmp_path / "seg.mp4", None) == -1
        assert _decodes(tmp_path / "seg.mp4", key) >= 10  # 1 s at 15 fps
        # Random starting IVs per track: video and audio never share an AES-CTR keystream.
        audio = httpx.get(f"{play}/audio/{first}?token={token}").content
        assert senc_ivs(segment) and senc_ivs(audio) and senc_ivs(segment)[0] != senc_ivs(audio)[0]

        # The live thumbnail is cut from a decrypted segment (in the worker's process).
        thumb = _poll(lambda: httpx.get(f"{play}/thumbnail.jpg?token={token}"), lambda r: r.status_code == 200)
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    finally:
        kill(publisher)
    c.post(f"/v1/live-streams/{stream['id']}/stop")
    ended = live_stack.wait(stream["id"], ("ended",), timeout=40)

    # The recording: an encrypted asset under the same key, with its images.
    asset = c.get(f"/v1/assets/{ended['recording_asset_id']}").json()
    rec = asset["playback_ids"][0]
    assert rec["policy"] == "encrypted"
    rec_token = c.post("/v1/playback-tokens", json={"playback_id": rec["id"], "expires_in": 600}).json()["token"]
    rec_play = f"{live_stack.api}/play/{rec['id']}"
    assert httpx.get(f"{rec_play}/keys/identity").status_code == 403
    assert httpx.get(f"{rec_play}/keys/identity?token={rec_token}").content == key
    assert f'cenc:default_KID="{kid_uuid}"' in httpx.get(f"{rec_play}/manifest.mpd?token={rec_token}").text
    image = httpx.get(f"{rec_play}/thumbnail.jpg?time=1&width=128&token={rec_token}")
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8", image.text
    assert httpx.get(f"{rec_play}/storyboard.vtt?token={rec_token}").status_code == 200

    # No key material anywhere but the key endpoint: API answers, events, both logs (DEBUG).
    forms = {key.hex(), key.hex().upper(), base64.b64encode(key).decode(), base64.b64encode(key).decode().rstrip("="),
             b64url(key)}
    texts = {
        "live stream": json.dumps(c.get(f"/v1/live-streams/{stream['id']}").json()),
        "live list": json.dumps(c.get("/v1/live-streams?limit=100").json()),
        "asset": json.dumps(asset),
        "asset list": json.dumps(c.get("/v1/assets?limit=100").json()),
        "master": master.text, "media": media, "mpd": mpd,
        "worker log": live_stack.log.read_text(errors="replace"),
        "api log": live_stack.api_log.read_text(errors="replace"),
    }
    engine = create_engine(live_stack.database_url)
    with engine.connect() as db:
        texts["stored rows"] = json.dumps([list(map(str, row)) for table in ("live_streams", "assets", "playback_ids")
                                           for row in db.execute(text(f"SELECT * FROM {table}"))])  # noqa: S608
    engine.dispose()
    assert "encryption_key=<redacted>" in texts["worker log"]  # the live encoder ran, its argv logged
    for where, body in texts.items():
        leaked = [f for f in forms if f in body]
        assert not leaked, f"key material in the {where}"
