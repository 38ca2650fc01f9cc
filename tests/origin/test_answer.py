"""The origin's response planners (core/origin/answer.py): exact status, headers and byte window."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

from core.origin.answer import Answer, plan_manifest, plan_object, plan_segment
from core.origin.service import RenderedManifest
from core.storage import ObjectInfo

WHEN = datetime(2026, 11, 25, 14, 0, 5, 250_000, tzinfo=UTC)
DATE = "Wed, 25 Nov 2026 14:00:05 GMT"
CC = "public, max-age=31536000, immutable"
INFO = ObjectInfo(size=1000, mtime=WHEN, etag="3e8-1-2")
ETAG = '"3e8-1-2"'
VALIDATORS = [("Cache-Control", CC), ("ETag", ETAG), ("Last-Modified", DATE), ("Accept-Ranges", "bytes")]


def segment(method="GET", **headers):
    return plan_segment(INFO, etag=ETAG, content_type="video/mp4", cache_control=CC, method=method,
                        request_headers=headers)


def test_whole_segment():
    assert segment() == Answer(200, [*VALIDATORS, ("Content-Type", "video/mp4"), ("Content-Length", "1000")],
                               start=0, length=1000)


def test_head_has_the_length_but_no_body():
    assert segment("HEAD") == Answer(200, [*VALIDATORS, ("Content-Type", "video/mp4"),
                                           ("Content-Length", "1000")], start=0, length=0)


def test_ranges():
    assert segment(range="bytes=100-199") == Answer(
        206, [*VALIDATORS, ("Content-Range", "bytes 100-199/1000"), ("Content-Type", "video/mp4"),
              ("Content-Length", "100")], start=100, length=100)
    assert segment(range="bytes=-10").start == 990
    assert segment(range="bytes=990-5000").length == 10
    assert segment(range="bytes=1000-") == Answer(416, [("Content-Range", "bytes */1000"),
                                                        ("Accept-Ranges", "bytes")])
    assert segment(range="bytes=0-1,5-9").status == 200  # multipart ranges are ignored


def test_if_range_that_does_not_match_sends_everything():
    assert segment(range="bytes=0-9", **{"if-range": '"other"'}).status == 200
    assert segment(range="bytes=0-9", **{"if-range": ETAG}).status == 206


def test_not_modified_keeps_validators_and_sends_nothing():
    assert segment(**{"if-none-match": f'"x", {ETAG}'}) == Answer(304, VALIDATORS)
    assert segment(**{"if-modified-since": DATE}) == Answer(304, VALIDATORS)
    assert segment(**{"if-modified-since": "Wed, 25 Nov 2026 14:00:04 GMT"}).status == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
    assert segment(**{"if-none-match": '"x"', "if-modified-since": DATE}).status == 200


def test_manifest_compressed_when_asked_with_its_own_etag():
    text = b"#EXTM3U\n" + b"#EXT-X-STREAM-INF:BANDWIDTH=1\nv/index.m3u8\n" * 20
    rendered = RenderedManifest(text, "application/vnd.apple.mpegurl", WHEN, complete=True)
    plain, body = plan_manifest(rendered, cache_control="public, max-age=2", method="GET", request_headers={})
    assert body == text
    assert plain.headers == [("Cache-Control", "public, max-age=2"), ("ETag", rendered.etag),
                             ("Last-Modified", DATE), ("Vary", "Accept-Encoding"), ("Accept-Ranges", "bytes"),
                             ("Content-Type", "application/vnd.apple.mpegurl"), ("Content-Length", str(len(text)))]
    zipped, zbody = plan_manifest(rendered, cache_control="public, max-age=2", method="GET",
                                  request_headers={"accept-encoding": "gzip"})
    assert gzip.decompress(zbody) == text
    assert ("Content-Encoding", "gzip") in zipped.headers
    assert dict(zipped.headers)["ETag"] == rendered.etag[:-1] + '-gzip"'
    assert dict(zipped.headers)["Content-Length"] == str(len(zbody))


def test_extra_headers_go_with_304_but_not_416():
    kwargs = dict(size=10, etag='"e"', last_modified=WHEN, content_type="text/vtt", cache_control="no-store",
                  method="GET", extra=[("Vary", "Accept-Encoding")])
    assert ("Vary", "Accept-Encoding") in plan_object(request_headers={"if-none-match": '"e"'}, **kwargs).headers
    assert plan_object(request_headers={"range": "bytes=10-"}, **kwargs).headers == [
        ("Content-Range", "bytes */10"), ("Accept-Ranges", "bytes")]


def test_raw_headers_are_asgi_form():
    assert Answer(200, [("Content-Type", "video/mp4")]).raw_headers() == [(b"content-type", b"video/mp4")]
