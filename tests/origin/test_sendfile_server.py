"""`abr api --server uvicorn`'s protocol answers `http.response.pathsend` with sendfile(2) (api/sendfile_server.py).

A real uvicorn server on loopback, in a thread of this process, on both event
loops uvicorn picks from (asyncio, and uvloop — its default where installed):
whole bodies, keep-alive after them, HEAD, a reader too slow for the socket's
buffer (the writability wait), a client that leaves mid-body, and a file that
shrank after its length was announced.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import httpx
import pytest
import uvicorn

import api.sendfile_server as sendfile_server
from api.origin_fastpath import ByPath
from api.sendfile_server import SendfileProtocol
from tests.conftest import free_port


def _make_app(root):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path = os.path.join(root, scope["path"].lstrip("/"))
        announced = int(dict(scope["headers"]).get(b"x-announce", str(os.path.getsize(path)).encode()))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(announced).encode()),
                                (b"x-pathsend", b"1" if "http.response.pathsend" in scope["extensions"] else b"0")]})
        await send({"type": "http.response.pathsend", "path": path})
    return app


@pytest.fixture(params=["asyncio", "uvloop"])
def server(request, tmp_path):
    files = {"big.bin": os.urandom(6_000_000), "small.bin": os.urandom(70_000)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    port = free_port()
    config = uvicorn.Config(_make_app(str(tmp_path)), host="127.0.0.1", port=port, http=SendfileProtocol,
                            loop=request.param, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", files, tmp_path
    srv.should_exit = True
    thread.join(10)


def test_whole_files_then_keep_alive_and_head(server):
    base, files, _ = server
    with httpx.Client(base_url=base) as client:
        for name in ("big.bin", "small.bin", "big.bin"):  # one connection, reused after each body
            answer = client.get(f"/{name}")
            assert answer.status_code == 200
            assert answer.headers["x-pathsend"] == "1"
            assert answer.content == files[name]
        head = client.head("/big.bin")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(files["big.bin"]))
        assert client.get("/small.bin").content == files["small.bin"]  # the connection survived the HEAD


def test_a_slow_reader_gets_every_byte(server, monkeypatch):
    base, files, _ = server
    waits = []
    real = sendfile_server._writable

    async def counted(loop, fd):
        waits.append(fd)
        await real(loop, fd)

    monkeypatch.setattr(sendfile_server, "_writable", counted)
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nhost: x\r\n\r\n")
        time.sleep(0.3)  # let the server fill the socket's buffers and block before anything is read
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65_536)
        head, body = data.split(b"\r\n\r\n", 1)
        while len(body) < len(files["big.bin"]):
            chunk = sock.recv(65_536)
            assert chunk, "the server closed before the whole body"
            body += chunk
    assert b"200 OK" in head.split(b"\r\n")[0]
    assert body == files["big.bin"]
    assert waits, "the socket's buffer never filled: the writability wait was not exercised"


def test_a_client_leaving_mid_body_does_not_hurt_the_next(server):
    base, files, _ = server
    host, port = base.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
            sock.sendall(b"GET /big.bin HTTP/1.1\r\nhost: x\r\n\r\n")
            sock.recv(1000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    answer = httpx.get(f"{base}/big.bin", timeout=10)
    assert answer.content == files["big.bin"]


def test_a_file_shorter_than_announced_closes_the_connection(server):
    base, files, _ = server
    announced = len(files["small.bin"]) + 1000
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{base}/small.bin", headers={"x-announce": str(announced)}, timeout=10)
    assert httpx.get(f"{base}/small.bin", timeout=10).content == files["small.bin"]


class _Quick:
    """An application that answers some requests before any ASGI task (`respond_now`), as AbrApp does."""

    def __init__(self, root):
        self.root = root
        self.asgi_calls = []
        self.quick_scopes = []

    def respond_now(self, scope):
        self.quick_scopes.append(scope)
        name = scope["path"].lstrip("/").removeprefix("play/")  # /play/…: what the protocol's quick lane takes
        if name == "routes":
            return None
        if name == "inline":
            return 200, [(b"content-length", b"5"), (b"x-quick", b"1")], b"hello"
        if name == "part":  # bytes 1,000,000-2,999,999 of big.bin
            return 206, [(b"content-length", b"2000000"), (b"x-quick", b"1")], \
                ByPath.part(os.path.join(self.root, "big.bin"), 1_000_000)
        path = os.path.join(self.root, name)
        return 200, [(b"content-length", str(os.path.getsize(path) if os.path.exists(path) else 7).encode()),
                     (b"x-quick", b"1")], path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.asgi_calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"no"})


@pytest.fixture(params=["asyncio", "uvloop"])
def quick_server(request, tmp_path, monkeypatch):
    files = {"big.bin": os.urandom(6_000_000), "small.bin": os.urandom(70_000)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    app = _Quick(str(tmp_path))
    port = free_port()
    taken = app.lane = []  # what each `_quick` call returned: True, the quick lane answered it
    real_quick = SendfileProtocol._quick

    def quick(self, data):
        answered = real_quick(self, data)
        taken.append(answered)
        return answered

    monkeypatch.setattr(SendfileProtocol, "_quick", quick)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=SendfileProtocol,
                                        loop=request.param, log_level="warning", lifespan="off",
                                        timeout_keep_alive=1))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    app.thread = thread.name
    yield f"http://127.0.0.1:{port}", files, tmp_path, app
    srv.should_exit = True
    thread.join(10)


def test_answers_given_before_any_asgi_task(quick_server):
    base, files, _, app = quick_server
    with httpx.Client(base_url=base) as client:
        for _ in range(2):  # keep-alive across quick answers, by path and inline
            for name in ("big.bin", "small.bin"):
                answer = client.get(f"/{name}")
                assert answer.headers["x-quick"] == "1" and answer.content == files[name]
            part = client.get("/part")
            assert part.status_code == 206 and part.content == files["big.bin"][1_000_000:3_000_000]
            inline = client.get("/inline")
            assert inline.content == b"hello" and inline.headers["server"] == "uvicorn" and "date" in inline.headers
        head = client.head("/big.bin")
        assert head.content == b"" and head.headers["content-length"] == str(len(files["big.bin"]))
        routed = client.get("/routes")  # respond_now declined: the application's ASGI answer
        assert routed.status_code == 404 and routed.content == b"no"
        gone = client.get("/vanished.bin")  # planned by path, but the file cannot be opened
        assert gone.status_code == 404
        assert client.get("/small.bin").content == files["small.bin"]
    assert app.asgi_calls == ["/routes", "/vanished.bin"]


def test_a_file_not_in_the_page_cache_is_read_off_the_event_loop(quick_server, monkeypatch):
    """The file reads as not cached (a stand-in for the kernel's answer: a test cannot empty the
    page cache reliably — POSIX_FADV_DONTNEED is advice, and the RWF_NOWAIT probe itself starts
    read-ahead); its first sendfile must then run in an executor thread, not on the event loop."""
    base, files, _, app = quick_server
    answers = iter([False, False])  # the protocol asks, then the task it hands the file to
    monkeypatch.setattr(sendfile_server, "_cached", lambda fd, end: next(answers, True))
    threads = []
    real = sendfile_server._send_some

    def counted(out, fd, pos, end):
        threads.append(threading.current_thread().name)
        return real(out, fd, pos, end)

    monkeypatch.setattr(sendfile_server, "_send_some", counted)
    assert httpx.get(f"{base}/big.bin", timeout=20).content == files["big.bin"]
    assert threads and threads[0] != app.thread  # the first sendfile ran in an executor thread, not the loop's


def test_the_page_cache_probe():
    """`_cached` reads one byte with RWF_NOWAIT: a file just written is in the page cache."""
    import tempfile
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 100_000)
        f.flush()
        assert sendfile_server._cached(f.fileno(), 100_000)


# -- the quick lane: /play/ requests answered from one read, before httptools ------------------------


def _raw(base: str, *sends: bytes, pause: float = 0.0, read_until_close: bool = False,
         expect: int = 1, timeout: float = 20) -> bytes:
    """Send `sends` on one connection (pausing between them), then read `expect` responses
    (or until the server closes); the raw bytes."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        for i, data in enumerate(sends):
            if i and pause:
                time.sleep(pause)
            sock.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not read_until_close and _complete_responses(got) >= expect:
                break
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        return got


def _complete_responses(data: bytes) -> int:
    """How many whole responses (head + Content-Length body) `data` holds."""
    count = 0
    while (end := data.find(b"\r\n\r\n")) >= 0:
        head = data[:end].lower()
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0]) if b"content-length: " in head else 0
        if len(data) < end + 4 + length:
            break
        data = data[end + 4 + length:]
        count += 1
    return count


def _bodies(data: bytes) -> list[tuple[bytes, bytes]]:
    """(head, body) of each whole response in `data`."""
    out = []
    while (end := data.find(b"\r\n\r\n")) >= 0:
        head = data[:end]
        lowered = head.lower()
        length = int(lowered.split(b"content-length: ")[1].split(b"\r\n")[0])
        out.append((head, data[end + 4 : end + 4 + length]))
        data = data[end + 4 + length:]
    return out


def _digests(responses: list[tuple[bytes, bytes]]) -> list[tuple[int, str]]:
    """(length, sha256) of each body: cheap to compare and to print."""
    return [(len(body), hashlib.sha256(body).hexdigest()) for _, body in responses]


def test_play_requests_take_the_quick_lane_with_keep_alive(quick_server):
    base, files, _, app = quick_server
    with httpx.Client(base_url=base) as client:
        for _ in range(3):
            assert client.get("/play/big.bin").content == files["big.bin"]
            assert client.get("/play/small.bin").content == files["small.bin"]
            part = client.get("/play/part")
            assert part.status_code == 206 and part.content == files["big.bin"][1_000_000:3_000_000]
            inline = client.get("/play/inline?token=abc", headers={"X-Request-Id": "r-1"})
            assert inline.content == b"hello" and inline.headers["server"] == "uvicorn" and "date" in inline.headers
        head = client.head("/play/big.bin")
        assert head.content == b"" and head.headers["content-length"] == str(len(files["big.bin"]))
        declined = client.get("/play/routes")  # respond_now declined: parsed again by httptools, then ASGI
        assert declined.status_code == 404 and declined.content == b"no"
    assert app.asgi_calls == ["/play/routes"]
    assert app.lane.count(True) == 13 and app.lane.count(False) == 1
    scope = next(s for s in app.quick_scopes if s["path"] == "/play/inline")
    assert scope["query_string"] == b"token=abc" and scope["method"] == "GET" and scope["http_version"] == "1.1"
    assert (b"x-request-id", b"r-1") in scope["headers"]  # names lower-cased, values as sent


@pytest.mark.parametrize("raw", [
    b"GET /play/small.bin HTTP/1.0\r\nHost: x\r\n\r\n",  # HTTP/1.0: httptools and uvicorn decide keep-alive
    b"GET /play/sm%61ll.bin HTTP/1.1\r\nHost: x\r\n\r\n",  # escaped: uvicorn unquotes it
    b"GET /play/small.bin HTTP/1.1\r\nHost : x\r\n\r\n",  # not a header as httptools reads it
    b"GET /play/small.bin HTTP/1.1\r\nContent-Length: 0\r\n\r\n",  # a body announced
], ids=["http10", "escaped", "space-before-colon", "content-length"])
def test_requests_the_quick_lane_leaves_to_httptools(quick_server, raw):
    base, files, _, app = quick_server
    got = _raw(base, raw, read_until_close=raw.startswith(b"GET /play/small.bin HTTP/1.0")
               or b"Host :" in raw, expect=1)
    assert app.lane == [False]
    if b"Host :" in raw:
        assert got.startswith(b"HTTP/1.1 400")  # httptools' verdict, not a guess of ours
    else:
        assert _bodies(got)[0][1] == files["small.bin"]


def test_pipelined_and_split_requests_are_answered_in_order(quick_server):
    base, files, _, app = quick_server
    one = b"GET /play/small.bin HTTP/1.1\r\nHost: x\r\n\r\n"
    two = b"GET /play/inline HTTP/1.1\r\nHost: x\r\n\r\n"
    got = _bodies(_raw(base, one + two + one, expect=3))  # one read, three requests: httptools' pipelining
    # Compared by digest, with the heads in the message: pytest's diff of megabyte bodies ran past the
    # 300 s timeout in one CI run and hid what had come back.
    assert _digests(got) == _digests([(b"", files["small.bin"]), (b"", b"hello"), (b"", files["small.bin"])]), \
        [head for head, _ in got]
    got = _bodies(_raw(base, one[:20], one[20:], two, pause=0.2, expect=2))  # a head split over two reads
    assert _digests(got) == _digests([(b"", files["small.bin"]), (b"", b"hello")]), [head for head, _ in got]
    assert app.asgi_calls == []


def test_connection_close_is_honoured(quick_server):
    base, files, _, app = quick_server
    got = _raw(base, b"GET /play/inline HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", read_until_close=True)
    head, body = _bodies(got)[0]
    assert body == b"hello" and b"connection: close" in head.lower() and app.lane == [True]


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(quick_server):
    base, _, _, app = quick_server
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for _ in range(3):  # requests inside the timeout (1 s here) keep it open
            sock.sendall(b"GET /play/inline HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).endswith(b"hello")
            time.sleep(0.6)
        started = time.monotonic()
        assert sock.recv(10) == b""  # then closed by the server, about a second after the last answer
        assert time.monotonic() - started < 3
    assert app.lane == [True] * 3


def test_requests_sent_during_a_task_sent_answer_wait_for_it(quick_server, monkeypatch):
    """A body sent from a task (not in the page cache): the next request, sent meanwhile, is held until it is out."""
    base, files, _, app = quick_server
    monkeypatch.setattr(sendfile_server, "_cached", lambda fd, end: False)
    got = _bodies(_raw(base, b"GET /play/big.bin HTTP/1.1\r\nHost: x\r\n\r\n",
                       b"GET /play/inline HTTP/1.1\r\nHost: x\r\n\r\n", pause=0.001, expect=2))
    assert [b for _, b in got] == [files["big.bin"], b"hello"]


def test_a_client_leaving_during_a_task_sent_answer_does_not_hurt_others(quick_server, monkeypatch):
    base, files, _, app = quick_server
    monkeypatch.setattr(sendfile_server, "_cached", lambda fd, end: False)
    host, port = base.removeprefix("http://").split(":")
    for _ in range(5):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /play/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(1000)
        # closed with most of the body unsent
    with httpx.Client(base_url=base) as client:
        for _ in range(3):
            assert client.get("/play/small.bin").content == files["small.bin"]
            assert client.get("/play/big.bin").content == files["big.bin"]


def test_the_responder_is_remembered_per_application_object_not_per_id():
    """Keyed by `id()`, a freed application's number could be reused by the next server's wrapper,
    which was then answered by the freed one's `respond_now` (another test's files, once in CI)."""
    import gc

    class App:
        def __init__(self, name):
            self.name = name

        def respond_now(self, scope):
            return self.name

    class Wrapper:  # as uvicorn's proxy-headers middleware wraps the application
        def __init__(self, app):
            self.app = app

    import weakref

    first = Wrapper(App("first"))
    assert sendfile_server._responder(first)(None) == "first" and first in sendfile_server._RESPONDERS
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None  # the cache did not keep it (nor its number) alive
    for name in ("second", "third"):
        assert sendfile_server._responder(Wrapper(App(name)))(None) == name


def test_an_answer_whose_head_is_still_queued_is_written_whole_and_in_order(quick_server, monkeypatch):
    """When the head waits in the transport's buffer, sendfile would overtake it: the body is written
    after it instead — for a range, the range's bytes (it once wrote the file's first bytes)."""
    base, files, _, app = quick_server
    monkeypatch.setattr(sendfile_server, "_head_queued", lambda transport: True)
    with httpx.Client(base_url=base) as client:
        part = client.get("/play/part")
        assert part.status_code == 206 and part.content == files["big.bin"][1_000_000:3_000_000]
        assert client.get("/play/small.bin").content == files["small.bin"]
        assert client.get("/big.bin").content == files["big.bin"]  # through ASGI (`send_file`) too
