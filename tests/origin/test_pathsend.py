"""Servers with the ASGI `http.response.pathsend` extension (Granian) get whole segments by path."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.origin_fastpath import ByPath
from core.origin.files import LocalFile
from core.services.playback import SigningKeys, sign_token
from tests.origin.fabricate import fabricate

PATHSEND = {"http.response.pathsend": {}}


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


def test_a_server_that_sends_ranges_gets_them_by_path(origin_client):
    """`respond_now` (api/sendfile_server.py's quick answers): a range goes by path and offset, not as bytes."""
    ctx = origin_client.app.state.ctx
    big_asset = fabricate(ctx.engine, ctx.storage, segment_size=200_000)  # its own: no segment of it in memory yet
    relative = _segment_path(big_asset)
    path = f"/play/{big_asset.public_id}/{relative}"
    data = big_asset.files[relative]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"range", b"bytes=1000-150999")],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "extensions": PATHSEND, "state": {}}
    _call(origin_client.app, path, [], PATHSEND)  # the playback id is in memory after one request
    status, headers, body = origin_client.app.respond_now(dict(scope))
    headers = dict(headers)
    assert status == 206 and isinstance(body, ByPath) and body.start == 1000
    assert headers[b"content-length"] == b"150000"
    assert headers[b"content-range"] == f"bytes 1000-150999/{len(data)}".encode()
    with open(body, "rb") as f:
        f.seek(body.start)
        assert f.read(150_000) == data[1000:151_000]
    # Through ASGI (`pathsend` has no offset) the same range is still bytes.
    ranged = _call(origin_client.app, path, [(b"range", b"bytes=1000-150999")], PATHSEND)
    assert ranged[1]["type"] == "http.response.body" and ranged[1]["body"] == data[1000:151_000]


def _signed_token(origin_client, playback_id: str, ttl: int = 600) -> str:
    ctx = origin_client.app.state.ctx
    keys = SigningKeys.from_settings(ctx.settings.signing_key, "", ctx.settings.signing_key_id)
    return sign_token(playback_id, keys=keys, expires_at=int(time.time()) + ttl)


def _call_query(app, path: str, query: str, extensions: dict, headers=()) -> list[dict]:
    scope_path = path
    sent: list[dict] = []
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": scope_path, "raw_path": scope_path.encode(),
             "query_string": query.encode(), "root_path": "", "headers": [(b"host", b"testserver"), *headers],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "extensions": extensions, "state": {}}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_fast_path_sends_signed_segments_by_path(origin_client, big_asset, served):
    """A signed id's segment, after the id is known: answered by the fast path, by path, with the token's max-age."""
    relative = _segment_path(big_asset)
    path = f"/play/{big_asset.signed_id}/{relative}"
    token = _signed_token(origin_client, big_asset.signed_id, ttl=600)
    _call_query(origin_client.app, path, f"token={token}", PATHSEND)  # the id is looked up (the routes)
    sent = _call_query(origin_client.app, path, f"token={token}", PATHSEND)
    assert served[-1] == (path, True)
    start, body = sent[0], sent[1]
    headers = dict(start["headers"])
    assert start["status"] == 200 and body["type"] == "http.response.pathsend"
    assert open(body["path"], "rb").read() == big_asset.files[relative]
    assert headers[b"content-length"] == str(len(big_asset.files[relative])).encode()
    max_age = int(headers[b"cache-control"].decode().split("max-age=")[1].split(",")[0])
    assert 590 <= max_age <= 600  # capped by the token, not a year
    refused = _call_query(origin_client.app, path, "token=not.a.token", PATHSEND)
    assert refused[0]["status"] == 403 and refused[1]["type"] == "http.response.body"


def test_fast_path_ranges_and_revalidations_are_never_sent_by_path(origin_client, big_asset, served):
    relative = _segment_path(big_asset)
    path = f"/play/{big_asset.public_id}/{relative}"
    whole = _call_query(origin_client.app, path, "", PATHSEND)
    etag = dict(whole[0]["headers"])[b"etag"]
    ranged = _call_query(origin_client.app, path, "", PATHSEND, [(b"range", b"bytes=100-199")])
    assert served[-1] == (path, True)
    assert ranged[0]["status"] == 206 and ranged[1]["body"] == big_asset.files[relative][100:200]
    assert dict(ranged[0]["headers"])[b"content-range"] == f"bytes 100-199/{len(big_asset.files[relative])}".encode()
    fresh = _call_query(origin_client.app, path, "", PATHSEND, [(b"if-none-match", etag)])
    assert fresh[0]["status"] == 304 and fresh[1] == {"type": "http.response.body", "body": b""}


def test_small_segment_off_the_page_cache_goes_by_path_not_to_a_thread(origin_client, big_asset, served,
                                                                       monkeypatch):
    """Below the inline size a segment is read on the loop if cached; if not, the server reads it."""
    relative = "audio/init.mp4" if "audio/init.mp4" in big_asset.files else next(iter(big_asset.files))
    path = f"/play/{big_asset.public_id}/{relative}"
    _call_query(origin_client.app, path, "", PATHSEND)  # the id is known from here on
    monkeypatch.setattr(LocalFile, "read_cached", lambda self, start, length: None)
    origin = origin_client.app.state.ctx.extra["origin"]
    if origin.hot is not None:
        monkeypatch.setattr(origin.hot, "get", lambda key: None)
    by_path = _call_query(origin_client.app, path, "", PATHSEND)
    assert served[-1] == (path, True)
    assert by_path[1]["type"] == "http.response.pathsend"
    assert open(by_path[1]["path"], "rb").read() == big_asset.files[relative]
    without = _call_query(origin_client.app, path, "", {})  # no extension: the routes read it
    assert served[-1] == (path, False)
    assert without[0]["status"] == 200 and without[1]["body"] == big_asset.files[relative]
