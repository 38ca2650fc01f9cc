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
returns EAGAIN; the rest is sent from a task on a `dup` of the socket's
descriptor, and the wait for writability is registered on that: the event
loop refuses a second reader/writer on the descriptor its transport owns
(asyncio and uvloop alike), and if the transport closes meanwhile its number
may be reused by another connection, the duplicate's cannot.

Before any of that, a request the origin's fast path can answer from memory
is answered here, in the protocol, with no ASGI task at all: the application
(`AbrApp.respond_now`, api/app.py) returns status, headers and body (bytes,
or a path to send), and the protocol writes them. On bench/origin.py's list
~70 % of the server's Python time per segment was the ASGI round (a task, the
coroutine chain through the middleware, uvicorn's per-header checks and its
`send`), not the answer itself; everything else — routes, misses, uploads,
errors — still goes through the application as ASGI.

And before httptools: a read that holds exactly one GET/HEAD head for
`/play/…` (what a player sends) is parsed here in a few lines and, when the
application answers it now, answered with no parser callbacks, no
`RequestResponseCycle` and no per-request keep-alive timer (`_quick`); any
other read — and any request the application declines — goes to httptools
and uvicorn as before. A quick answer still being sent holds back what the
client sends next (pipelining) until it is out, as uvicorn's cycles do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

log = logging.getLogger(__name__)

PATHSEND = "http.response.pathsend"
_EXTENSIONS = {PATHSEND: {}}  # shared by every scope; the application only reads it


class SendfileProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` whose requests advertise and answer `http.response.pathsend`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_message = False  # httptools is inside a request (its head or body): it must see what follows
        self._sending = False  # a quick-lane answer's body is still going out, in a task
        self._held: list[bytes] = []  # what the client sent meanwhile (pipelined), fed in after it
        self._close_after = False  # the server is shutting down: close once that answer is out
        self._idle_since: float | None = None  # the quick lane's keep-alive clock (None: busy)
        self._idle_timer: asyncio.TimerHandle | None = None
        self._asgi = {"version": self.asgi_version, "spec_version": "2.3"}  # every quick scope's; only read

    # -- the quick lane: a whole GET/HEAD of /play/… answered from the bytes of one read -----------

    def data_received(self, data: bytes) -> None:
        if self._sending:
            self._held.append(data)
            self.flow.pause_reading()
            return
        self._idle_since = None
        if (data[-4:] == b"\r\n\r\n" and data.startswith(_QUICK_STARTS) and not self._in_message
                and (self.cycle is None or self.cycle.response_complete) and not self.pipeline
                and self._quick(data)):
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._in_message = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._in_message = False
        super().on_message_complete()

    def _quick(self, data: bytes) -> bool:
        """Answer `data`, one whole request head, without httptools, a cycle or an ASGI task; False: not here.

        Why: with every segment sent by sendfile, what was left of the server's
        CPU per segment on bench/origin.py was mostly Python around the answer —
        httptools' callback per header, the scope with its state copy, the
        `RequestResponseCycle` and its `asyncio.Event`, a keep-alive timer made
        and cancelled per request. A player's GET is one read that holds one
        request head and nothing else; that is all this lane takes. Anything
        else — a body, `Expect`, an upgrade, an escaped path, HTTP/1.0,
        pipelined requests, a request split over reads, any header it does not
        parse as httptools would — goes to httptools and uvicorn unchanged, as
        does every request the application does not answer now.
        """
        if self.root_path or self.limit_concurrency is not None:
            return False
        respond = _responder(self.app)
        if respond is None:
            return False
        lines = data[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1":
            return False
        target = parts[1]
        if b"%" in target or b"#" in target:
            return False
        keep_alive = True
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or b" " in name or b"\t" in name:
                return False  # obs-fold, a space before the colon, …: httptools decides
            name = name.lower()
            if name in _NOT_QUICK:
                return False
            value = value.strip(b" \t")
            if name == b"connection" and b"close" in value.lower():
                keep_alive = False
            headers.append((name, value))
        path, _, query = target.partition(b"?")
        scope = {"type": "http", "asgi": self._asgi,
                 "http_version": "1.1", "server": self.server, "client": self.client, "scheme": self.scheme,
                 "root_path": "", "headers": headers, "method": parts[0].decode("ascii"),
                 "path": path.decode("ascii"), "raw_path": path, "query_string": query, "extensions": _EXTENSIONS}
        try:
            found = respond(scope)
        except Exception:  # noqa: BLE001 - the application answers it the ordinary way
            log.exception("answering %s in the protocol failed; handing it to the application", scope["path"])
            return False
        if found is None:
            return False
        self._unset_keepalive_if_required()  # uvicorn's timer from an earlier ordinary answer
        return self._write(scope, keep_alive, *found, finish=self._quick_finish, hold=True)

    def _quick_finish(self, keep_alive: bool, ok: bool) -> None:
        self._sending = False
        self.server_state.total_requests += 1
        if not ok or not keep_alive or self._close_after:
            self.transport.close()
            return
        if self.transport.is_closing():
            return
        # The keep-alive timeout as uvicorn keeps it, without a timer made and cancelled per request:
        # one timer per idle stretch, which looks at when the connection last finished an answer.
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)
        if self._held:
            held = b"".join(self._held)
            self._held.clear()
            self.flow.resume_reading()
            self.data_received(held)

    def _idle_check(self) -> None:
        self._idle_timer = None
        since = self._idle_since
        if since is None or self.transport.is_closing():
            return  # busy: whichever answer ends next arms a timer again
        left = since + self.timeout_keep_alive - self.loop.time()
        if left <= 0:
            self.transport.close()
        else:
            self._idle_timer = self.loop.call_later(left, self._idle_check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._held.clear()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._sending:
            self._close_after = True
            return
        super().shutdown()

    # -- answers planned by the application before any ASGI task ------------------------------------

    def _start_asgi_task(self, cycle, app) -> None:
        scope = cycle.scope
        scope["extensions"] = {**scope["extensions"], **_EXTENSIONS} if "extensions" in scope else _EXTENSIONS
        if app is self.app and (respond := _responder(app)) is not None:
            try:
                found = respond(scope)
            except Exception:  # noqa: BLE001 - the application answers it the ordinary way
                log.exception("answering %s in the protocol failed; handing it to the application", scope["path"])
                found = None
            if found is not None and self._write(scope, cycle.keep_alive, *found,
                                                 finish=lambda keep_alive, ok: self._complete(cycle, ok)):
                cycle.response_started = True
                return
        plain = cycle.send

        async def send(message, _cycle=cycle, _plain=plain) -> None:
            if message["type"] == PATHSEND:
                await send_file(_cycle, _plain, message["path"])
            else:
                await _plain(message)

        cycle.send = send  # run_asgi passes `self.send` to the application: the instance's attribute wins
        super()._start_asgi_task(cycle, app)

    def _write(self, scope, keep_alive: bool, status: int, headers, body, *, finish, hold: bool = False) -> bool:
        """Write a whole response: `body` is bytes, or (a `str`) the path of a file to send.

        `finish(keep_alive, ok)` once it is all out (now, or from a task); `ok` False: the
        connection must close (a client that left, a file shorter than announced). `hold`: what
        the client sends while a task sends the body waits for it (the quick lane has no cycle
        to queue it).
        False, having written nothing, when that file cannot be opened (deleted since its
        answer was planned): the application then answers the request the ordinary way.
        """
        method = scope["method"]
        fd = None
        if isinstance(body, str) and method != "HEAD":
            try:
                fd = os.open(body, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
        if self.access_log and self.access_logger.isEnabledFor(logging.INFO):  # as uvicorn's own `send` logs
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
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        transport = self.transport
        if fd is None:
            head.append(b"" if method == "HEAD" else body)
            transport.write(b"".join(head))
            finish(keep_alive, True)
            return True
        transport.write(b"".join(head))
        sock = transport.get_extra_info("socket")
        pos = getattr(body, "start", 0)  # a range of the file (api/origin_fastpath.py ByPath.part)
        end = pos + count
        if sock is None or _head_queued(transport):
            # The head still waits in the transport's buffer: sendfile would overtake it. The bytes of
            # the answer (a range: from its start, not the file's) go after it the ordinary way.
            transport.write(os.pread(fd, count, pos) if count else b"")
            os.close(fd)
            finish(keep_alive, True)
            return True
        out = sock.fileno()
        try:
            if _cached(fd, end):
                pos = _send_some(out, fd, pos, end)
            if pos < end and not _at_eof(fd, pos):
                # Not all in the page cache (the disk is read in a thread, as nginx's `aio threads`
                # does, so no other connection waits for it), or the socket's buffer is full.
                # The task sends on its own duplicate of the socket's descriptor: if the transport
                # closes meanwhile (the client left), the number it had may be reused by another
                # connection, the duplicate cannot.
                self._sending = hold
                task = self.loop.create_task(self._send_rest(keep_alive, os.dup(out), fd, pos, end, finish))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return True
        except (BrokenPipeError, ConnectionResetError):
            pos = -1
        os.close(fd)
        finish(keep_alive, pos >= end)
        return True

    async def _send_rest(self, keep_alive: bool, out: int, fd: int, pos: int, end: int, finish) -> None:
        try:
            pos = await _sendfile(self.loop, out, fd, pos, end)
        except (BrokenPipeError, ConnectionResetError):
            pos = -1
        finally:
            os.close(fd)
            os.close(out)
        finish(keep_alive, pos >= end)

    def _complete(self, cycle, ok: bool = True) -> None:
        """What uvicorn does when a response's last body message is sent."""
        if not ok:
            self.transport.close()
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        if not ok:
            return
        if self.pipeline:
            self.loop.call_soon(cycle.on_response)  # the next pipelined request: not from inside this one
        else:
            cycle.on_response()


# A request the quick lane may take starts so; these headers send it to httptools.
_QUICK_STARTS = (b"GET /play/", b"HEAD /play/")
_NOT_QUICK = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade"})


# Keyed by the application object itself, weakly: keyed by `id(app)`, a later server's application
# could get the number of an earlier one that was freed, and be answered by the earlier one's
# `respond_now` (seen once in CI as a pipelined request answered with another test's file).
_RESPONDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _responder(app):
    """`app`'s `respond_now` (api/app.py `AbrApp`), found through the server's wrappers; None if it has none."""
    try:
        return _RESPONDERS[app]
    except KeyError:
        pass
    found, inner = None, app
    for _ in range(8):  # uvicorn's proxy-headers middleware, then the app
        found = getattr(inner, "respond_now", None)
        inner = getattr(inner, "app", None)
        if found is not None or inner is None:
            break
    try:
        _RESPONDERS[app] = found
    except TypeError:  # an application that cannot be weakly referenced: found again next time
        pass
    return found


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
        if cycle.chunked_encoding or sock is None or _head_queued(transport):
            # No length announced, a transport without a socket, or the headers still waiting in
            # the transport's buffer (sendfile would overtake them): the bytes go the ordinary way.
            await plain({"type": "http.response.body", "body": _read_all(fd)})
            return
        out = os.dup(sock.fileno())  # its own descriptor: the transport's may close (and be reused) meanwhile
        try:
            sent = await _sendfile(asyncio.get_running_loop(), out, fd, 0, count)
        finally:
            os.close(out)
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


def _head_queued(transport) -> bool:
    """Whether bytes written to `transport` still wait in its buffer (a full socket buffer, a slow client)."""
    return bool(transport.get_write_buffer_size())


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
    """Wait until socket `fd` can take more bytes (or has failed: the next send says which).

    `fd` is the caller's own duplicate of the transport's descriptor: the event loop refuses a
    second writer on a descriptor its transport owns (asyncio and uvloop alike), not on another
    number for the same socket.
    """
    ready = loop.create_future()
    loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)
