"""One suite, both backends (`local` and `s3` against a real moto server)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import BadRequest, NotFound
from core.storage import LocalStorage, S3Storage, Storage
from tests.s3_server import s3_client

MiB = 1024 * 1024
DATA = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable-ish


def test_put_get_round_trip(storage: Storage) -> None:
    storage.put_bytes("assets/abc/h264-720p/00001.m4s", b"segment", content_type="video/mp4")
    assert storage.get_bytes("assets/abc/h264-720p/00001.m4s") == b"segment"
    assert storage.exists("assets/abc/h264-720p/00001.m4s")


def test_put_replaces_existing(storage: Storage) -> None:
    storage.put_bytes("a/b", b"old")
    storage.put_bytes("a/b", b"new!")
    assert storage.get_bytes("a/b") == b"new!"
    assert storage.stat("a/b").size == 4


def test_empty_object(storage: Storage) -> None:
    storage.put_bytes("empty", b"")
    assert storage.get_bytes("empty") == b""
    assert b"".join(storage.open_range("empty")) == b""
    assert storage.stat("empty").size == 0


def test_put_leaves_no_temp_files_visible(storage: Storage) -> None:
    for i in range(5):
        storage.put_bytes(f"x/{i}", b"data")
    storage.put_stream("x/stream", iter([b"a", b"b"]))
    assert list(storage.list("x")) == ["x/0", "x/1", "x/2", "x/3", "x/4", "x/stream"]
    root = storage.local_path("x/0")
    if root is not None:  # nothing else on disk either
        assert sorted(os.listdir(root.parent)) == ["0", "1", "2", "3", "4", "stream"]


def test_partial_writes_of_a_killed_writer_are_removed(storage: Storage) -> None:
    """A writer SIGKILLed between its temp file and the rename leaves the temp file behind."""
    storage.put_bytes("media/a1/v/00001.m4s", b"kept")
    storage.put_bytes("media/a2/v/00001.m4s", b"other asset")
    root = storage.local_path("media/a1/v/00001.m4s")
    if root is None:  # object stores write whole objects: nothing is ever left half-written
        assert storage.remove_partial_writes("media/a1") == 0
        return
    (root.parent / ".abr-tmp-x1y2z3").write_bytes(b"half a segm")
    (root.parent.parent / ".abr-tmp-q9").write_bytes(b"half")
    other = storage.local_path("media/a2/v/00001.m4s").parent / ".abr-tmp-keep"
    other.write_bytes(b"another asset's writer, maybe alive")
    assert storage.remove_partial_writes("media/a1") == 2
    assert sorted(os.listdir(root.parent)) == ["00001.m4s"]
    assert list(storage.list("media/a1")) == ["media/a1/v/00001.m4s"]
    assert other.exists()
    assert storage.remove_partial_writes("media/nothing-here") == 0


def test_failed_stream_stores_nothing(storage: Storage) -> None:
    def chunks():
        for _ in range(7):  # past the first multipart part on S3
            yield b"\0" * MiB * 2
        raise RuntimeError("source dropped")

    with pytest.raises(RuntimeError, match="source dropped"):
        storage.put_stream("live/seg.m4s", chunks())
    assert not storage.exists("live/seg.m4s")
    assert list(storage.list("")) == []
    if isinstance(storage, S3Storage):  # the multipart upload was aborted
        uploads = s3_client(storage.endpoint_url).list_multipart_uploads(Bucket=storage.bucket)
        assert [u for u in uploads.get("Uploads", []) if u["Key"].startswith(storage.prefix)] == []


def test_put_stream_large_in_small_chunks(storage: Storage) -> None:
    chunk = bytes(range(256)) * 256  # 64 KiB
    count = 12 * MiB // len(chunk) + 3  # > 5 MiB, > one 8 MiB part, ragged end
    written = storage.put_stream("big.bin", (chunk for _ in range(count)))
    assert written == count * len(chunk)
    assert storage.stat("big.bin").size == written
    assert storage.get_bytes("big.bin") == chunk * count
    if isinstance(storage, S3Storage):  # really a multipart upload: 8 MiB + the rest
        assert storage.stat("big.bin").etag.endswith("-2")


def test_put_stream_small(storage: Storage) -> None:
    assert storage.put_stream("s", [b"ab", b"", b"cd"]) == 4
    assert storage.get_bytes("s") == b"abcd"
    assert storage.put_stream("empty", []) == 0
    assert storage.get_bytes("empty") == b""


@pytest.mark.parametrize("move", [False, True], ids=["copy", "move"])
def test_put_file(storage: Storage, tmp_path: Path, move: bool) -> None:
    src = tmp_path / "upload.mp4"
    src.write_bytes(DATA)
    storage.put_file("assets/a/source.mp4", src, move=move)
    assert storage.get_bytes("assets/a/source.mp4") == DATA
    assert src.exists() is not move


def test_put_file_missing_source(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        storage.put_file("k", tmp_path / "nope")


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(0, 99, DATA[:100], id="first-bytes"),
        pytest.param(1000, 300_000, DATA[1000:300_001], id="middle-several-chunks"),
        pytest.param(len(DATA) - 10, None, DATA[-10:], id="suffix-to-end"),
        pytest.param(5, None, DATA[5:], id="open-ended"),
        pytest.param(len(DATA) - 5, len(DATA) + 100, DATA[-5:], id="end-clipped"),
        pytest.param(len(DATA), None, b"", id="start-past-end"),
        pytest.param(0, None, DATA, id="whole"),
    ],
)
def test_open_range(storage: Storage, start: int, end: int | None, expected: bytes) -> None:
    storage.put_bytes("r.bin", DATA)
    chunks = list(storage.open_range("r.bin", start, end))
    assert b"".join(chunks) == expected
    assert all(len(c) <= 256 * 1024 for c in chunks)


def test_open_range_missing_raises_before_iteration(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.open_range("missing.m4s", 0, 10)


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 9)])
def test_open_range_bad_bounds(storage: Storage, start: int, end: int | None) -> None:
    storage.put_bytes("r", b"abc")
    with pytest.raises(BadRequest):
        storage.open_range("r", start, end)


def test_stat(storage: Storage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    storage.put_bytes("s/one", b"12345")
    info = storage.stat("s/one")
    assert info.size == 5
    assert info.mtime.tzinfo is not None and info.mtime.utcoffset() == timedelta(0)
    assert before <= info.mtime <= datetime.now(UTC) + timedelta(seconds=2)
    assert info.etag and '"' not in info.etag
    assert storage.stat("s/one").etag == info.etag  # stable
    storage.put_bytes("s/one", b"54321")
    assert storage.stat("s/one").etag != info.etag  # changes on rewrite


@pytest.mark.parametrize("key", ["missing", "s", "s/one/deeper"])
def test_stat_missing(storage: Storage, key: str) -> None:
    storage.put_bytes("s/one", b"x")
    with pytest.raises(NotFound):
        storage.stat(key)
    with pytest.raises(NotFound):
        storage.get_bytes(key)
    assert not storage.exists(key)


def test_list_sorted_and_directory_like(storage: Storage) -> None:
    keys = ["a/b/c", "a/b-c", "a/a", "a-b/x", "ab/y", "a/b/a", "a/z/1", "b"]
    for key in keys:
        storage.put_bytes(key, b"x")
    assert list(storage.list("")) == sorted(keys)
    assert list(storage.list("a")) == ["a/a", "a/b-c", "a/b/a", "a/b/c", "a/z/1"]
    assert list(storage.list("a/")) == list(storage.list("a"))
    assert list(storage.list("a/b")) == ["a/b/a", "a/b/c"]
    assert list(storage.list("nothing")) == []
    assert list(storage.list("b")) == []  # a key is not a directory


def test_delete(storage: Storage) -> None:
    storage.put_bytes("d/1", b"x")
    storage.delete("d/1")
    assert not storage.exists("d/1")
    storage.delete("d/1")  # idempotent
    storage.delete("never/was")


def test_delete_prefix_boundary(storage: Storage) -> None:
    for key in ["assets/a/1", "assets/a/sub/2", "assets/ab/3", "assets/a-b/4", "assets/a.txt"]:
        storage.put_bytes(key, b"x")
    assert storage.delete_prefix("assets/a") == 2
    assert list(storage.list("")) == ["assets/a-b/4", "assets/a.txt", "assets/ab/3"]
    assert storage.delete_prefix("assets/a") == 0
    assert storage.delete_prefix("missing/") == 0


def test_delete_prefix_refuses_root(storage: Storage) -> None:
    storage.put_bytes("keep", b"x")
    for prefix in ("", "/"):
        with pytest.raises(BadRequest):
            storage.delete_prefix(prefix)
    assert storage.exists("keep")


def test_publish_fresh(storage: Storage) -> None:
    storage.put_bytes("staging/j1/h264/init.mp4", b"init")
    storage.put_bytes("staging/j1/h264/00001.m4s", b"seg1")
    storage.put_bytes("staging/j10/other", b"not mine")
    storage.publish("staging/j1", "assets/a1")
    assert list(storage.list("assets/a1")) == ["assets/a1/h264/00001.m4s", "assets/a1/h264/init.mp4"]
    assert storage.get_bytes("assets/a1/h264/init.mp4") == b"init"
    assert list(storage.list("staging")) == ["staging/j10/other"]


def test_publish_over_existing(storage: Storage) -> None:
    storage.put_bytes("assets/a1/h264/init.mp4", b"old init")
    storage.put_bytes("assets/a1/h264/00001.m4s", b"old seg")
    storage.put_bytes("staging/j2/vp8/init.webm", b"vp8 init")
    storage.put_bytes("staging/j2/h264/init.mp4", b"new init")
    storage.publish("staging/j2/", "assets/a1/")
    assert list(storage.list("assets/a1")) == [
        "assets/a1/h264/00001.m4s",
        "assets/a1/h264/init.mp4",
        "assets/a1/vp8/init.webm",
    ]
    assert storage.get_bytes("assets/a1/h264/init.mp4") == b"new init"
    assert list(storage.list("staging")) == []


def test_publish_errors(storage: Storage) -> None:
    with pytest.raises(NotFound):
        storage.publish("staging/none", "assets/x")
    storage.put_bytes("assets/x/y/z", b"x")
    for staging, final in [("assets/x", "assets/x"), ("assets/x", "assets/x/y"), ("assets/x/y", "assets/x")]:
        with pytest.raises(BadRequest):
            storage.publish(staging, final)


BAD_KEYS = [
    pytest.param("../x", id="dotdot"),
    pytest.param("a/../../b", id="dotdot-inside"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("", id="empty"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/", id="trailing-slash"),
    pytest.param("./a", id="dot"),
    pytest.param("a/.abr-tmp-x", id="temp-marker"),
    pytest.param("a\nb", id="newline"),
    pytest.param("x" * 1025, id="too-long"),
    pytest.param("\udcff", id="not-utf8"),
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_everywhere(storage: Storage, key: str, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    calls = [
        lambda: storage.put_bytes(key, b"x"),
        lambda: storage.put_file(key, src),
        lambda: storage.put_stream(key, [b"x"]),
        lambda: storage.get_bytes(key),
        lambda: storage.open_range(key),
        lambda: storage.stat(key),
        lambda: storage.exists(key),
        lambda: storage.local_path(key),
        lambda: storage.download_to(key, tmp_path / "out"),
        lambda: storage.delete(key),
        lambda: storage.presigned_url(key, 60),
    ]
    if key and not key.endswith("/"):  # "" lists everything; one trailing "/" is allowed
        calls += [lambda: list(storage.list(key + "/")), lambda: storage.delete_prefix(key)]
        calls += [lambda: storage.publish(key, "ok"), lambda: storage.publish("ok", key)]
    for call in calls:
        with pytest.raises(BadRequest):
            call()
    assert list(storage.list("")) == []
    assert not (tmp_path.parent / "x").exists()


def test_longest_key_is_fine(storage: Storage) -> None:
    key = "/".join(["k" * 99] * 8)  # 799 bytes: room for the S3 test prefix
    storage.put_bytes(key, b"x")
    assert list(storage.list("")) == [key]


def test_unicode_keys(storage: Storage) -> None:
    storage.put_bytes("títulos/vídeo ü.m4s", b"x")
    storage.put_bytes("títulos/a b", b"y")
    assert list(storage.list("títulos")) == ["títulos/a b", "títulos/vídeo ü.m4s"]


def test_local_path(storage: Storage) -> None:
    storage.put_bytes("src/in.mp4", b"media")
    path = storage.local_path("src/in.mp4")
    if isinstance(storage, LocalStorage):
        assert path == storage.root / "src" / "in.mp4"
        assert path.read_bytes() == b"media"
        assert storage.local_path("not/yet") == storage.root / "not" / "yet"
    else:
        assert path is None


def test_download_to(storage: Storage, tmp_path: Path) -> None:
    storage.put_bytes("src/in.mp4", DATA)
    dest = tmp_path / "work" / "deep" / "in.mp4"
    storage.download_to("src/in.mp4", dest)
    assert dest.read_bytes() == DATA
    with pytest.raises(NotFound):
        storage.download_to("src/missing.mp4", tmp_path / "work" / "missing.mp4")
    assert sorted(os.listdir(tmp_path / "work")) == ["deep"]  # no temp file left


def test_presigned_url(storage: Storage) -> None:
    storage.put_bytes("p/x.m4s", b"signed bytes")
    url = storage.presigned_url("p/x.m4s", 60)
    if isinstance(storage, LocalStorage):
        assert url is None
        return
    import urllib.request

    assert url is not None and "Signature" in url
    with urllib.request.urlopen(url) as resp:
        assert resp.read() == b"signed bytes"


def test_check(storage: Storage) -> None:
    storage.check()
    assert list(storage.list("")) == []  # the probe leaves nothing behind


def test_local_delete_prefix_while_a_writer_is_still_at_work(tmp_path: Path) -> None:
    """Deleting an asset while its worker still writes must not fail with ENOENT/ENOTEMPTY.

    A real race, not a mock: a thread keeps putting objects (temp file, then
    rename) under the prefix while it is deleted, as a worker does until it
    notices the deleted row. Before `_remove_tree`, `delete_prefix` answered a
    MissingObject (404) or a StorageError (503) here at random.
    """
    import threading

    storage = LocalStorage(tmp_path / "store")
    for round_ in range(30):
        for i in range(40):
            storage.put_bytes(f"media/a{round_}/r/{i:05d}.m4s", b"x" * 256)
        stop = threading.Event()

        def writer(round_: int = round_) -> None:
            i = 1000
            while not stop.is_set():
                i += 1
                try:
                    storage.put_bytes(f"media/a{round_}/r/{i:05d}.m4s", b"y" * 256)
                except Exception:  # the directory may vanish under the writer: that is its problem, not ours
                    pass

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            storage.delete_prefix(f"media/a{round_}")
        finally:
            stop.set()
            thread.join()
