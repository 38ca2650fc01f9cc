"""Storage in an S3-compatible bucket (AWS, MinIO, Ceph, R2...) through boto3.

Credentials come the usual boto3 way (environment, shared config, instance
role). The bucket must already exist: creating it is deployment's job.
Every S3 object write is atomic by nature; `put_stream` uses a hand-driven
multipart upload that is aborted on any error, so no half object appears.
The etag is S3's own ETag without quotes (an MD5 for single-part uploads,
`<md5>-<parts>` for multipart ones).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.errors import MissingObject, NotFound, StorageError
from core.storage.base import (
    CHUNK_SIZE,
    TEMP_MARKER,
    ObjectInfo,
    Storage,
    check_publish_prefixes,
    check_range,
    guess_content_type,
    validate_key,
    validate_prefix,
)

MiB = 1024 * 1024
PART_SIZE = 8 * MiB  # S3 wants >= 5 MiB for every part but the last
MAX_COPY_OBJECT = 5 * 1024 * MiB  # CopyObject's limit; larger needs a multipart copy
_TRANSFER = TransferConfig(
    multipart_threshold=16 * MiB, multipart_chunksize=16 * MiB, max_concurrency=4
)
# NoSuchBucket is a deployment fault (StorageError), not a missing object.
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}
_PUBLISH_THREADS = 8


def _error(exc: Exception, what: str) -> Exception:
    """Map a boto3 failure to NotFound or StorageError."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND_CODES:
            return MissingObject(what)
        return StorageError(f"object storage refused {what!r}: {code or exc}")
    return StorageError(f"object storage failed on {what!r}: {exc}")


def _part_size(part_number: int) -> int:
    # Grow parts every 1000 so the 10,000-part limit allows ~440 GB, not 80.
    return PART_SIZE * (1 + (part_number - 1) // 1000)


class S3Storage(Storage):
    """Objects live at `<prefix>/<key>` in `bucket`.

    `presign` makes `presigned_url` hand out direct URLs (for clients that may
    fetch from the bucket); without it, it returns None and the origin proxies.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        client: Any = None,
        *,
        presign: bool = False,
    ) -> None:
        if not bucket:
            raise StorageError("S3 storage needs a bucket name")
        self.bucket = bucket
        self.prefix = validate_prefix(prefix.strip("/"), allow_root=True) if prefix else ""
        self.endpoint_url = endpoint_url
        self.presign = presign
        self.client = client if client is not None else _make_client(endpoint_url)

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_prefix(self, prefix: str, *, allow_root: bool = False) -> str:
        """The S3 prefix (ending in `/`, or `""` for everything) for a directory-like prefix."""
        prefix = validate_prefix(prefix, allow_root=allow_root)
        full = "/".join(p for p in (self.prefix, prefix) if p)
        return full + "/" if full else ""

    def _strip(self, s3_key: str) -> str:
        return s3_key[len(self.prefix) + 1 :] if self.prefix else s3_key

    # -- writing -------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        s3_key = self._key(key)
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=s3_key, Body=data,
                ContentType=content_type or guess_content_type(key),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, key) from exc

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        s3_key = self._key(key)
        if not Path(path).is_file():
            raise NotFound(f"no file to store at {str(path)!r}")
        try:
            self.client.upload_file(
                str(path), self.bucket, s3_key,
                ExtraArgs={"ContentType": guess_content_type(key)}, Config=_TRANSFER,
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _error(exc, key) from exc
        if move:
            os.unlink(path)

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        s3_key = self._key(key)
        buffer = bytearray()
        iterator = iter(chunks)
        # Small streams are one PutObject; a multipart upload starts only once
        # the first part is full.
        for chunk in iterator:
            buffer += chunk
            if len(buffer) >= _part_size(1):
                break
        else:
            self.put_bytes(key, bytes(buffer))
            return len(buffer)
        try:
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=s3_key, ContentType=guess_content_type(key)
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, key) from exc
        try:
            return self._upload_parts(s3_key, upload["UploadId"], buffer, iterator)
        except BaseException as exc:
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=s3_key, UploadId=upload["UploadId"]
                )
            except (ClientError, BotoCoreError):
                pass  # a lifecycle rule for incomplete uploads is the backstop
            if isinstance(exc, (ClientError, BotoCoreError)):
                raise _error(exc, key) from exc
            raise

    def _upload_parts(self, s3_key: str, upload_id: str, buffer: bytearray, rest: Iterator[bytes]) -> int:
        parts: list[dict[str, Any]] = []
        total = 0

        def send(data: bytes) -> None:
            number = len(parts) + 1
            resp = self.client.upload_part(
                Bucket=self.bucket, Key=s3_key, UploadId=upload_id, PartNumber=number, Body=data
            )
            parts.append({"PartNumber": number, "ETag": resp["ETag"]})

        for chunk in rest:
            buffer += chunk
            size = _part_size(len(parts) + 1)
            while len(buffer) >= size:
                with memoryview(buffer) as view:
                    part = bytes(view[:size])
                send(part)
                total += size
                del buffer[:size]
                size = _part_size(len(parts) + 1)
        if buffer or not parts:
            send(bytes(buffer))
            total += len(buffer)
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=s3_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        return total

    # -- reading -------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        s3_key = self._key(key)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=s3_key)["Body"]
            with body:
                return body.read()
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, key) from exc

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        s3_key = self._key(key)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": s3_key}
        if start or end is not None:  # a Range on an empty object would be a 416
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())  # start past the end, same as local storage
            raise _error(exc, key) from exc
        except BotoCoreError as exc:
            raise _error(exc, key) from exc
        return _iter_body(body, key)

    def stat(self, key: str) -> ObjectInfo:
        s3_key = self._key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=s3_key)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, key) from exc
        return ObjectInfo(
            size=head["ContentLength"], mtime=head["LastModified"], etag=head["ETag"].strip('"')
        )

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except NotFound:
            return False
        return True

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    def download_to(self, key: str, dest: Path) -> None:
        s3_key = self._key(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=TEMP_MARKER)
        os.close(fd)
        try:
            self.client.download_file(self.bucket, s3_key, tmp, Config=_TRANSFER)
            os.replace(tmp, dest)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, (ClientError, BotoCoreError)):
                raise _error(exc, key) from exc
            raise

    def list(self, prefix: str = "") -> Iterator[str]:
        s3_prefix = self._list_prefix(prefix, allow_root=True)
        return (self._strip(obj["Key"]) for obj in self._objects(s3_prefix, prefix))

    def _objects(self, s3_prefix: str, what: str) -> Iterator[dict[str, Any]]:
        # S3 lists in UTF-8 byte order, which is the code-point order of str.
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=s3_prefix):
                yield from page.get("Contents", ())
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, what) from exc

    # -- deleting and publishing --------------------------------------------

    def delete(self, key: str) -> None:
        s3_key = self._key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=s3_key)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, key) from exc

    def delete_prefix(self, prefix: str) -> int:
        s3_prefix = self._list_prefix(prefix)
        deleted = 0
        batch: list[dict[str, str]] = []
        for obj in self._objects(s3_prefix, prefix):
            batch.append({"Key": obj["Key"]})
            if len(batch) == 1000:  # DeleteObjects takes at most 1000 keys
                deleted += self._delete_batch(batch, prefix)
                batch = []
        if batch:
            deleted += self._delete_batch(batch, prefix)
        return deleted

    def _delete_batch(self, batch: list[dict[str, str]], what: str) -> int:
        try:
            resp = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, what) from exc
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} objects under {what!r}: "
                f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
            )
        return len(batch)

    def publish(self, staging_prefix: str, final_prefix: str) -> None:
        staging, final = check_publish_prefixes(staging_prefix, final_prefix)
        src_prefix, dest_prefix = self._list_prefix(staging), self._list_prefix(final)
        objects = list(self._objects(src_prefix, staging))
        if not objects:
            raise NotFound(f"nothing staged under {staging!r}")

        def copy(obj: dict[str, Any]) -> None:
            source = {"Bucket": self.bucket, "Key": obj["Key"]}
            dest = dest_prefix + obj["Key"][len(src_prefix) :]
            if obj["Size"] <= MAX_COPY_OBJECT:
                self.client.copy_object(Bucket=self.bucket, Key=dest, CopySource=source)
            else:
                self.client.copy(source, self.bucket, dest, Config=_TRANSFER)

        # Server-side copies are latency-bound; a few in flight make a
        # ladder of a thousand segments publish in seconds.
        try:
            with ThreadPoolExecutor(max_workers=_PUBLISH_THREADS) as pool:
                for _ in pool.map(copy, objects):
                    pass
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, final) from exc
        self.delete_prefix(staging)

    # -- the rest --------------------------------------------------------------

    def presigned_url(self, key: str, expires: int) -> str | None:
        s3_key = self._key(key)
        if not self.presign:
            return None
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": s3_key}, ExpiresIn=expires
        )

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise StorageError(
                f"S3 bucket {self.bucket!r} is not usable ({code or exc}): "
                "check that it exists and that the credentials may access it"
            ) from exc
        except BotoCoreError as exc:
            where = self.endpoint_url or "AWS"
            raise StorageError(f"cannot reach S3 bucket {self.bucket!r} at {where}: {exc}") from exc


def _make_client(endpoint_url: str | None) -> Any:
    options: dict[str, Any] = {
        "connect_timeout": 5,
        "read_timeout": 60,
        "retries": {"max_attempts": 3, "mode": "standard"},
    }
    if endpoint_url:
        # Most self-hosted stores (MinIO, Ceph, moto) serve buckets by path,
        # not by virtual host.
        options["s3"] = {"addressing_style": "path"}
        # boto3 >= 1.36 sends CRC checksums on every upload by default, which
        # several S3-compatible stores reject; send them only where required.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    config = Config(**options)
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _iter_body(body: Any, key: str) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    except BotoCoreError as exc:
        raise _error(exc, key) from exc
    finally:
        body.close()
