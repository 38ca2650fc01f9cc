"""Storage in a local directory (the embedded default).

Writes go to a temp file in the destination directory, are fsynced and then
`os.replace`d over the key, so readers never see a partial object. Temp files
carry `TEMP_MARKER` in their name, which keys may not, and `list` skips them.

The etag is `<size>-<mtime_ns>-<inode>` in hex: stable for as long as the
file is untouched, and different after any replacement (a new inode) or
in-place rewrite (a new mtime). It is not a content hash, so two copies of
the same bytes have different etags.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_mode
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from core.errors import MissingObject, NotFound, StorageError
from core.storage.base import (
    CHUNK_SIZE,
    TEMP_MARKER,
    ObjectInfo,
    Storage,
    check_publish_prefixes,
    check_range,
    validate_key,
    validate_prefix,
)

_FILE_MODE = 0o644  # mkstemp makes 0600; the origin or an nginx in front must read these


@contextlib.contextmanager
def _os_errors(what: str) -> Iterator[None]:
    """Turn filesystem errors into domain errors naming the key, not the path."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise MissingObject(what) from None
    except OSError as exc:
        raise StorageError(f"storage failed on {what!r}: {exc.strerror or exc}") from exc


class LocalStorage(Storage):
    def __init__(self, root: Path | str) -> None:
        self.root = Path(os.path.abspath(root))

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _dir(self, prefix: str, *, allow_root: bool = False) -> Path:
        prefix = validate_prefix(prefix, allow_root=allow_root)
        return self.root / prefix if prefix else self.root

    # -- writing -------------------------------------------------------------

    @contextlib.contextmanager
    def _atomic_writer(self, dest: Path) -> Iterator[BinaryIO]:
        """A temp file next to `dest` that replaces it on success and vanishes on error."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=TEMP_MARKER)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fchmod(fh.fileno(), _FILE_MODE)
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        # content_type is not stored: the origin derives it from the extension.
        dest = self._path(key)
        with _os_errors(key), self._atomic_writer(dest) as fh:
            fh.write(data)

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        dest = self._path(key)
        if not Path(path).is_file():
            raise NotFound(f"no file to store at {str(path)!r}")
        with _os_errors(key):
            if move:
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(path, dest)  # same filesystem: atomic, no copy
                    return
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
            with open(path, "rb") as src, self._atomic_writer(dest) as fh:
                shutil.copyfileobj(src, fh, CHUNK_SIZE * 4)
            if move:
                os.unlink(path)

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        dest = self._path(key)
        written = 0
        with _os_errors(key), self._atomic_writer(dest) as fh:
            for chunk in chunks:
                fh.write(chunk)
                written += len(chunk)
        return written

    # -- reading -------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        with _os_errors(key):
            return path.read_bytes()

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        path = self._path(key)
        with _os_errors(key):
            fh = open(path, "rb")
        return _read_range(fh, start, end)

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with _os_errors(key):
            st = os.stat(path)
        if not stat_mode.S_ISREG(st.st_mode):
            raise MissingObject(key)
        return ObjectInfo(
            size=st.st_size,
            mtime=datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC),
            etag=f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}",
        )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def download_to(self, key: str, dest: Path) -> None:
        src = self._path(key)
        dest = Path(dest)
        with _os_errors(key):
            with open(src, "rb") as fh_in:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with self._atomic_writer(dest) as fh_out:
                    shutil.copyfileobj(fh_in, fh_out, CHUNK_SIZE * 4)

    def list(self, prefix: str = "") -> Iterator[str]:
        prefix = validate_prefix(prefix, allow_root=True)
        base = self.root / prefix if prefix else self.root
        return _walk_sorted(base, prefix + "/" if prefix else "")

    # -- deleting and publishing --------------------------------------------

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _os_errors(key), contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            os.unlink(path)

    def remove_partial_writes(self, prefix: str) -> int:
        base = self._dir(prefix)
        removed = 0
        for tmp in base.rglob(TEMP_MARKER + "*") if base.is_dir() else ():
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def delete_prefix(self, prefix: str) -> int:
        base = self._dir(prefix)
        if not base.is_dir():
            return 0
        count = sum(1 for _ in _walk_sorted(base, ""))
        with _os_errors(prefix):
            _remove_tree(base)
        return count

    def publish(self, staging_prefix: str, final_prefix: str) -> None:
        staging, final = check_publish_prefixes(staging_prefix, final_prefix)
        src, dest = self.root / staging, self.root / final
        if not src.is_dir():
            raise NotFound(f"nothing staged under {staging!r}")
        with _os_errors(final):
            dest.parent.mkdir(parents=True, exist_ok=True)
            if not dest.exists():
                try:
                    os.rename(src, dest)  # the whole tree appears at once
                    return
                except OSError as exc:  # created meanwhile by someone else: merge
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            for rel in list(_walk_sorted(src, "")):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src / rel, target)
            shutil.rmtree(src)

    # -- the rest --------------------------------------------------------------

    def presigned_url(self, key: str, expires: int) -> str | None:
        validate_key(key)
        return None

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=self.root, prefix=TEMP_MARKER + "probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StorageError(
                f"storage directory {str(self.root)!r} is not writable: {exc.strerror or exc}"
            ) from exc


def _read_range(fh: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            chunk = fh.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _remove_tree(base: Path, attempts: int = 5) -> None:
    """Remove `base` even while a writer is still at work under it.

    An asset deleted while its worker encodes: files vanish under the walk (the
    worker renames its temp files) and new ones appear (a segment just closed),
    so a plain rmtree failed with ENOENT or ENOTEMPTY at random (a 404 or 503
    for the user's DELETE). The tree is first renamed out of the way in one
    step, under a temp name that listings skip; a writer that goes on makes a
    fresh directory at the old place, which the worker removes itself once it
    notices the deleted row (within a second).
    """

    def _missing_is_fine(_func, _path, exc_info) -> None:
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    doomed = base.with_name(f"{TEMP_MARKER}deleting-{uuid.uuid4().hex[:12]}")
    try:
        os.rename(base, doomed)
    except FileNotFoundError:
        return
    for attempt in range(attempts):
        try:
            shutil.rmtree(doomed, onerror=_missing_is_fine)
            return
        except OSError as exc:  # a write that had resolved its path before the rename
            if exc.errno != errno.ENOTEMPTY or attempt == attempts - 1:
                raise


def _walk_sorted(base: Path, key_prefix: str) -> Iterator[str]:
    """Regular files under `base` as keys, in code-point order, streamed.

    Sorting each directory by `name` for files and `name + "/"` for
    directories gives exactly the order of the full keys, so nothing needs to
    be collected first. Temp files and symlinks are skipped.
    """
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return
    items = []
    for entry in entries:
        if entry.name.startswith(TEMP_MARKER) or entry.is_symlink():
            continue
        if entry.is_dir():
            items.append((entry.name + "/", entry))
        elif entry.is_file():
            items.append((entry.name, entry))
    for sort_name, entry in sorted(items, key=lambda item: item[0]):
        if sort_name.endswith("/"):
            yield from _walk_sorted(Path(entry.path), key_prefix + sort_name)
        else:
            yield key_prefix + entry.name
