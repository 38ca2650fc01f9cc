"""Hot objects (core/origin/hot.py): a byte-bounded LRU of whole segments."""

from __future__ import annotations

from datetime import UTC, datetime

from core.origin.hot import HotObjects
from core.storage import ObjectInfo


def obj(size: int) -> tuple[ObjectInfo, bytes]:
    return ObjectInfo(size=size, mtime=datetime(2026, 1, 1, tzinfo=UTC), etag=f"e{size}"), b"x" * size


def test_least_recently_used_goes_first_within_the_byte_budget():
    hot = HotObjects(1000)
    for key in "abc":
        hot.put(key, *obj(300))
    assert hot.size == 900 and len(hot) == 3
    assert hot.get("a") is not None  # a is now the most recent
    hot.put("d", *obj(300))  # 1200 > 1000: b (least recent) goes
    assert hot.get("b") is None
    assert [k for k in "acd" if hot.get(k)] == ["a", "c", "d"]
    assert hot.size == 900


def test_replacing_a_key_does_not_count_it_twice():
    hot = HotObjects(1000)
    hot.put("a", *obj(400))
    hot.put("a", *obj(500))
    assert hot.size == 500 and len(hot) == 1 and hot.get("a")[0].size == 500


def test_large_or_partial_objects_are_never_kept():
    hot = HotObjects(10_000, max_object=1000)
    hot.put("big", *obj(1001))
    info, data = obj(500)
    hot.put("partial", info, data[:100])  # not the whole object
    assert len(hot) == 0 and hot.size == 0
    tiny = HotObjects(100)  # max_object never exceeds the budget
    tiny.put("a", *obj(101))
    assert len(tiny) == 0
