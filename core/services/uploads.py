"""Direct uploads: a one-time, expiring tus 1.0 URL that turns into an asset when complete.

The bytes go to `data_dir/uploads/{id}`; `uploads.offset` in the database is the
committed length, so a client resumes from it after a dropped connection and
after an API restart. A PATCH starts by cutting the file back to that offset
(bytes written after the last commit by a crashed process are not trusted) and
advances it as it goes (or, with `Upload-Checksum`, only once the body's digest
matched; a mismatch discards the body).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import hmac
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from core import events
from core.db.models import utcnow
from core.db.models_integrations import Upload
from core.errors import AbrError, BadRequest, Conflict, NotFound, TooLarge
from core.media.probe import probe
from core.services.assets import AssetSettings, MediaLimits, create_asset
from core.storage import Storage

log = logging.getLogger(__name__)
LIVE = ("waiting", "uploading")  # statuses that may still receive bytes
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "md5": hashlib.md5, "sha256": hashlib.sha256}


class Gone(AbrError):
    code = "expired"
    status = 410


class ChecksumMismatch(AbrError):
    code = "checksum_mismatch"
    status = 460  # tus checksum extension


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    @classmethod
    def parse(cls, header: str | None) -> Checksum | None:
        if not header:
            return None
        algorithm, _, value = header.strip().partition(" ")
        if algorithm not in CHECKSUM_ALGORITHMS:
            raise BadRequest(f"unsupported checksum algorithm {algorithm!r}; use one of sha1, md5, sha256")
        try:
            return cls(algorithm, base64.b64decode(value.strip(), validate=True))
        except binascii.Error as exc:
            raise BadRequest("Upload-Checksum value is not base64") from exc


def parse_metadata(header: str | None) -> dict[str, str | None]:
    """`Upload-Metadata`: comma-separated `key base64(value)` pairs (a value may be absent)."""
    out: dict[str, str | None] = {}
    for pair in (header or "").split(","):
        if not pair.strip():
            continue
        key, _, value = pair.strip().partition(" ")
        if not key or " " in value.strip():
            raise BadRequest(f"malformed Upload-Metadata pair {pair.strip()!r}")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace") if value else None
        except binascii.Error as exc:
            raise BadRequest(f"Upload-Metadata value of {key!r} is not base64") from exc
    return out


def data_path(upload_dir: Path, upload_id: str) -> Path:
    return upload_dir / upload_id


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """One writer per upload file across API processes (an in-process lock is not enough behind
    several workers): an exclusive `flock` on the file itself, held while a PATCH writes.
    Conflict at once if another request holds it; released by the kernel if that process dies."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield  # no file (terminated, expired): the writer's own open reports it
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict("another request is writing this upload; retry after it finished") from None
        yield
    finally:
        os.close(fd)


# -- the management side (/v1/uploads) --------------------------------------------------------------
def create_upload(session: Session, *, cors_origin: str, settings: AssetSettings, expiry_s: float) -> Upload:
    row = Upload(cors_origin=cors_origin or "*", settings=settings.model_dump(),
                 expires_at=utcnow() + timedelta(seconds=expiry_s))
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def get_upload(session: Session, upload_id: str, *, upload_dir: Path | None = None) -> Upload:
    row = session.get(Upload, upload_id)
    if row is None:
        raise NotFound(f"no upload {upload_id}")
    if row.status in LIVE and as_utc(row.expires_at) <= utcnow():
        row.status, row.updated_at = "expired", utcnow()
        session.add(row)
        session.commit()
        if upload_dir is not None:
            data_path(upload_dir, row.id).unlink(missing_ok=True)
    return row


def sweep(engine: Engine, upload_dir: Path) -> tuple[int, list[str]]:
    """Expire every upload past `expires_at`; delete the partial data no live upload owns.

    Expiry is also applied when an upload is looked up; this pass is what
    reclaims the disk of uploads nobody comes back to. Files are removed by
    looking at the directory, so the host that holds a partial file cleans it
    whichever host marked the row expired; names without a row are left alone.
    Returns (rows expired, upload ids whose files were removed).
    """
    now = utcnow()
    with Session(engine) as s:
        expired = s.exec(update(Upload).where(Upload.status.in_(LIVE), Upload.expires_at <= now)
                         .values(status="expired", updated_at=now))
        s.commit()
        names = [p.name for p in upload_dir.iterdir() if p.is_file()] if upload_dir.is_dir() else []
        dead = set(s.exec(select(Upload.id).where(Upload.id.in_(names), Upload.status.not_in(LIVE))).all()) \
            if names else set()
    removed = []
    for upload_id in sorted(dead):
        data_path(upload_dir, upload_id).unlink(missing_ok=True)
        removed.append(upload_id)
    if expired.rowcount or removed:
        log.info("upload sweep: %d expired, %d partial files removed", expired.rowcount, len(removed))
    return expired.rowcount, removed


def list_uploads(session: Session, *, limit: int, offset: int) -> tuple[list[Upload], int]:
    rows = session.exec(select(Upload).order_by(Upload.created_at.desc(), Upload.id).offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(select(func.count()).select_from(Upload)).one())


def as_utc(when: datetime) -> datetime:
    # SQLite hands back naive datetimes; psycopg aware ones in ZoneInfo("Etc/UTC"), which
    # email.utils.format_datetime(usegmt=True) refuses (it wants datetime.UTC itself).
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


# -- the tus side ------------------------------------------------------------------------------------
def open_for_tus(session: Session, upload_id: str, *, upload_dir: Path) -> Upload:
    """The upload a tus request addresses: 404 unknown, 410 expired or terminated."""
    row = get_upload(session, upload_id, upload_dir=upload_dir)
    if row.status == "expired" or (row.status == "errored" and row.error_code == "terminated"):
        raise Gone(f"upload {upload_id} has expired or was terminated")
    return row


def begin(session: Session, upload_id: str, *, length: int, metadata: dict[str, str | None], max_bytes: int,
          upload_dir: Path) -> Upload:
    """tus creation: the direct-upload URL accepts exactly one upload."""
    row = open_for_tus(session, upload_id, upload_dir=upload_dir)
    if length > max_bytes:
        raise TooLarge(f"Upload-Length {length} exceeds the limit of {max_bytes} bytes")
    claimed = session.exec(update(Upload).where(Upload.id == upload_id, Upload.status == "waiting")
                           .values(status="uploading", length=length, offset=0, updated_at=utcnow(),
                                   filename=(metadata.get("filename") or None) and metadata["filename"][:255],
                                   filetype=(metadata.get("filetype") or None) and metadata["filetype"][:255]))
    session.commit()
    if claimed.rowcount != 1:
        raise Conflict(f"upload {upload_id} was already created; this URL accepts one upload")
    upload_dir.mkdir(parents=True, exist_ok=True)
    data_path(upload_dir, upload_id).write_bytes(b"")
    session.refresh(row)
    return row


def commit_offset(engine: Engine, upload_id: str, *, old: int, new: int) -> None:
    """Compare-and-set: a second writer that raced us finds the offset moved and gets 409."""
    with Session(engine) as s:
        done = s.exec(update(Upload).where(Upload.id == upload_id, Upload.offset == old, Upload.status == "uploading")
                      .values(offset=new, updated_at=utcnow()))
        s.commit()
    if done.rowcount != 1:
        raise Conflict("the upload's offset changed while this request was writing")


def terminate(session: Session, upload_id: str, *, upload_dir: Path) -> None:
    row = open_for_tus(session, upload_id, upload_dir=upload_dir)
    if row.status == "complete":
        raise Conflict(f"upload {upload_id} is complete and became asset {row.asset_id}")
    row.status, row.error_code, row.error_message = "errored", "terminated", "the client terminated the upload"
    row.updated_at = utcnow()
    session.add(row)
    session.commit()
    data_path(upload_dir, upload_id).unlink(missing_ok=True)


class ChunkSink:
    """Appends one request body at the committed offset, hashing it if a checksum was sent."""

    def __init__(self, path: Path, *, offset: int, length: int, checksum: Checksum | None) -> None:
        self.committed = self.offset = offset
        self.length = length
        self.checksum = checksum
        self._hash = CHECKSUM_ALGORITHMS[checksum.algorithm]() if checksum else None
        self._fh = open(path, "r+b")  # noqa: SIM115 - closed in close()
        self._fh.seek(offset)
        self._fh.truncate()

    def write(self, chunk: bytes) -> None:
        if self.offset + len(chunk) > self.length:
            raise BadRequest(f"the body goes past Upload-Length ({self.length})")
        self._fh.write(chunk)
        if self._hash is not None:
            self._hash.update(chunk)
        self.offset += len(chunk)

    def flush(self) -> None:
        self._fh.flush()

    def verify(self) -> None:
        if self._hash is not None and not hmac.compare_digest(self._hash.digest(), self.checksum.digest):
            self.discard()
            raise ChecksumMismatch(f"the body does not match Upload-Checksum ({self.checksum.algorithm})")

    def discard(self) -> None:
        """Drop what was written since the last committed offset."""
        self._fh.seek(self.committed)
        self._fh.truncate()
        self.offset = self.committed

    def close(self) -> None:
        self._fh.close()


def finalize(engine: Engine, storage: Storage, upload_id: str, *, upload_dir: Path,
             limits: MediaLimits | None = None) -> Upload:
    """Probe the complete file and make it an asset; a file that is not media errors the upload.

    Returns the upload; its `asset_id` is set when the caller must enqueue the transcode.
    """
    path = data_path(upload_dir, upload_id)
    with Session(engine, expire_on_commit=False) as s:
        row = s.get(Upload, upload_id)
        try:
            settings = AssetSettings.model_validate(row.settings)
            asset = create_asset(s, storage, source=path, info=probe(path, limits), settings=settings, limits=limits,
                                 filename=row.filename)
            row.status, row.asset_id = "complete", asset.id
        except AbrError as exc:
            log.info("upload %s is not usable: %s", upload_id, exc.message)
            row.status, row.error_code, row.error_message = "errored", exc.code, exc.message
            path.unlink(missing_ok=True)
        row.updated_at = utcnow()
        s.add(row)
        s.commit()
    if row.status == "complete":
        events.emit(engine, events.UPLOAD_COMPLETED, data=upload_data(row))
    return row


def upload_data(row: Upload) -> dict:
    return {"id": row.id, "status": row.status, "asset_id": row.asset_id, "filename": row.filename,
            "error": {"code": row.error_code, "message": row.error_message} if row.error_code else None}
