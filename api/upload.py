"""Stream a multipart upload straight to a file on disk, with flat memory.

Starlette's `request.form()` spools parts into anonymous temporary files that
then have to be copied; python-multipart's streaming parser lets the `file`
part go directly into a named file in our data directory, which storage can
then move into place without another copy.

A process killed mid-body (OOM, SIGKILL, power) leaves its `upload-*` file
behind. Each file is held under a shared `flock` from its creation until the
request is done with it, and `sweep_stale_uploads` (run at API start-up)
deletes only files that nobody holds and that are older than the sweeping
process, so a sibling API process's upload in flight is never touched.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from core.errors import BadRequest, TooLarge

MAX_FIELD_BYTES = 64 * 1024  # the `settings` JSON and other small fields
MAX_FORM_FIELDS = 16  # parts besides the file: a form has a handful, a flood of them is held in memory
MAX_PART_HEADER_BYTES = 16 * 1024  # all header lines of one part together
UPLOAD_PREFIX = "upload-"
log = logging.getLogger(__name__)


@dataclass
class ReceivedForm:
    file_path: Path | None = None
    filename: str | None = None
    file_size: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    lock_fd: int | None = None  # holds the temp file against another process's start-up sweep

    def discard(self) -> None:
        if self.file_path is not None:
            self.file_path.unlink(missing_ok=True)
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


async def receive_multipart(request: Request, *, tmp_dir: Path, max_bytes: int) -> ReceivedForm:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise BadRequest("expected multipart/form-data with a 'file' part")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + MAX_FIELD_BYTES:
        raise TooLarge(f"upload is larger than the limit of {max_bytes} bytes")

    tmp_dir.mkdir(parents=True, exist_ok=True)
    form = ReceivedForm()
    state: dict = {"headers": {}, "name": None, "field": None, "fh": None, "header_field": b"", "header_value": b""}

    def on_part_begin() -> None:
        state.update(headers={}, name=None, field=None, fh=None, header_bytes=0)

    def count_header(size: int) -> None:
        state["header_bytes"] += size
        if state["header_bytes"] > MAX_PART_HEADER_BYTES:
            raise TooLarge(f"a form part's headers are larger than {MAX_PART_HEADER_BYTES} bytes")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        count_header(end - start)
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        count_header(end - start)
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["header_field"].lower()] = state["header_value"]
        state["header_field"] = state["header_value"] = b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode(errors="replace")
        state["name"] = name
        if name != "file" and b"filename" in disp:
            # `-F video=@clip.mp4`: a file under another name would otherwise be read as a small
            # text field and refused as "too large", which says nothing about the real mistake.
            raise BadRequest(f"the media goes in the form field 'file', not {name!r} (curl: -F file=@{_shown(disp)})")
        if name == "file":
            if form.file_path is not None:
                raise BadRequest("only one 'file' part is accepted")
            form.filename = disp.get(b"filename", b"").decode(errors="replace")[:255] or None
            form.file_path = tmp_dir / f"{UPLOAD_PREFIX}{uuid.uuid4().hex}"
            state["fh"] = open(form.file_path, "wb")  # noqa: SIM115 - closed in on_part_end / finally
            form.lock_fd = os.open(form.file_path, os.O_RDONLY)
            fcntl.flock(form.lock_fd, fcntl.LOCK_SH)
        else:
            state["fields"] = state.get("fields", 0) + 1
            if state["fields"] > MAX_FORM_FIELDS:
                raise TooLarge(f"the form has more than {MAX_FORM_FIELDS} fields besides the file")
            state["field"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if state["fh"] is not None:
            form.file_size += len(chunk)
            if form.file_size > max_bytes:
                raise TooLarge(f"upload is larger than the limit of {max_bytes} bytes")
            state["fh"].write(chunk)
        elif state["field"] is not None:
            state["field"] += chunk
            if len(state["field"]) > MAX_FIELD_BYTES:
                raise TooLarge(f"form field {state['name']!r} is too large")

    def on_part_end() -> None:
        if state["fh"] is not None:
            state["fh"].close()
            state["fh"] = None
        elif state["field"] is not None:
            form.fields[state["name"]] = state["field"].decode(errors="replace")

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except BaseException as exc:
        if state["fh"] is not None:
            state["fh"].close()
        form.discard()
        if isinstance(exc, (BadRequest, TooLarge)):
            raise
        if isinstance(exc, Exception):
            raise BadRequest(f"malformed multipart body: {exc}") from exc
        raise
    if form.file_path is not None and state["fh"] is not None:
        state["fh"].close()
        form.discard()
        raise BadRequest("the upload ended before the 'file' part was complete")
    return form


def _shown(disp: dict) -> str:
    name = disp.get(b"filename", b"").decode(errors="replace")
    return "".join(ch for ch in name if ch.isprintable() and ch not in "'\"")[:80] or "FILE"


def sweep_stale_uploads(data_dir: Path, *, before: float | None = None) -> int:
    """Delete upload temp files left by a killed process; returns how many.

    Only files last written before `before` (default: now, which at start-up
    is before this process received anything) and held by no live request
    are removed.
    """
    tmp_dir = data_dir / "tmp"
    if before is None:
        before = time.time()
    removed = 0
    try:
        candidates = list(tmp_dir.glob(f"{UPLOAD_PREFIX}*"))
    except OSError:
        return 0
    for path in candidates:
        try:
            if path.stat().st_mtime >= before:
                continue
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live request holds it
        finally:
            os.close(fd)  # closing releases our lock; unlinking a file nobody held is safe
        path.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.warning("removed %d upload temp file(s) left by an interrupted API process", removed)
    return removed


def new_tmp_dir(data_dir: Path) -> Path:
    path = data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path
