"""Servers with the ASGI `http.response.pathsend` extension (Granian) get whole segments by path."""

from __future__ import annotations

import asyncio

import pytest

from tests.origin.fabricate import fabricate


@pytest.fixture(scope="module")
def big_asset(origin_client):
    ctx = origin_client.app.state.ctx
    return fabricate(ctx.engine, ctx.storage, segment_size=200_000)


def _call(app, path: str, headers: list[tuple[bytes, bytes]], extensions: dict) -> list[dict]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80), "extensions": extensions, "state": {}}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _segment_path(asset) -> str:
    return next(r for r in asset.files if r.endswith(".m4s") and not r.startswith("audio"))


def test_whole_segment_is_handed_to_the_server_by_path(origin_client, big_asset):
    relative = _segment_path(big_asset)
    sent = _call(origin_client.app, f"/play/{big_asset.public_id}/{relative}", [],
                 {"http.response.pathsend": {}})
    start, body = sent[0], sent[1]
    headers = dict(start["headers"])
    assert start["status"] == 200
    assert body["type"] == "http.response.pathsend"
    assert body["path"].endswith(f"media/{big_asset.asset_id}/{relative}")
    assert open(body["path"], "rb").read() == big_asset.files[relative]
    assert headers[b"content-length"] == str(len(big_asset.files[relative])).encode()
    assert headers[b"cache-control"] == b"public, max-age=31536000, immutable"
    assert headers[b"etag"].startswith(b'"')


def test_ranges_and_servers_without_pathsend_get_bytes(origin_client, big_asset):
    relative = _segment_path(big_asset)
    path = f"/play/{big_asset.public_id}/{relative}"
    ranged = _call(origin_client.app, path, [(b"range", b"bytes=10-19")], {"http.response.pathsend": {}})
    assert ranged[0]["status"] == 206 and ranged[1]["body"] == big_asset.files[relative][10:20]
    plain = _call(origin_client.app, path, [], {})
    assert plain[0]["status"] == 200 and plain[1]["body"] == big_asset.files[relative]
