"""The origin's fast path (api/origin_fastpath.py) answers exactly as the FastAPI routes do.

Two apps over the same database and media: one with the fast path (the
default), one with `ABR_ORIGIN_FAST_PATH=0`. Every request below goes to
both and the responses must match (status, body, every header but the
request id and date); a recorder on the fast path proves which requests it
answered itself and which it handed to the routes.
"""

from __future__ import annotations

import os
import time
import types
from pathlib import Path

import pytest

from core.origin.files import LocalFile, open_local
from core.services.playback import SigningKeys, sign_token
from tests.helpers import app_client
from tests.origin.fabricate import fabricate

SEGMENT = "h264-720p/00002.m4s"
VOLATILE = {"x-request-id", "date", "server"}


@pytest.fixture(scope="module", params=["*", "https://app.example,https://b.example"], ids=["any-origin", "listed"])
def pair(request, tmp_path_factory):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path_factory.mktemp("fastpath") / "data")}
    with app_client(env, cors_origins=request.param) as fast, \
            app_client(env, cors_origins=request.param, origin_fast_path=False) as slow:
        ctx = fast.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage, segment_size=100_000)  # above the 64 KB inline read
        keys = SigningKeys.from_settings(ctx.settings.signing_key, "", ctx.settings.signing_key_id)
        token = sign_token(made.signed_id, keys=keys, expires_at=int(time.time()) + 600)
        yield fast, slow, made, token


def comparable(response) -> tuple:
    headers = sorted((k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in VOLATILE)
    return response.status_code, headers, response.content


def cases(made, token, etags):
    pid, sid = made.public_id, made.signed_id
    return [
        # (method, url, request headers, the fast path answers it)
        ("GET", f"/play/{pid}/master.m3u8", {}, True),
        ("GET", f"/play/{pid}/master.m3u8", {"Accept-Encoding": "gzip"}, True),
        ("GET", f"/play/{pid}/manifest.mpd", {"Accept-Encoding": "br;q=1, gzip;q=0.5"}, True),
        ("HEAD", f"/play/{pid}/manifest.mpd", {}, True),
        ("GET", f"/play/{pid}/master.m3u8?max_height=480", {}, True),
        ("GET", f"/play/{pid}/manifest.mpd?codecs=vp8", {}, True),
        ("GET", f"/play/{pid}/h264-720p/index.m3u8", {"Range": "bytes=0-99"}, True),
        ("GET", f"/play/{pid}/master.m3u8", {"If-None-Match": etags["master"]}, True),
        ("GET", f"/play/{pid}/master.m3u8", {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}, True),
        ("GET", f"/play/{pid}/{SEGMENT}", {}, True),
        ("HEAD", f"/play/{pid}/{SEGMENT}", {}, True),
        ("GET", f"/play/{pid}/{SEGMENT}", {"Range": "bytes=100-"}, True),
        ("GET", f"/play/{pid}/{SEGMENT}", {"Range": "bytes=-500", "Origin": "https://app.example"}, True),
        ("GET", f"/play/{pid}/{SEGMENT}", {"If-None-Match": etags["segment"]}, True),
        ("GET", f"/play/{pid}/audio/init.mp4", {"Origin": "https://elsewhere.example"}, True),
        ("GET", f"/play/{pid}/vp8-360p/00001.webm", {"X-Request-Id": "given-id"}, True),
        ("GET", f"/play/{sid}/master.m3u8?token={token}", {}, True),
        ("GET", f"/play/{sid}/{SEGMENT}?token={token}", {}, True),
        ("GET", f"/play/{pid}/h264-720p/99999.m4s", {"Origin": "https://app.example"}, True),  # 404, as the routes
        ("GET", f"/play/{sid}/h264-720p/99999.m4s?token={token}", {}, True),
        # Handed to the routes: errors in the API's format, and what needs them.
        ("GET", f"/play/{pid}/{SEGMENT}", {"Range": "bytes=99999999-"}, False),  # 416
        ("GET", f"/play/{pid}/master.m3u8", {"Range": "bytes=99999-"}, False),  # 416
        ("GET", f"/play/{sid}/master.m3u8?token=bad.token.here", {}, False),  # 403
        ("GET", f"/play/{sid}/master.m3u8", {}, False),  # 403: no token
        ("GET", f"/play/{pid}/master.m3u8?max_height=tall", {}, False),  # bad filter
        ("GET", f"/play/{pid}/h999-1p/index.m3u8", {}, False),  # no such rendition: 404
        ("HEAD", f"/play/{pid}/h264-720p/99999.m4s", {}, False),  # no such segment, HEAD: the routes
        ("GET", f"/play/{pid}/..%2fpresentation.json", {}, False),
        # An unknown id, remembered as unknown by the first pass: the routes' 404 from the fast path.
        ("GET", "/play/nosuchid000000000000000/master.m3u8", {"Origin": "https://app.example"}, True),
        ("HEAD", "/play/nosuchid000000000000000/master.m3u8", {}, False),
    ]


def test_fast_path_answers_like_the_routes(pair, served, monkeypatch):
    fast, slow, made, token = pair
    # A signed answer's max-age is the token's remaining life: one clock for both paths.
    monkeypatch.setattr("api.origin.time", types.SimpleNamespace(time=lambda now=time.time(): now))
    etags = {"master": fast.get(f"/play/{made.public_id}/master.m3u8").headers["etag"],
             "segment": fast.get(f"/play/{made.public_id}/{SEGMENT}").headers["etag"]}
    table = cases(made, token, etags)
    for method, url, headers, _ in table:  # fill the caches the fast path reads
        fast.request(method, url, headers=headers)
    for method, url, headers, expected in table:
        served.clear()
        got_fast = fast.request(method, url, headers=headers)
        assert [ok for _, ok in served] == [expected], (method, url, headers)
        got_slow = slow.request(method, url, headers=headers)
        assert comparable(got_fast) == comparable(got_slow), (method, url, headers)
        assert got_fast.headers["x-request-id"] and got_slow.headers["x-request-id"]
        if "X-Request-Id" in headers:
            assert got_fast.headers["x-request-id"] == headers["X-Request-Id"]


def test_fast_path_counts_requests_in_metrics(pair):
    fast, _, made, _ = pair
    fast.get(f"/play/{made.public_id}/master.m3u8")  # cached from here on
    def manifest_count() -> float:
        text = fast.get("/metrics").text
        line = next(line for line in text.splitlines()
                    if line.startswith("abr_origin_requests_total") and 'class="manifest"' in line
                    and 'status="200"' in line)
        return float(line.rsplit(" ", 1)[1])
    before = manifest_count()
    for _ in range(3):
        fast.get(f"/play/{made.public_id}/master.m3u8")
    assert manifest_count() == before + 3


def test_segment_not_in_the_page_cache_goes_to_the_routes(pair, served, monkeypatch):
    """`read_cached` None (the kernel would have had to read the disk): the routes read it in a thread."""
    fast, _, made, _ = pair
    url = f"/play/{made.public_id}/h265-720p/00003.m4s"  # requested by no other test
    with monkeypatch.context() as patch:
        patch.setattr(LocalFile, "read_cached", lambda self, start, length: None)
        r = fast.get(url)
        assert r.status_code == 200 and r.content == made.files["h265-720p/00003.m4s"]
        assert served[-1] == (url, False)
    assert fast.get(url).content == made.files["h265-720p/00003.m4s"]  # page-cached now: the fast path's
    assert served[-1] == (url, True)


def test_hot_segments_are_answered_from_memory(pair, served, monkeypatch):
    fast, _, made, _ = pair
    url = f"/play/{made.public_id}/h264-360p/00003.m4s"
    first = fast.get(url)
    hot = fast.app.state.ctx.extra["origin"].hot
    assert f"media/{made.asset_id}/h264-360p/00003.m4s" in hot._entries

    def no_disk(*args, **kwargs):
        raise AssertionError("a hot segment was read from disk")

    monkeypatch.setattr("api.origin_fastpath.open_local", no_disk)
    again = fast.get(url)
    assert served[-1] == (url, True)
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    part = fast.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == first.content[10:20]
    assert fast.head(url).headers["content-length"] == str(len(first.content))


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path`, from /proc/mounts (longest mount point wins)."""
    best, kind = "", ""
    for line in Path("/proc/mounts").read_text().splitlines():
        _, mount, fstype, *_ = line.split()
        if str(path).startswith(mount.rstrip("/") + "/") and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def test_read_cached_refuses_to_wait_for_the_disk(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "f.m4s"
    path.write_bytes(data)
    if _filesystem(path) in ("tmpfs", "ramfs"):
        pytest.skip("this filesystem keeps every page in memory: nothing to evict")
    local = open_local(path, "f.m4s")
    try:
        os.fsync(local.fd)
        # Clean pages are dropped from the cache; the kernel may keep a page still finishing writeback,
        # so ask again (bounded) until none is resident. A fast path that waited for the disk fails here.
        deadline = time.monotonic() + 5
        while True:
            os.posix_fadvise(local.fd, 0, 0, os.POSIX_FADV_DONTNEED)
            cached = local.read_cached(0, len(data))
            if cached is None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert cached is None
        assert local.read(0, len(data)) == data  # a normal read waits for the disk and caches the pages
        assert local.read_cached(0, len(data)) == data
    finally:
        local.close()


def test_read_cached_gives_exact_windows(tmp_path):
    data = os.urandom(300_000)
    (tmp_path / "f.m4s").write_bytes(data)
    local = open_local(tmp_path / "f.m4s", "f.m4s")
    try:
        assert local.read(0, len(data)) == data  # a normal read: the pages are cached from here
        assert local.read_cached(0, len(data)) == data
        assert local.read_cached(1000, 5000) == data[1000:6000]
        assert local.read_cached(len(data) - 10, 10) == data[-10:]
        assert local.read_cached(len(data) - 10, 20) is None  # past the end: short, so not served
    finally:
        local.close()


def test_a_new_manifest_variant_is_rendered_by_the_fast_path(pair, served, monkeypatch):
    """Each token of a signed id is its own manifest: its first request is rendered from the presentation in memory."""
    fast, slow, made, _ = pair
    monkeypatch.setattr("api.origin.time", types.SimpleNamespace(time=lambda now=time.time(): now))
    keys = SigningKeys.from_settings(fast.app.state.ctx.settings.signing_key, "",
                                     fast.app.state.ctx.settings.signing_key_id)
    fast.get(f"/play/{made.public_id}/master.m3u8")  # the presentation is in memory from here on
    for path in ("master.m3u8", "manifest.mpd", "h264-720p/index.m3u8"):
        token = sign_token(made.signed_id, keys=keys, expires_at=int(time.time()) + 900 + len(served))
        url = f"/play/{made.signed_id}/{path}?token={token}"
        served.clear()
        got_fast = fast.get(url)
        assert served == [(f"/play/{made.signed_id}/{path}", True)], url
        assert token in got_fast.text
        assert comparable(got_fast) == comparable(slow.get(url)), url


@pytest.mark.parametrize("inline", [True, False], ids=["sqlite-inline", "thread-pool"])
def test_a_cold_id_is_answered_by_the_fast_path_after_one_shared_lookup(pair, monkeypatch, inline):
    """A process that has not seen an id yet (a cold start, a player's first request): the fast path looks the
    id up and reads its presentation itself, once for all the requests in flight for it, and answers them
    as the routes do; the routes are never entered (their stack cost ~1 ms of CPU a request). The lookup
    is a read on the event loop on an SQLite file (`inline`), else in the thread pool, shared (PostgreSQL;
    here the inline read is made unavailable, as a locked SQLite file makes it)."""
    import asyncio
    from collections import Counter

    import httpx

    from api.app import create_app
    from core.db.inline import Unavailable
    from core.origin.service import OriginService

    fast, slow, made, token = pair
    monkeypatch.setattr("api.origin.time", types.SimpleNamespace(time=lambda now=time.time(): now))
    pid, sid, unknown = made.public_id, made.signed_id, "nosuchid111111111111111"
    urls = [f"/play/{pid}/master.m3u8"] * 3 + [f"/play/{pid}/h264-720p/index.m3u8"] * 2 \
        + [f"/play/{pid}/{SEGMENT}"] * 3 + [f"/play/{sid}/manifest.mpd?token={token}"] * 2 \
        + [f"/play/{sid}/{SEGMENT}?token={token}", f"/play/{unknown}/master.m3u8", f"/play/{unknown}/{SEGMENT}"]
    expected = [comparable(slow.get(url)) for url in urls]  # the routes' answers
    cold = create_app(fast.app.state.ctx.settings)  # a new process: nothing of the origin in memory
    lookups, reads = Counter(), Counter()
    load_playback, presentation = OriginService.load_playback, OriginService.presentation
    monkeypatch.setattr(OriginService, "load_playback",
                        lambda self, pid: lookups.update([pid]) or load_playback(self, pid))
    playback_inline = OriginService.playback_inline

    def counted_inline(self, pid):
        if not inline:
            raise Unavailable("as PostgreSQL")
        lookups.update([pid])
        return playback_inline(self, pid)

    monkeypatch.setattr(OriginService, "playback_inline", counted_inline)
    monkeypatch.setattr(OriginService, "presentation",
                        lambda self, asset_id: reads.update([asset_id]) or presentation(self, asset_id))

    async def not_the_routes(*args, **kwargs):
        raise AssertionError("a cold /play request went through the routes")

    monkeypatch.setattr("api.routers.playback._serve", not_the_routes)

    async def all_at_once():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cold), base_url="http://testserver") as c:
            return await asyncio.gather(*(c.get(url) for url in urls))

    got = asyncio.run(all_at_once())
    cold.state.ctx.engine.dispose()
    assert [comparable(answer) for answer in got] == expected
    assert [a.status_code for a in got] == [200] * 11 + [404, 404]
    assert lookups == {pid: 1, sid: 1, unknown: 1}  # one database lookup per id, shared
    assert reads == {made.asset_id: 1}  # one presentation read for the asset's manifests
