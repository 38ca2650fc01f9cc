"""The local file behind a segment key, opened so that no symlink can lead elsewhere.

`validate_key` already refuses `..`, absolute keys and control characters;
what it cannot see is a symlink *inside* the storage directory (placed by
mistake, by a tool, or by someone with write access to the media) that
points outside it. So no component below the root may be a link: each
directory of the key must be a directory under `lstat`, and the last
component is opened with `O_NOFOLLOW`.
"""

from __future__ import annotations

import os
import stat as stat_mode
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import MissingObject
from core.storage import ObjectInfo

READ_CHUNK = 4 * 1024 * 1024
MAX_CACHED_READ = 8 * 1024 * 1024  # a larger copy (~1 ms) should leave the event loop anyway
_NOWAIT = getattr(os, "RWF_NOWAIT", None)


@dataclass
class LocalFile:
    fd: int
    info: ObjectInfo

    def read(self, start: int, length: int) -> bytes:
        """`length` bytes from `start` (short only if the file shrank meanwhile)."""
        parts, end = [], start + length
        while start < end:
            chunk = os.pread(self.fd, min(READ_CHUNK, end - start), start)
            if not chunk:
                break
            parts.append(chunk)
            start += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_cached(self, start: int, length: int) -> bytes | None:
        """The bytes if they are all in the page cache right now, else None: never waits for a disk.

        `preadv` with `RWF_NOWAIT` (Linux 4.14+) gives EAGAIN, or a short
        read, instead of blocking, so the fast path can read on the event
        loop. A page marked for readahead also gives EAGAIN until a normal
        read passes it; filesystems without the flag (EOPNOTSUPP) and other
        platforms always give None. The read lands in a buffer reused per
        thread: a fresh 680 KB `bytearray` costs ~0.7 ms of page faults and
        zeroing here, the reused one ~20 µs, plus the copy into `bytes`.
        """
        if _NOWAIT is None or length > MAX_CACHED_READ:
            return None
        view = _buffer(length)[:length]
        try:
            done = os.preadv(self.fd, [view], start, _NOWAIT)
        except OSError:  # BlockingIOError (not cached), EOPNOTSUPP, ...
            return None
        return bytes(view) if done == length else None

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


_local = threading.local()


def _buffer(size: int) -> memoryview:
    """This thread's read buffer, grown to at least `size` bytes."""
    view = getattr(_local, "view", None)
    if view is None or len(view) < size:
        view = _local.view = memoryview(bytearray(max(size, 1 << 20)))
    return view


def _plain_directories(root: str, key: str) -> bool:
    """Whether every directory of `key` below `root` is a real directory (no link, no `.`/`..`).

    The root itself may sit behind links (a data dir on a mounted volume);
    nothing below it may. One `lstat` per directory of the key (3 for a
    segment) instead of `os.path.realpath` of the whole path, which walks
    every component from `/` in Python and was ~6 % of a worker's time on
    the realistic origin bench. The file itself is opened with `O_NOFOLLOW`.
    """
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return False
    directory = root
    for part in parts[:-1]:
        directory = f"{directory}{part}/" if directory.endswith("/") else f"{directory}/{part}/"
        try:
            if not stat_mode.S_ISDIR(os.lstat(directory[:-1]).st_mode):  # a link is not S_ISDIR under lstat
                return False
        except OSError:
            return False
    return True


# Directories of keys that passed `_plain_directories` lately → when (monotonic). nginx's
# open_file_cache_valid, for the link check only: a file answered by path is re-`lstat`ed
# every time, and the server reopens it by path anyway, so this adds no new window of a
# kind that was not there (a directory swapped for a link between check and open).
DIRECTORY_CHECK_SECONDS = 1.0
_MAX_CHECKED = 16384
_checked: dict[str, float] = {}


def stat_local(path: str, key: str) -> ObjectInfo:
    """`open_local(path, key).info` without opening the file: for an answer the server sends by path.

    One `lstat` of the file (a link is not S_ISREG under `lstat`, as `O_NOFOLLOW` refuses it),
    and the directory check of `open_local`, remembered per directory for
    `DIRECTORY_CHECK_SECONDS`. `open_local` costs open, fstat, close and one `lstat` per
    directory: on the realistic origin bench most segment answers go by path and need
    only the size, mtime and inode. MissingObject as `open_local`.
    """
    root = path[: len(path) - len(key)]
    directory = path[: path.rfind("/")]
    now = time.monotonic()
    checked = _checked.get(directory)
    if checked is None or now - checked > DIRECTORY_CHECK_SECONDS:
        if not path.endswith(key) or not _plain_directories(root, key):
            raise MissingObject(key)
        if len(_checked) >= _MAX_CHECKED:
            _checked.clear()
        _checked[directory] = now
    elif not path.endswith(key):  # the directories were checked; a last part of "", "." or ".." is no file
        raise MissingObject(key)
    try:
        st = os.lstat(path)
    except OSError:
        raise MissingObject(key) from None
    if not stat_mode.S_ISREG(st.st_mode):
        raise MissingObject(key)
    return _info(st)


def _info(st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        size=st.st_size,
        mtime=datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC),
        etag=f"{st.st_size:x}-{st.st_mtime_ns:x}-{st.st_ino:x}",
    )


def open_local(path: Path, key: str) -> LocalFile:
    """Open the storage file `path` (which is `<root>/<key>`); NotFound if missing or not plain.

    The etag is computed like `LocalStorage.stat` (`<size>-<mtime_ns>-<inode>`
    in hex), from the opened descriptor, so it describes the bytes served.
    """
    text = str(path)
    root = text[: len(text) - len(key)]
    if not text.endswith(key) or not _plain_directories(root, key):
        raise MissingObject(key)
    try:
        fd = os.open(text, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        raise MissingObject(key) from None
    st = os.fstat(fd)
    if not stat_mode.S_ISREG(st.st_mode):
        os.close(fd)
        raise MissingObject(key)
    return LocalFile(fd, _info(st))
