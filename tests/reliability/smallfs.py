"""A small filesystem on a directory, to fill up: a real ENOSPC, as a full disk gives.

Tried in order:
1. fuse2fs (Debian's `fuse2fs`, in .ci/run's APT_PACKAGES) serving an ext2
   image made by `mke2fs` in a plain file: no block device, no loop device,
   only /dev/fuse.
2. a tmpfs mount (`mount -t tmpfs`), where the machine lets root mount.

Other ways do not give what the test needs: a loop-mounted image needs mount
(and a free loop device) as well; RLIMIT_FSIZE limits one file's size and
fails with EFBIG ("File too large", or SIGXFSZ), not ENOSPC, and does not
stop other files from growing; /dev/shm is shared by the whole machine and
far too large to fill.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _run(argv: list[str]) -> str | None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{argv[0]}: {exc}"
    return None if result.returncode == 0 else f"{' '.join(argv[:2])}: {result.stderr.strip() or result.returncode}"


def _is_mount(path: Path) -> bool:
    return any(line.split()[1] == str(path) for line in Path("/proc/mounts").read_text().splitlines())


def _fuse2fs(path: Path, size: int) -> str | None:
    fuse2fs, mke2fs = shutil.which("fuse2fs"), shutil.which("mke2fs") or "/usr/sbin/mke2fs"
    if fuse2fs is None:
        return "fuse2fs is not installed (Debian: apt-get install fuse2fs)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    image = path.with_name(path.name + ".ext2")
    with open(image, "wb") as fh:
        fh.truncate(size)
    why = _run([mke2fs, "-q", "-F", "-t", "ext2", "-b", "1024", "-m", "0", str(image)])
    if why is None:
        # fakeroot: files belong to whoever writes them; the daemon detaches once mounted.
        why = _run([fuse2fs, str(image), str(path), "-o", "fakeroot"])
    deadline = time.monotonic() + 5
    while why is None and not _is_mount(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return why if why is not None or _is_mount(path) else "fuse2fs did not mount"


def _tmpfs(path: Path, size: int) -> str | None:
    return _run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])


@contextmanager
def small_filesystem(path: Path, size: int) -> Iterator[str | None]:
    """Mount a filesystem of about `size` bytes on `path`; yields None, or why none could be made."""
    path.mkdir(parents=True, exist_ok=True)
    reasons = []
    for make in (_fuse2fs, _tmpfs):
        why = make(path, size)
        if why is None:
            break
        reasons.append(why)
    else:
        yield "; ".join(reasons)
        return
    try:
        yield None
    finally:
        subprocess.run(["umount", str(path)], capture_output=True, timeout=20, check=False)
        if _is_mount(path):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20, check=False)


def fill(directory: Path, leave: int) -> None:
    """Fill the filesystem of `directory` until only about `leave` bytes are free."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    with open(directory / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
