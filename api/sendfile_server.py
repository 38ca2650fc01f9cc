"""uvicorn's httptools protocol with the ASGI `http.response.pathsend` extension, sent with sendfile(2).

Why: on bench/origin.py's realistic working set the origin's segment throughput
was a third of nginx's with the same two processes, and the profile said where
it went: Granian answers `pathsend` by reading the file 128 KB at a time in
tokio's blocking threads and writing that copy to the socket (~55 % of its CPU),
and uvicorn had no `pathsend` at all (every segment's bytes through Python).
nginx answers the same request with sendfile(2): the kernel moves page-cache
pages to the socket, no copy into user space and no thread hop. This protocol
gives uvicorn the same: the application (api/origin_fastpath.py, Starlette's
`FileResponse`) hands over a path, and the body goes from the page cache to
the socket in the kernel.

What it relies on in uvicorn (pinned in pyproject.toml, exercised by
tests/origin/test_sendfile_server.py against a real server): the request
cycle's `send`, its `transport`, `chunked_encoding` and
`expected_content_length`; the response is finished by uvicorn's own code (an
empty last body message), so keep-alive, pipelining, `Connection: close` and
the access log behave as for any other response.

Where the socket's buffer is full (a slow client, a large file) sendfile
returns EAGAIN; the wait for writability is registered on a `dup` of the
socket's descriptor, because the event loop refuses a second reader/writer on
the descriptor its transport owns (asyncio and uvloop alike) — the kernel polls
the same socket either way.

Before any of that, a request the origin's fast path can answer from memory
is answered here, in the protocol, with no ASGI task at all: the application
(`AbrApp.respond_now`, api/app.py) returns status, headers and body (bytes,
or a path to send), and the protocol writes them. On bench/origin.py's list
~70 % of the server's Python time per segment was the ASGI round (a task, the
coroutine chain through the middleware, uvicorn's per-header checks and its
`send`), not the answer itself; everything else — routes, misses, uploads,
errors — still goes through the application as ASGI.
"""

from __future__ import annotations

import asyncio
import logging
import os

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

log = logging.getLogger(__name__)

PATHSEND = "http.response.pathsend"
_EXTENSIONS = {PATHSEND: {}}  # shared by every scope; the application only reads it


class SendfileProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` whose requests advertise and answer `http.response.pathsend`."""

    def _start_asgi_task(self, cycle, app) -> None:
        scope = cycle.scope
        scope["extensions"] = {**scope["extensions"], **_EXTENSIONS} if "extensions" in scope else _EXTENSIONS
        if app is self.app and (respond := _responder(app)) is not None:
            try:
                found = respond(scope)
            except Exception:  # noqa: BLE001 - the application answers it the ordinary way
                log.exception("answering %s in the protocol failed; handing it to the application", scope["path"])
                found = None
            if found is not None and self._answer_now(cycle, *found):
                return
        plain = cycle.send

        async def send(message, _cycle=cycle, _plain=plain) -> None:
            if message["type"] == PATHSEND:
                await send_file(_cycle, _plain, message["path"])
            else:
                await _plain(message)

        cycle.send = send  # run_asgi passes `self.send` to the application: the instance's attribute wins
        super()._start_asgi_task(cycle, app)

    def _answer_now(self, cycle, status: int, headers, body) -> bool:
        """Write a whole response: `body` is bytes, or (a `str`) the path of a file to send.

        False, having written nothing, when that file cannot be opened (deleted since its
        answer was planned): the application then answers the request the ordinary way.
        """
        scope = cycle.scope
        method = scope["method"]
        fd = None
        if isinstance(body, str) and method != "HEAD":
            try:
                fd = os.open(body, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
        if self.access_log:  # as uvicorn's own `send` logs a response
            self.access_logger.info('%s - "%s %s HTTP/%s" %d', get_client_addr(scope), method,
                                    get_path_with_query_string(scope), scope["http_version"], status)
        # The headers come from the origin's own planners: uvicorn's per-header checks are for
        # what an arbitrary application sends.
        head = [STATUS_LINE[status]]
        count = 0
        for name, value in (*self.server_state.default_headers, *headers):
            head += (name, b": ", value, b"\r\n")
            if name == b"content-length":
                count = int(value)
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        cycle.response_started = True
        transport = self.transport
        if fd is None:
            head.append(b"" if method == "HEAD" else body)
            transport.write(b"".join(head))
            self._complete(cycle)
            return True
        transport.write(b"".join(head))
        sock = transport.get_extra_info("socket")
        if sock is None or transport.get_write_buffer_size():
            transport.write(_read_all(fd)[:count])  # headers still queued: sendfile would overtake them
            os.close(fd)
            self._complete(cycle)
            return True
        out = sock.fileno()
        pos = getattr(body, "start", 0)  # a range of the file (api/origin_fastpath.py ByPath.part)
        end = pos + count
        try:
            if _cached(fd, end):
                pos = _send_some(out, fd, pos, end)
            if pos < end and not _at_eof(fd, pos):
                # Not all in the page cache (the disk is read in a thread, as nginx's `aio threads`
                # does, so no other connection waits for it), or the socket's buffer is full.
                task = self.loop.create_task(self._send_rest(cycle, out, fd, pos, end))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return True
        except (BrokenPipeError, ConnectionResetError):
            pos = -1
        os.close(fd)
        if pos < end:
            transport.close()  # a file shorter than announced, or a client that left
        else:
            self._complete(cycle)
        return True

    async def _send_rest(self, cycle, out: int, fd: int, pos: int, end: int) -> None:
        try:
            pos = await _sendfile(self.loop, out, fd, pos, end)
        except (BrokenPipeError, ConnectionResetError):
            pos = -1
        finally:
            os.close(fd)
        if pos < end:
            self.transport.close()
            return
        self._complete(cycle)

    def _complete(self, cycle) -> None:
        """What uvicorn does when a response's last body message is sent."""
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        if self.pipeline:
            self.loop.call_soon(cycle.on_response)  # the next pipelined request: not from inside this one
        else:
            cycle.on_response()


_RESPONDERS: dict[int, object] = {}


def _responder(app):
    """`app`'s `respond_now` (api/app.py `AbrApp`), found through the server's wrappers; None if it has none."""
    key = id(app)
    if key not in _RESPONDERS:
        found, inner = None, app
        for _ in range(8):  # uvicorn's proxy-headers middleware, then the app
            found = getattr(inner, "respond_now", None)
            inner = getattr(inner, "app", None)
            if found is not None or inner is None:
                break
        _RESPONDERS[key] = found
    return _RESPONDERS[key]


async def send_file(cycle, plain, path: str) -> None:
    """The body of the response `cycle` has started: the file at `path`, whole.

    The application promised its length in Content-Length (as `pathsend` asks);
    a file that has since shrunk cannot keep that promise, so the connection
    is closed rather than left waiting for bytes that will not come.
    """
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError(f"Unexpected ASGI message {PATHSEND!r} outside a response body.")
    if cycle.disconnected:
        return
    if cycle.flow.write_paused:
        await cycle.flow.drain()
    transport = cycle.transport
    if cycle.scope["method"] == "HEAD":
        await plain({"type": "http.response.body", "body": b""})
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        count = cycle.expected_content_length
        sock = transport.get_extra_info("socket")
        if cycle.chunked_encoding or sock is None or transport.get_write_buffer_size():
            # No length announced, a transport without a socket, or the headers still waiting in
            # the transport's buffer (sendfile would overtake them): the bytes go the ordinary way.
            await plain({"type": "http.response.body", "body": _read_all(fd)})
            return
        sent = await _sendfile(asyncio.get_running_loop(), sock.fileno(), fd, 0, count)
    except (BrokenPipeError, ConnectionResetError):
        transport.close()  # the client went away; uvicorn's connection_lost marks the cycle disconnected
        return
    finally:
        os.close(fd)
    if sent < count:
        transport.close()
        return
    cycle.expected_content_length = 0
    await plain({"type": "http.response.body", "body": b""})  # uvicorn completes the response


async def _sendfile(loop: asyncio.AbstractEventLoop, out: int, fd: int, pos: int, end: int) -> int:
    """Send bytes [pos, end) of `fd` to socket `out` (non-blocking); where it stopped: `end`, or the file's end.

    While the bytes to send are not in the page cache, each sendfile runs in a worker thread:
    reading the disk must not stall the event loop's other connections.
    """
    while pos < end:
        if _cached(fd, end):
            pos = _send_some(out, fd, pos, end)
        else:
            pos = await loop.run_in_executor(None, _send_some, out, fd, pos, end)
        if pos < end:
            if _at_eof(fd, pos):
                break
            await _writable(loop, out)
    return pos


def _send_some(out: int, fd: int, pos: int, end: int) -> int:
    """sendfile from `pos` until `end`, a full socket buffer (EAGAIN) or the file's end; the new `pos`."""
    try:
        while pos < end:
            n = os.sendfile(out, fd, pos, end - pos)
            if n == 0:
                break
            pos += n
    except BlockingIOError:
        pass
    return pos


def _at_eof(fd: int, pos: int) -> bool:
    return os.fstat(fd).st_size <= pos


_PROBE = bytearray(1)


def _cached(fd: int, end: int) -> bool:
    """Whether the byte before `end` is in the page cache (read-ahead fills a segment from its start)."""
    try:
        os.preadv(fd, [_PROBE], max(end - 1, 0), os.RWF_NOWAIT)
    except BlockingIOError:
        return False
    except (AttributeError, OSError):
        return True  # no RWF_NOWAIT here: send from the event loop, as nginx without aio does
    return True


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Wait until socket `fd` can take more bytes (or has failed: the next send says which)."""
    watched = os.dup(fd)
    ready = loop.create_future()
    loop.add_writer(watched, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(watched)
        os.close(watched)


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
