"""The nginx front's id index (core/origin/front_index.py): windows named as nginx names them, links, sweeping."""

from __future__ import annotations

import os
import re

import pytest

from core.origin.front_index import BUCKET_MAP, FrontIndex, bucket, window_end


def nginx_bucket(msec: str) -> str:
    """What the config's map gives `$msec`: its regexes, tried in order, as nginx does (PCRE ⊇ these)."""
    for line in BUCKET_MAP[1:-1]:
        pattern, value = re.fullmatch(r'\s*"~(.+)" (\S+);', line).groups()
        if m := re.match(pattern, msec):
            return value.replace("$1", m.group(1))
    raise AssertionError(f"no window for {msec}")


@pytest.mark.parametrize("msec", ["1733435140.000", "1733435144.999", "1733435145.000", "1733435149.999",
                                  "1733435150.000", "999999999.500", "1000000004.001"])
def test_the_api_names_the_window_as_nginx_does(msec):
    assert bucket(float(msec)) == nginx_bucket(msec)


def test_windows_are_five_seconds():
    assert bucket(1733435140.0) == bucket(1733435144.99) == "173343514a"
    assert bucket(1733435145.0) == bucket(1733435149.99) == "173343514b"
    assert bucket(1733435150.0) == "173343515a"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_id_is_linked_once_per_window_public_and_signed_apart(tmp_path):
    media = tmp_path / "storage" / "media"
    (media / "asset1").mkdir(parents=True)
    clock = Clock(1733435141.0)
    index = FrontIndex(tmp_path / "ids", media, clock)
    index.admit("pub1", "asset1", signed=False)
    index.admit("sig1", "asset1", signed=True)
    window = tmp_path / "ids" / "173343514a"
    assert os.readlink(window / "p" / "pub1") == str(media / "asset1")
    assert os.readlink(window / "s" / "sig1") == str(media / "asset1")
    assert not (window / "p" / "sig1").exists() and not (window / "s" / "pub1").exists()
    # Remembered for the window: a link removed behind its back is not made again until the next one.
    (window / "p" / "pub1").unlink()
    index.admit("pub1", "asset1", signed=False)
    assert not (window / "p" / "pub1").exists()
    clock.now += 5
    index.admit("pub1", "asset1", signed=False)
    assert (tmp_path / "ids" / "173343514b" / "p" / "pub1").is_symlink()


def test_old_windows_are_swept_and_the_previous_one_kept(tmp_path):
    clock = Clock(1733435141.0)
    index = FrontIndex(tmp_path / "ids", tmp_path / "media", clock)
    for step in range(4):
        index.admit(f"id{step}", "asset1", signed=False)
        clock.now += 5
    assert sorted(p.name for p in (tmp_path / "ids").iterdir()) == ["173343515a", "173343515b"]


def test_another_process_linking_first_is_fine_and_errors_never_raise(tmp_path):
    clock = Clock(1733435141.0)
    one = FrontIndex(tmp_path / "ids", tmp_path / "media", clock)
    two = FrontIndex(tmp_path / "ids", tmp_path / "media", clock)
    one.admit("pub1", "asset1", signed=False)
    two.admit("pub1", "asset1", signed=False)  # FileExistsError: the same link
    assert (tmp_path / "ids" / "173343514a" / "p" / "pub1").is_symlink()
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    FrontIndex(blocked / "ids", tmp_path / "media", clock).admit("pub1", "asset1", signed=False)  # no raise


def test_ids_asked_lately_are_carried_to_the_next_window_and_old_ones_dropped(tmp_path):
    clock = Clock(1733435141.0)
    index = FrontIndex(tmp_path / "ids", tmp_path / "media", clock)
    index.admit("old1", "asset1", signed=False)
    clock.now += 50
    index.admit("new1", "asset2", signed=True)
    clock.now += 20  # old1 last asked 70 s ago, new1 20 s ago
    assert index.to_carry() == ["new1"]
    assert window_end(clock.now) == 1733435215.0
    nxt = bucket(window_end(clock.now) + 0.5)
    assert index.carry({"new1": ("asset2", True)}, nxt) == 1
    assert (tmp_path / "ids" / nxt / "s" / "new1").is_symlink()
    # The next window is kept by a sweep in the current one; carrying twice links once.
    index.admit("new2", "asset2", signed=False)
    assert (tmp_path / "ids" / nxt).is_dir()
    assert index.carry({"new1": ("asset2", True)}, nxt) == 1
    assert os.readlink(tmp_path / "ids" / nxt / "s" / "new1") == str(tmp_path / "media" / "asset2")


def test_a_window_nginx_names_is_linked_only_if_current_or_previous(tmp_path):
    clock = Clock(1733435146.0)
    index = FrontIndex(tmp_path / "ids", tmp_path / "media", clock)
    assert index.admit("a", "asset1", signed=False, window="173343514a") is not None  # the previous one
    assert index.admit("a", "asset1", signed=False, window="173343514b") == (
        tmp_path / "ids" / "173343514b" / "p" / "a", True)
    assert index.admit("a", "asset1", signed=False, window="173343514b")[1] is False  # made already
    assert index.admit("a", "asset1", signed=False, window="173343515a") is None  # not yet begun
    assert index.admit("a", "asset1", signed=False, window="173343513b") is None  # long gone


def test_prewarmed_ids_are_linked_now_and_carried_like_ids_just_asked(tmp_path):
    clock = Clock(1733435141.0)
    index = FrontIndex(tmp_path / "ids", tmp_path / "media", clock)
    assert index.prewarm({"pub1": ("asset1", False), "sig1": ("asset1", True)}) == 2
    window = tmp_path / "ids" / "173343514a"
    assert os.readlink(window / "p" / "pub1") == str(tmp_path / "media" / "asset1")
    assert os.readlink(window / "s" / "sig1") == str(tmp_path / "media" / "asset1")
    assert sorted(index.to_carry()) == ["pub1", "sig1"]
    clock.now += 61  # no request reached the API for them since: no longer carried
    assert index.to_carry() == []
