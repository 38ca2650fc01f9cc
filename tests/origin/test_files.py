from __future__ import annotations

import os

import pytest

from core.errors import NotFound
from core.origin.files import open_local
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
