from __future__ import annotations

import pytest

from core.origin.paths import Kind
from core.origin.policy import cache_control, redirect_cache_control


@pytest.mark.parametrize(("kind", "complete", "ttl", "expected"), [
    (Kind.SEGMENT, True, None, "public, max-age=31536000, immutable"),
    (Kind.SEGMENT, False, None, "public, max-age=31536000, immutable"),
    (Kind.MASTER, True, None, "public, max-age=86400, stale-while-revalidate=3600"),
    (Kind.MPD, True, None, "public, max-age=86400, stale-while-revalidate=3600"),
    (Kind.MEDIA_PLAYLIST, True, None, "public, max-age=86400, stale-while-revalidate=3600"),
    (Kind.MASTER, False, None, "public, max-age=2"),
    (Kind.MEDIA_PLAYLIST, False, None, "public, max-age=2"),
    # signed: never cached past the token's expiry
    (Kind.SEGMENT, True, 600, "public, max-age=600, immutable"),
    (Kind.MASTER, True, 600, "public, max-age=600"),
    (Kind.MASTER, True, 10**9, "public, max-age=86400"),
    (Kind.MASTER, False, 600, "public, max-age=2"),
    (Kind.MASTER, False, 1, "public, max-age=1"),
    (Kind.SEGMENT, True, 0, "no-store"),
    (Kind.MASTER, True, 0, "no-store"),
    (Kind.MASTER, False, 0, "no-store"),
])
def test_cache_control(kind, complete, ttl, expected):
    assert cache_control(kind, complete=complete, token_ttl=ttl) == expected


def test_redirect_cache_control():
    assert redirect_cache_control() == "public, max-age=600"
    assert redirect_cache_control(token_ttl=30) == "public, max-age=30"
    assert redirect_cache_control(token_ttl=0) == "no-store"
