from __future__ import annotations

from core.origin.cors import DEFAULT_ALLOW_HEADERS, EXPOSE_HEADERS, cors_headers, parse_origins, preflight_headers


def test_parse_origins():
    assert parse_origins("*") is None
    assert parse_origins("") is None
    assert parse_origins("https://a.example/, https://b.example") == {"https://a.example", "https://b.example"}


def test_any_origin():
    assert cors_headers("https://x", None) == [
        ("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", EXPOSE_HEADERS)]
    assert EXPOSE_HEADERS == "Content-Length, Content-Range, Date, ETag"


def test_listed_origins_are_echoed_with_vary():
    allowed = frozenset({"https://a.example"})
    assert cors_headers("https://a.example", allowed) == [
        ("Access-Control-Allow-Origin", "https://a.example"),
        ("Access-Control-Expose-Headers", EXPOSE_HEADERS), ("Vary", "Origin")]
    assert cors_headers("https://evil.example", allowed) == [("Vary", "Origin")]


def test_preflight():
    assert preflight_headers("https://x", "range, x-player", None) == [
        ("Allow", "GET, HEAD, OPTIONS"), ("Vary", "Access-Control-Request-Headers"),
        ("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
        ("Access-Control-Allow-Headers", "range, x-player"), ("Access-Control-Max-Age", "86400")]
    assert dict(preflight_headers("https://x", "bad\r\nheader", None))["Access-Control-Allow-Headers"] \
        == DEFAULT_ALLOW_HEADERS
    assert "Range" in DEFAULT_ALLOW_HEADERS
    refused = preflight_headers("https://evil", "range", frozenset({"https://a"}))
    assert "Access-Control-Allow-Origin" not in dict(refused)
