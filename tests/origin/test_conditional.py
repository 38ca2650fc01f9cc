from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.origin.conditional import (
    UNSATISFIABLE,
    ByteRange,
    Plan,
    choose_encoding,
    etag_list,
    http_date,
    if_range_allows,
    is_not_modified,
    parse_http_date,
    parse_range,
    plan_response,
)

WHEN = datetime(2024, 5, 1, 12, 0, 0, 500_000, tzinfo=UTC)
DATE = "Wed, 01 May 2024 12:00:00 GMT"
ETAG = '"abc"'


def test_http_dates():
    assert http_date(WHEN) == DATE
    assert parse_http_date(DATE) == WHEN.replace(microsecond=0)
    assert parse_http_date("yesterday") is None
    assert parse_http_date(None) is None


@pytest.mark.parametrize(("header", "size", "expected"), [
    pytest.param("bytes=0-99", 1000, ByteRange(0, 99), id="first-bytes"),
    pytest.param("bytes=0-0", 1000, ByteRange(0, 0), id="one-byte"),
    pytest.param("bytes=500-", 1000, ByteRange(500, 999), id="open-ended"),
    pytest.param("bytes=-100", 1000, ByteRange(900, 999), id="suffix"),
    pytest.param("bytes=-5000", 1000, ByteRange(0, 999), id="suffix-longer-than-object"),
    pytest.param("bytes=900-5000", 1000, ByteRange(900, 999), id="end-clipped"),
    pytest.param("BYTES = 1 - 2", 1000, ByteRange(1, 2), id="case-and-spaces"),
    pytest.param("bytes=1000-", 1000, UNSATISFIABLE, id="start-at-end"),
    pytest.param("bytes=5000-6000", 1000, UNSATISFIABLE, id="start-past-end"),
    pytest.param("bytes=-0", 1000, UNSATISFIABLE, id="empty-suffix"),
    pytest.param("bytes=0-", 0, UNSATISFIABLE, id="empty-object"),
    pytest.param("bytes=0-1,5-9", 1000, None, id="multi-range-ignored"),
    pytest.param("bytes=9-5", 1000, None, id="reversed-ignored"),
    pytest.param("items=0-5", 1000, None, id="other-unit-ignored"),
    pytest.param("bytes=abc", 1000, None, id="junk-ignored"),
    pytest.param("", 1000, None, id="empty"),
    pytest.param(None, 1000, None, id="absent"),
])
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


def test_content_range():
    assert ByteRange(0, 99).content_range(1000) == "bytes 0-99/1000"
    assert ByteRange(0, 99).length == 100


def test_etag_list_is_weak_comparison():
    assert etag_list('"a", W/"b" ,"c"') == ['"a"', '"b"', '"c"']


@pytest.mark.parametrize(("headers", "expected"), [
    ({"if-none-match": ETAG}, True),
    ({"if-none-match": 'W/"abc"'}, True),
    ({"if-none-match": '"x", "abc"'}, True),
    ({"if-none-match": "*"}, True),
    ({"if-none-match": '"other"'}, False),
    ({"if-modified-since": DATE}, True),
    ({"if-modified-since": "Wed, 01 May 2024 11:59:59 GMT"}, False),
    ({"if-modified-since": "Thu, 02 May 2024 00:00:00 GMT"}, True),
    ({"if-modified-since": "garbage"}, False),
    # If-None-Match wins over If-Modified-Since
    ({"if-none-match": '"other"', "if-modified-since": DATE}, False),
    ({}, False),
])
def test_is_not_modified(headers, expected):
    assert is_not_modified(headers, ETAG, WHEN) is expected


@pytest.mark.parametrize(("header", "expected"), [
    (None, True), (ETAG, True), ('"other"', False), ('W/"abc"', False), (DATE, True),
    ("Wed, 01 May 2024 11:00:00 GMT", False), ("junk", False),
])
def test_if_range(header, expected):
    assert if_range_allows(header, ETAG, WHEN) is expected


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, Plan(200)),
    ({"if-none-match": ETAG}, Plan(304)),
    ({"if-none-match": ETAG, "range": "bytes=0-9"}, Plan(304)),
    ({"range": "bytes=0-9"}, Plan(206, ByteRange(0, 9))),
    ({"range": "bytes=-10"}, Plan(206, ByteRange(90, 99))),
    ({"range": "bytes=100-"}, Plan(416)),
    ({"range": "bytes=0-1,3-4"}, Plan(200)),
    ({"range": "bytes=0-9", "if-range": ETAG}, Plan(206, ByteRange(0, 9))),
    ({"range": "bytes=0-9", "if-range": '"stale"'}, Plan(200)),
])
def test_plan_response(headers, expected):
    assert plan_response(headers, size=100, etag=ETAG, last_modified=WHEN) == expected


@pytest.mark.parametrize(("accept", "available", "expected"), [
    ("gzip", ("gzip",), "gzip"),
    ("gzip, deflate, br", ("br", "gzip"), "br"),
    ("gzip, deflate, br", ("gzip",), "gzip"),
    ("br;q=0.5, gzip", ("br", "gzip"), "gzip"),
    ("gzip;q=0", ("gzip",), None),
    ("identity", ("gzip",), None),
    ("*", ("br", "gzip"), "br"),
    ("*;q=0, gzip", ("gzip",), "gzip"),
    ("GZIP;Q=0.3", ("gzip",), "gzip"),
    ("gzip;q=abc", ("gzip",), None),
    ("", ("gzip",), None),
    (None, ("gzip",), None),
])
def test_choose_encoding(accept, available, expected):
    assert choose_encoding(accept, available) == expected
