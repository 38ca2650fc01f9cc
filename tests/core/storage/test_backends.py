"""What differs between backends: URL parsing, readiness checks, local details."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from core.errors import BadRequest, StorageError
from core.storage import LocalStorage, S3Storage, open_storage


@pytest.mark.parametrize(
    ("url", "root"),
    [
        pytest.param("file:///srv/abr/data", "/srv/abr/data", id="file-url"),
        pytest.param("file://localhost/srv/a%20b", "/srv/a b", id="file-url-localhost-quoted"),
        pytest.param("/srv/abr", "/srv/abr", id="plain-absolute"),
    ],
)
def test_open_storage_local(url: str, root: str) -> None:
    storage = open_storage(url)
    assert isinstance(storage, LocalStorage) and storage.root == Path(root)


def test_open_storage_relative_path_becomes_absolute(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = open_storage("data")
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "data"


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        pytest.param("s3://media", "media", "", id="bucket-only"),
        pytest.param("s3://media/", "media", "", id="bucket-slash"),
        pytest.param("s3://media/abr/prod/", "media", "abr/prod", id="prefix"),
    ],
)
def test_open_storage_s3(url: str, bucket: str, prefix: str) -> None:
    storage = open_storage(url, s3_endpoint_url="http://127.0.0.1:1", presign=True)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.endpoint_url, storage.presign) == (
        bucket, prefix, "http://127.0.0.1:1", True,
    )


@pytest.mark.parametrize(
    "url", ["", "  ", "s3://", "s3:///prefix", "gs://bucket", "file://host/x", "file:relative", "s3://b/a/../x"]
)
def test_open_storage_refuses(url: str) -> None:
    with pytest.raises(BadRequest):
        open_storage(url)


def test_local_creates_root_lazily(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "a" / "b")
    assert list(storage.list("")) == []
    assert not (tmp_path / "a").exists()
    storage.put_bytes("k", b"x")
    assert (tmp_path / "a" / "b" / "k").read_bytes() == b"x"


def test_local_check_unwritable(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="not writable"):
        LocalStorage(tmp_path / "file" / "root").check()


def test_local_files_are_world_readable(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("k", b"x")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o644


def test_local_publish_fresh_is_one_rename(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("staging/j/seg", b"x")
    inode = os.stat(tmp_path / "staging" / "j").st_ino
    storage.publish("staging/j", "assets/a")
    assert os.stat(tmp_path / "assets" / "a").st_ino == inode  # the directory itself moved
    assert not (tmp_path / "staging" / "j").exists()


def test_local_etag_follows_replacement(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put_bytes("k", b"same")
    first = storage.stat("k").etag
    storage.put_bytes("k", b"same")  # same size, maybe same mtime: new inode
    assert storage.stat("k").etag != first


def test_s3_prefixes_isolate_tenants(s3_endpoint: str, s3_bucket: str) -> None:
    base = f"iso-{uuid.uuid4().hex[:8]}"
    a = S3Storage(s3_bucket, base + "/a", endpoint_url=s3_endpoint)
    ab = S3Storage(s3_bucket, base + "/ab", endpoint_url=s3_endpoint)
    a.put_bytes("k", b"a")
    ab.put_bytes("k", b"ab")
    assert list(a.list("")) == ["k"] and a.get_bytes("k") == b"a"
    assert list(ab.list("")) == ["k"]


def test_s3_presign_off_by_default(s3_endpoint: str, s3_bucket: str) -> None:
    assert S3Storage(s3_bucket, "p", endpoint_url=s3_endpoint).presigned_url("k", 60) is None


def test_s3_check(s3_endpoint: str, s3_bucket: str) -> None:
    S3Storage(s3_bucket, endpoint_url=s3_endpoint).check()
    with pytest.raises(StorageError, match="not usable"):
        S3Storage("no-such-bucket-here", endpoint_url=s3_endpoint).check()


def test_s3_check_unreachable() -> None:
    with pytest.raises(StorageError, match="cannot reach"):
        S3Storage("b", endpoint_url="http://127.0.0.1:9").check()


def test_s3_content_types(s3_endpoint: str, s3_bucket: str, tmp_path: Path) -> None:
    storage = S3Storage(s3_bucket, f"ct-{uuid.uuid4().hex[:8]}", endpoint_url=s3_endpoint)
    storage.put_bytes("master.m3u8", b"#EXTM3U\n")
    storage.put_bytes("x.bin", b"x", content_type="text/plain")
    (tmp_path / "init.mp4").write_bytes(b"x")
    storage.put_file("init.mp4", tmp_path / "init.mp4")
    head = storage.client.head_object
    prefix = storage.prefix + "/"
    assert head(Bucket=s3_bucket, Key=prefix + "master.m3u8")["ContentType"] == "application/vnd.apple.mpegurl"
    assert head(Bucket=s3_bucket, Key=prefix + "x.bin")["ContentType"] == "text/plain"
    assert head(Bucket=s3_bucket, Key=prefix + "init.mp4")["ContentType"] == "video/mp4"


def test_s3_missing_bucket_is_a_storage_error_not_a_404(s3_endpoint: str) -> None:
    storage = S3Storage("no-such-bucket-here", endpoint_url=s3_endpoint)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        storage.get_bytes("k")
