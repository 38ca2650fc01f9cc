"""The /play routes through the app (embedded defaults, local storage): every header rule."""

from __future__ import annotations

import dataclasses
import gzip
import os
import time

import pytest
from sqlmodel import Session

from api.origin import origin_service
from core.db.models import Asset
from core.layout import media_key
from core.services.playback import sign_token
from tests.core.media.manifests.conftest import build_presentation
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.origin.fabricate import fabricate, write_presentation

IMMUTABLE = "public, max-age=31536000, immutable"
LONG = "public, max-age=86400, stale-while-revalidate=3600"
SEGMENT = "h264-720p/00002.m4s"


def play(client, pid, path, **kwargs):
    return client.get(f"/play/{pid}/{path}", **kwargs)


@pytest.mark.parametrize(("path", "content_type", "cache_control"), [
    ("master.m3u8", "application/vnd.apple.mpegurl", LONG),
    ("manifest.mpd", "application/dash+xml", LONG),
    ("h264-720p/index.m3u8", "application/vnd.apple.mpegurl", LONG),
    ("h264-720p/init.mp4", "video/mp4", IMMUTABLE),
    ("h264-720p/00001.m4s", "video/mp4", IMMUTABLE),
    ("audio/init.mp4", "audio/mp4", IMMUTABLE),
    ("audio/00003.m4s", "audio/mp4", IMMUTABLE),
    ("vp8-360p/init.webm", "video/webm", IMMUTABLE),
    ("vp8-360p/00001.webm", "video/webm", IMMUTABLE),
])
def test_headers_per_request_class(origin_client, asset, path, content_type, cache_control):
    r = play(origin_client, asset.public_id, path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == content_type
    assert r.headers["cache-control"] == cache_control
    assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"')
    assert r.headers["last-modified"].endswith("GMT")
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "Content-Length, Content-Range, Date, ETag"
    if path in asset.files:
        assert r.content == asset.files[path]
    else:
        assert r.headers["vary"] == "Accept-Encoding"
    head = origin_client.head(f"/play/{asset.public_id}/{path}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == r.headers["content-length"]
    assert head.headers["etag"] == r.headers["etag"]


def test_manifests_render_the_presentation(origin_client, asset):
    master = play(origin_client, asset.public_id, "master.m3u8").text
    assert master.startswith("#EXTM3U") and "h264-720p/index.m3u8" in master and "vp8" not in master
    media = play(origin_client, asset.public_id, "h264-720p/index.m3u8").text
    assert "#EXT-X-ENDLIST" in media and "00001.m4s" in media
    validate_mpd(play(origin_client, asset.public_id, "manifest.mpd").text)
    assert play(origin_client, asset.public_id, "vp8-360p/index.m3u8").status_code == 404  # HLS has no VP8
    assert play(origin_client, asset.public_id, "h264-1080p/index.m3u8").status_code == 404


@pytest.mark.parametrize("path", ["master.m3u8", SEGMENT])
def test_conditional_requests(origin_client, asset, path):
    r = play(origin_client, asset.public_id, path)
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}, {"If-Modified-Since": modified}):
        again = play(origin_client, asset.public_id, path, headers=headers)
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag and again.headers["cache-control"] == r.headers["cache-control"]
    assert play(origin_client, asset.public_id, path, headers={"If-None-Match": '"nope"'}).status_code == 200
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert play(origin_client, asset.public_id, path, headers={"If-Modified-Since": old}).status_code == 200
    assert origin_client.head(f"/play/{asset.public_id}/{path}", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize(("header", "status", "content_range", "piece"), [
    ("bytes=0-99", 206, "bytes 0-99/3000", slice(0, 100)),
    ("bytes=-100", 206, "bytes 2900-2999/3000", slice(2900, 3000)),
    ("bytes=2990-", 206, "bytes 2990-2999/3000", slice(2990, 3000)),
    ("bytes=0-9,20-29", 200, None, slice(0, 3000)),  # multi-range: whole object
])
def test_segment_ranges(origin_client, asset, header, status, content_range, piece):
    r = play(origin_client, asset.public_id, SEGMENT, headers={"Range": header})
    assert r.status_code == status
    assert r.headers.get("content-range") == content_range
    assert r.content == asset.files[SEGMENT][piece]
    assert r.headers["content-length"] == str(len(r.content))
    assert r.headers["cache-control"] == IMMUTABLE


def test_unsatisfiable_range_and_if_range(origin_client, asset):
    r = play(origin_client, asset.public_id, SEGMENT, headers={"Range": "bytes=3000-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */3000" and r.headers["cache-control"] == "no-store"
    etag = play(origin_client, asset.public_id, SEGMENT).headers["etag"]
    assert play(origin_client, asset.public_id, SEGMENT,
                headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert play(origin_client, asset.public_id, SEGMENT,
                headers={"Range": "bytes=0-9", "If-Range": '"old"'}).status_code == 200
    head = origin_client.head(f"/play/{asset.public_id}/{SEGMENT}", headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.headers["content-length"] == "10"


def test_manifest_range(origin_client, asset):
    full = play(origin_client, asset.public_id, "master.m3u8", headers={"Accept-Encoding": "identity"})
    r = play(origin_client, asset.public_id, "master.m3u8", headers={"Accept-Encoding": "identity", "Range": "bytes=0-6"})
    assert r.status_code == 206 and r.content == b"#EXTM3U" == full.content[:7]


def test_gzip_only_when_asked(origin_client, asset):
    plain = play(origin_client, asset.public_id, "manifest.mpd", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    zipped = origin_client.get(f"/play/{asset.public_id}/manifest.mpd", headers={"Accept-Encoding": "gzip"},
                               extensions={})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    assert zipped.content == plain.content  # httpx decodes
    assert zipped.headers["etag"] != plain.headers["etag"]  # strong tags name exact bytes
    assert int(zipped.headers["content-length"]) < len(plain.content)
    with origin_client.stream("GET", f"/play/{asset.public_id}/manifest.mpd",
                              headers={"Accept-Encoding": "gzip"}) as raw:
        assert gzip.decompress(b"".join(raw.iter_raw())) == plain.content
    seg = play(origin_client, asset.public_id, SEGMENT, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in seg.headers  # media is never compressed


def test_cors_preflight(origin_client, asset):
    r = origin_client.options(f"/play/{asset.public_id}/{SEGMENT}", headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert r.headers["access-control-allow-headers"].lower() == "range"
    assert r.headers["access-control-max-age"] == "86400"
    error = play(origin_client, "nosuchid", "master.m3u8", headers={"Origin": "https://player.example"})
    assert error.status_code == 404 and error.headers["access-control-allow-origin"] == "*"
    api = origin_client.get("/healthz", headers={"Origin": "https://player.example"})
    assert "access-control-allow-origin" not in api.headers  # scoped to /play


@pytest.mark.parametrize(("query", "status", "present", "absent"), [
    ("codecs=vp8", 200, ["vp8-360p"], ["h264-720p", "h265-720p"]),
    ("max_height=360", 200, ["h264-360p", "vp8-360p"], ["h264-720p", "h265-720p"]),
    ("min_height=720&codecs=h264", 200, ["h264-720p"], ["h264-360p", "vp8"]),
    ("max_bitrate=900000", 200, ["h264-360p"], ["h264-720p", "vp8"]),
    ("max_height=100", 404, [], []),
    ("max_height=abc", 400, [], []),
    ("codecs=vp9", 400, [], []),  # not a family the project encodes
    ("codecs=av1", 404, [], []),  # a family, but not encoded for this asset
])
def test_filters_on_the_mpd(origin_client, asset, query, status, present, absent):
    r = play(origin_client, asset.public_id, f"manifest.mpd?{query}")
    assert r.status_code == status, r.text
    if status != 200:
        assert r.headers["cache-control"] == "no-store"
        return
    for name in present:
        assert name in r.text
    for name in absent:
        assert name not in r.text


def test_filters_on_the_master(origin_client, asset):
    r = play(origin_client, asset.public_id, "master.m3u8?max_height=360")
    assert "h264-360p/index.m3u8\n" in r.text and "h264-720p" not in r.text
    assert play(origin_client, asset.public_id, "master.m3u8?codecs=vp8").status_code == 404


def test_signed_playback(origin_client, asset):
    keys = origin_service(origin_client.app.state.ctx).keys  # made on first use: this test may run first
    token = sign_token(asset.signed_id, keys=keys, expires_at=int(time.time()) + 600)
    assert play(origin_client, asset.signed_id, "master.m3u8").status_code == 403
    r = play(origin_client, asset.signed_id, f"master.m3u8?token={token}")
    assert r.status_code == 200
    uris = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    assert uris and all(u.endswith(f"?token={token}") for u in uris)
    assert f'index.m3u8?token={token}"' in r.text  # the audio rendition's URI attribute
    max_age = int(r.headers["cache-control"].split("max-age=")[1])
    assert 590 <= max_age <= 600 and "stale" not in r.headers["cache-control"]
    mpd = play(origin_client, asset.signed_id, f"manifest.mpd?token={token}").text
    assert f"?token={token}" in mpd
    media = play(origin_client, asset.signed_id, f"h264-720p/index.m3u8?token={token}").text
    assert f"00001.m4s?token={token}" in media
    seg = play(origin_client, asset.signed_id, f"{SEGMENT}?token={token}")
    assert seg.status_code == 200 and seg.headers["cache-control"].endswith(", immutable")
    assert int(seg.headers["cache-control"].split("max-age=")[1].split(",")[0]) <= 600
    expired = sign_token(asset.signed_id, keys=keys, expires_at=int(time.time()) - 1)
    other = sign_token(asset.public_id, keys=keys, expires_at=int(time.time()) + 600)
    for bad in (expired, other, token[:-3] + "abc", "garbage", token + "x"):
        refused = play(origin_client, asset.signed_id, f"{SEGMENT}?token={bad}")
        assert refused.status_code == 403 and refused.headers["cache-control"] == "no-store"
    # public ids ignore tokens
    assert play(origin_client, asset.public_id, "master.m3u8?token=whatever").status_code == 200


@pytest.mark.parametrize("path", [
    "presentation.json", "original", "%2e%2e/%2e%2e/sources/x/original", "h264-720p/%2e%2e/presentation.json",
    "%252e%252e/presentation.json", "h264-720p%2f..%2f..%2fpresentation.json", "h264-720p%5cinit.mp4",
    "h264-720p/init.mp4%00", "..%2f..%2f..%2fetc%2fpasswd", "%2fetc%2fpasswd", "a" * 300,
])
def test_traversal_attempts(origin_client, asset, path):
    r = origin_client.get(f"/play/{asset.public_id}/{path}")
    assert r.status_code in (400, 404), (path, r.status_code)
    assert r.headers["cache-control"] == "no-store"
    assert b"never served" not in r.content and b"tracks" not in r.content


def test_symlink_inside_media_is_not_followed(origin_client, asset, tmp_path):
    storage = origin_client.app.state.ctx.storage
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"top secret")
    os.symlink(secret, storage.local_path(media_key(asset.asset_id, "h264-720p/00099.m4s")))
    r = play(origin_client, asset.public_id, "h264-720p/00099.m4s")
    assert r.status_code == 404 and b"secret" not in r.content


def test_unknown_and_deleted(origin_client):
    ctx = origin_client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    assert play(origin_client, made.public_id, SEGMENT).status_code == 200
    for pid in ("nosuchid", "UPPER", "a" * 41):
        r = play(origin_client, pid, "master.m3u8")
        assert r.status_code == 404 and r.headers["cache-control"] == "no-store"
    with Session(ctx.engine) as session:
        session.delete(session.get(Asset, made.asset_id))
        session.commit()
    ctx.extra["origin"].playbacks.ttl = 0  # stands in for waiting out the few-second TTL
    ctx.extra["origin"].playbacks._entries.clear()
    r = play(origin_client, made.public_id, SEGMENT)
    assert r.status_code == 404 and r.headers["cache-control"] == "no-store"
    ctx.extra["origin"].playbacks.ttl = 5.0


def test_publishing_presentation(origin_client):
    ctx = origin_client.app.state.ctx
    full = build_presentation()
    partial = dataclasses.replace(full, complete=False, tracks=[t for t in full.tracks if t.id != "h265-720p"])
    made = fabricate(ctx.engine, ctx.storage, presentation=partial)
    r = play(origin_client, made.public_id, "master.m3u8")
    assert r.headers["cache-control"] == "public, max-age=2" and "hvc1" not in r.text
    assert play(origin_client, made.public_id, "h264-720p/index.m3u8").headers["cache-control"] == LONG
    write_presentation(ctx.storage, made.asset_id, full)
    time.sleep(0.6)  # the in-process cache re-stats a publishing presentation twice a second
    r = play(origin_client, made.public_id, "master.m3u8")
    assert "hvc1" in r.text and r.headers["cache-control"] == LONG


def test_asset_without_media_yet(origin_client, asset):
    ctx = origin_client.app.state.ctx
    made = fabricate(ctx.engine, ctx.storage)
    ctx.storage.delete(f"media/{made.asset_id}/presentation.json")
    r = play(origin_client, made.public_id, "master.m3u8")
    assert r.status_code == 404 and r.headers["cache-control"] == "no-store"
