"""Encrypted playback end to end: CENC segments, ClearKey ContentProtection, the key behind the token."""

from __future__ import annotations

import base64
import io
import json
import logging
import time

import av
import pytest

from core.media.encryption import b64url
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.pipeline.conftest import _pipeline


@pytest.fixture
def debug_pipeline(tmp_path):
    """The embedded pipeline with the worker logging at DEBUG (its log file) and the API's DEBUG lines in caplog."""
    yield from _pipeline({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"), "ABR_LOG_LEVEL": "DEBUG"},
                         tmp_path)


def _token(client, playback_id: str) -> str:
    r = client.post("/v1/playback-tokens", json={"playback_id": playback_id, "expires_in": 600})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _frames(data: bytes, key: bytes | None = None) -> list[bytes]:
    options = {"decryption_key": key.hex()} if key else {}
    with av.open(io.BytesIO(data), options=options) as container:
        return [bytes(f.planes[0]) for f in container.decode(video=0)]


def test_encrypted_asset(debug_pipeline, clips, caplog):
    pipeline = debug_pipeline
    caplog.set_level(logging.DEBUG)
    created = pipeline.upload(clips("enc.mp4", duration=3, width=160, height=96),
                              {"segment_duration": 2, "playback_policy": "encrypted"})
    assert created["playback_ids"][0]["policy"] == "encrypted"
    asset = pipeline.wait(created["id"])
    assert asset["status"] == "ready", asset["error"]
    pid = asset["playback_ids"][0]["id"]
    play = f"/play/{pid}"
    c = pipeline.client

    # Signed: nothing without a token.
    assert c.get(f"{play}/manifest.mpd").status_code == 403
    assert c.post(f"{play}/keys/clearkey", json={"kids": []}).status_code == 403
    t1, t2 = _token(c, pid), _token(c, pid)
    mpd = c.get(f"{play}/manifest.mpd?token={t1}").text
    validate_mpd(mpd)
    p = pipeline.presentation(asset["id"])
    kid = p.protection.default_kid
    assert f'cenc:default_KID="{kid}"' in mpd and "e2719d58-a985-b3c9-781a-b030af78d30e" in mpd
    # Absolute, under the request's public URL: players do not resolve a Laurl against the MPD's URL.
    assert f"<dashif:Laurl>http://testserver{play}/keys/clearkey?token={t1}</dashif:Laurl>" in mpd
    other = c.get(f"{play}/manifest.mpd?token={t1}", headers={"Host": "cdn.example"}).text
    assert f"<dashif:Laurl>http://cdn.example{play}/keys/clearkey?token={t1}</dashif:Laurl>" in other
    # HLS: the same CENC segments as SAMPLE-AES-CTR, a ClearKey (KID only) and an identity key per playlist.
    assert c.get(f"{play}/master.m3u8?token={t1}").status_code == 200
    video0 = p.video_tracks[0]
    media = c.get(f"{play}/{video0.id}/index.m3u8?token={t1}").text
    kid_b64 = base64.b64encode(bytes.fromhex(kid.replace("-", ""))).decode()
    assert (f'#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,{kid_b64}",KEYFORMAT="org.w3.clearkey"'
            in media)
    assert f'#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="../keys/identity?token={t1}",KEYFORMAT="identity"' in media
    assert c.get(f"{play}/keys/identity").status_code == 403

    # The licence: only with a token, never cached, the key for the KID the MPD names.
    kid_bytes = bytes.fromhex(kid.replace("-", ""))
    got = c.post(f"{play}/keys/clearkey?token={t2}", json={"kids": [b64url(kid_bytes)], "type": "temporary"})
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "private, no-store"
    (jwk,) = got.json()["keys"]
    key = base64.urlsafe_b64decode(jwk["k"] + "==")
    assert jwk["kid"] == b64url(kid_bytes) and len(key) == 16
    assert c.post(f"{play}/keys/clearkey?token={t2}", json={"kids": [b64url(bytes(16))]}).status_code == 400
    raw = c.get(f"{play}/keys/identity?token={t2}")  # HLS identity: the same key, raw, same rules
    assert raw.status_code == 200 and raw.content == key and raw.headers["cache-control"] == "private, no-store"

    # One set of segment files for every viewer: the same bytes under two tokens.
    video = p.video_tracks[0]
    init = c.get(f"{play}/{video.init_uri}?token={t1}").content
    seg1 = c.get(f"{play}/{video.segment_uri(1)}?token={t1}")
    seg2 = c.get(f"{play}/{video.segment_uri(1)}?token={t2}")
    assert seg1.content == seg2.content and "immutable" in seg1.headers["cache-control"]
    # An independent decoder cannot decode a segment fetched directly; with the licence's key it can.
    with pytest.raises(av.FFmpegError):
        _frames(init + seg1.content)
    assert len(_frames(init + seg1.content, key)) > 10

    # Images: cut from the rendition decrypted in process (no key on the command line), behind the token.
    assert c.get(f"{play}/thumbnail.jpg?time=1").status_code == 403
    thumb = c.get(f"{play}/thumbnail.jpg?time=1&width=160&token={t1}")
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8", thumb.text
    with av.open(io.BytesIO(thumb.content)) as picture:
        frame = next(picture.decode(video=0))
        assert (frame.width, frame.height) == (160, 96)
        # A decrypted picture, not decoder garbage: testsrc2 is colourful, its luma far from flat.
        luma = bytes(frame.planes[0])
        assert max(luma) - min(luma) > 100
    vtt = c.get(f"{play}/storyboard.vtt?token={t1}")
    assert vtt.status_code == 200 and "storyboard" in vtt.text
    assert c.get(f"{play}/animated.webp?start=0&end=2&token={t1}").status_code == 200

    # A dub added later is encrypted under the asset's key too (the MPD names that key for every set).
    from tests.media_fixtures import make_multi_audio_clip

    dub = make_multi_audio_clip(pipeline.log.parent / "enc-dub.mp4", duration=2, tracks=(("ger", "x", 660),))
    with open(dub, "rb") as fh:
        got = c.post(f"/v1/assets/{asset['id']}/audio-tracks", files={"file": ("dub.mp4", fh)}, data={"language": "de"})
    assert got.status_code == 202, got.text
    status, deadline = None, time.monotonic() + 120
    while status not in ("ready", "errored") and time.monotonic() < deadline:
        renditions = c.get(f"/v1/assets/{asset['id']}").json()["renditions"]
        status = {r["id"]: r["status"] for r in renditions}.get("audio-2")
        time.sleep(0.3)
    assert status == "ready", pipeline.log.read_text()[-3000:]
    dub_track = next(t for t in pipeline.presentation(asset["id"]).tracks if t.id == "audio-2")
    dub_init = c.get(f"{play}/{dub_track.init_uri}?token={t1}").content
    dub_seg = c.get(f"{play}/{dub_track.segment_uri(1)}?token={t1}").content
    assert b"tenc" in dub_init and bytes.fromhex(kid.replace("-", "")) in dub_init  # the asset's KID
    with pytest.raises(av.FFmpegError):
        with av.open(io.BytesIO(dub_init + dub_seg)) as clear:
            list(clear.decode(audio=0))
    with av.open(io.BytesIO(dub_init + dub_seg), options={"decryption_key": key.hex()}) as dec:
        assert sum(f.samples for f in dec.decode(audio=0)) > 40_000

    # No key material anywhere but the key endpoint: hex, base64, base64url, in the API's answers, the
    # manifests, the stored presentation, the worker's DEBUG log and the API's DEBUG log lines.
    forms = {key.hex(), key.hex().upper(), base64.b64encode(key).decode(), base64.b64encode(key).decode().rstrip("="),
             jwk["k"]}
    log = pipeline.log.read_text()
    assert " DEBUG " in log and "encryption_key=<redacted>" in log
    for text in (json.dumps(c.get(f"/v1/assets/{asset['id']}").json()), json.dumps(c.get("/v1/assets").json()),
                 mpd, media, log, caplog.text, vtt.text,
                 pipeline.storage.get_bytes(f"media/{asset['id']}/presentation.json").decode()):
        assert not [f for f in forms if f in text]


def test_encrypted_policy_refuses_vp8_and_mp4_download(pipeline, clips):
    src = clips("enc-bad.mp4", duration=1, width=160, height=96)
    for settings in ({"playback_policy": "encrypted", "codecs": ["h264", "vp8"]},
                     {"playback_policy": "encrypted", "mp4_support": True}):
        with open(src, "rb") as fh:
            got = pipeline.client.post("/v1/assets", files={"file": ("a.mp4", fh)}, data={"settings": json.dumps(settings)})
        assert got.status_code == 422, got.text
