from __future__ import annotations

import os
import types

import pytest

from core.errors import NotFound
from core.origin import files
from core.origin.files import open_local, stat_local
from core.storage import LocalStorage


@pytest.fixture
def storage(tmp_path):
    s = LocalStorage(tmp_path / "storage")
    s.put_bytes("media/a/h264/00001.m4s", b"0123456789")
    (tmp_path / "secret.txt").write_text("outside")
    return s


def test_opens_and_etag_matches_storage_stat(storage):
    f = open_local(storage.local_path("media/a/h264/00001.m4s"), "media/a/h264/00001.m4s")
    try:
        assert f.info == storage.stat("media/a/h264/00001.m4s")
        assert f.read(2, 3) == b"234"
        assert f.read(0, 10) == b"0123456789"
    finally:
        f.close()


def test_symlinked_file_pointing_outside_is_refused(storage, tmp_path):
    os.symlink(tmp_path / "secret.txt", storage.root / "media/a/h264/00002.m4s")
    with pytest.raises(NotFound):
        open_local(storage.local_path("media/a/h264/00002.m4s"), "media/a/h264/00002.m4s")


def test_symlinked_directory_is_refused(storage, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "00001.m4s").write_bytes(b"outside")
    os.symlink(tmp_path / "elsewhere", storage.root / "media/a/vp8")
    with pytest.raises(NotFound):
        open_local(storage.local_path("media/a/vp8/00001.m4s"), "media/a/vp8/00001.m4s")


def test_even_a_symlink_inside_the_root_is_refused(storage):
    os.symlink(storage.root / "media/a/h264/00001.m4s", storage.root / "media/a/h264/00003.m4s")
    with pytest.raises(NotFound):
        open_local(storage.local_path("media/a/h264/00003.m4s"), "media/a/h264/00003.m4s")


def test_missing_and_directories_are_not_found(storage):
    with pytest.raises(NotFound):
        open_local(storage.local_path("media/a/h264/00009.m4s"), "media/a/h264/00009.m4s")
    with pytest.raises(NotFound):
        open_local(storage.local_path("media/a/h264"), "media/a/h264")


def test_a_root_behind_a_link_is_fine_but_nothing_below_it(storage, tmp_path):
    """The data dir may be a link (a mounted volume); directories of the key may not."""
    os.symlink(storage.root, tmp_path / "linked-root")
    linked = LocalStorage(tmp_path / "linked-root")
    f = open_local(linked.local_path("media/a/h264/00001.m4s"), "media/a/h264/00001.m4s")
    try:
        assert f.read(0, 10) == b"0123456789"
    finally:
        f.close()
    os.symlink(storage.root / "media/a", storage.root / "media/b")  # a link inside the root, to a real dir
    with pytest.raises(NotFound):
        open_local(storage.local_path("media/b/h264/00001.m4s"), "media/b/h264/00001.m4s")


def test_dot_segments_and_empty_components_are_refused(storage):
    for key in ("media/a/../a/h264/00001.m4s", "media/a/./h264/00001.m4s", "media//a/h264/00001.m4s"):
        with pytest.raises(NotFound):
            open_local(storage.root / key, key)


# -- stat_local: the same checks without opening the file (answers sent by path) ---------------


def _stat(storage, key: str):
    return stat_local(str(storage.local_path(key)), key)


def test_stat_local_gives_open_locals_info(storage):
    key = "media/a/h264/00001.m4s"
    f = open_local(storage.local_path(key), key)
    try:
        assert _stat(storage, key) == f.info == storage.stat(key)
    finally:
        f.close()


def test_stat_local_refuses_what_open_local_refuses(storage, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_checked", {})
    os.symlink(tmp_path / "secret.txt", storage.root / "media/a/h264/00002.m4s")
    os.symlink(storage.root / "media/a/h264/00001.m4s", storage.root / "media/a/h264/00003.m4s")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "00001.m4s").write_bytes(b"outside")
    os.symlink(tmp_path / "elsewhere", storage.root / "media/a/vp8")
    for key in ("media/a/h264/00002.m4s", "media/a/h264/00003.m4s", "media/a/vp8/00001.m4s",
                "media/a/h264/00009.m4s", "media/a/h264"):
        with pytest.raises(NotFound):
            _stat(storage, key)
    _stat(storage, "media/a/h264/00001.m4s")  # its directory is checked and remembered now
    for key in ("media/a/h264/00002.m4s", "media/a/h264/00003.m4s", "media/a/h264/00009.m4s"):
        with pytest.raises(NotFound):  # the file itself is looked at every time
            _stat(storage, key)


def test_stat_local_rechecks_directories_after_a_second(storage, tmp_path, monkeypatch):
    """A directory swapped for a link is refused once its remembered check is older than the limit."""
    monkeypatch.setattr(files, "_checked", {})
    clock = [1000.0]
    monkeypatch.setattr(files, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    storage.put_bytes("media/c/h264/00001.m4s", b"inside")
    _stat(storage, "media/c/h264/00001.m4s")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "00001.m4s").write_bytes(b"outside")
    os.rename(storage.root / "media/c/h264", tmp_path / "moved")
    os.symlink(tmp_path / "elsewhere", storage.root / "media/c/h264")
    clock[0] += files.DIRECTORY_CHECK_SECONDS + 0.01
    with pytest.raises(NotFound):
        _stat(storage, "media/c/h264/00001.m4s")
