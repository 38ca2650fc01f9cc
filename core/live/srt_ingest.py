"""SRT push ingest: many publishers on one UDP port, routed by `streamid`, refused at the handshake.

    encoder ──SRT (libsrt, ARQ, AES)──▶ SrtIngest (one UDP port)
                                          │ listen callback: streamid → key → gate.check (the API,
                                          │ read-only) → accept/reject; once connected: gate.admit
                                          ▼ (the API's on_publish, like nginx-rtmp's)
                        per publisher: receive thread ──▶ relay readers (bounded queues)
                                                             ▲
    live worker ──HTTP GET /srt/<key>.ts (loopback relay)───┘

The listen callback runs on libsrt's receive thread before any media flows:
an unknown, ended or deleted key, a key that is already publishing here, or
a malformed streamid is refused with an SRT reject reason (the caller's
connect fails). `gate.check` changes nothing, because libsrt settles the
encryption (a wrong passphrase) only after the callback; once the
connection is up, `gate.admit` (the stream goes `connecting`, a worker is
enqueued) lets it in or has it closed. An admitted publisher's MPEG-TS goes
to the relay, where the live worker reads it like a pull source; the live
state machine, webhooks, DVR and recording are the RTMP path's. A reader
that falls behind loses whole SRT messages (7 TS packets each) rather than
stalling the receive loop. Every UPDATE_INTERVAL the gate is asked whether
each publisher may go on; a stopped or deleted stream's publisher is
disconnected.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from core.live import srtlib

log = logging.getLogger(__name__)
UPDATE_INTERVAL = 3.0  # seconds between "may this publisher go on?" checks (nginx-rtmp's on_update: 3 s)
# An admitted handshake that has not become a connection yet holds its key this long at most; one that
# libsrt refused after our callback (a wrong passphrase) frees it at once (its socket is gone).
PENDING_TTL = 3.0
READER_QUEUE = 4096  # SRT messages (1316 B each: ~5 MB, ~8 s of 5 Mbit/s) a relay reader may lag behind
READER_WAIT = 5.0  # a reader that arrives between handshake and accept waits this long for the publisher
RECV_TIMEOUT_MS = 1000
RELAY_PATH = "/srt/"
INGEST_SECRET_HEADER = "X-Abr-Ingest-Secret"  # how the listener proves itself to the API's SRT callbacks


class Refused(Exception):
    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Admission:
    passphrase: str | None = None


def parse_streamid(streamid: str) -> str:
    """The stream key in an SRT streamid: `#!::r=<key>,m=publish` (SRT access control syntax) or a bare key.

    Refused (SRT_REJX_BAD_REQUEST / SRT_REJX_BAD_MODE) when empty, malformed
    or asking for another mode than publish.
    """
    text = unquote(streamid.strip())
    if text.startswith("#!::"):
        fields: dict[str, str] = {}
        for item in text[4:].split(","):
            name, eq, value = item.partition("=")
            if not eq or not name.strip():
                raise Refused(srtlib.SRT_REJX_BAD_REQUEST, f"malformed streamid item {item!r}")
            fields[name.strip()] = value.strip()
        mode = fields.get("m", "publish")  # an encoder that names only the resource publishes
        if mode != "publish":
            raise Refused(SRT_REJX_BAD_MODE, f"only m=publish is served here, not m={mode}")
        key = fields.get("r", "")
    else:
        key = text
    if not key or len(key) > 64 or not all(c.isalnum() or c in "-_." for c in key):
        raise Refused(srtlib.SRT_REJX_BAD_REQUEST, "the streamid carries no valid stream key")
    return key


SRT_REJX_BAD_MODE = 1405


def ingest_url(host: str, port: int, stream_key: str) -> str:
    """What an encoder publishes to (the live-stream resource's `ingest.srt`)."""
    return f"srt://{host}:{port}?streamid=#!::r={stream_key},m=publish"


def relay_url(base: str, stream_key: str) -> str:
    """Where the live worker reads an SRT publisher's MPEG-TS (the relay)."""
    return f"{base.rstrip('/')}{RELAY_PATH}{stream_key}.ts"


def srt_publishing(base: str, stream_key: str, timeout: float = 1.0) -> bool:
    """Whether the relay at `base` holds an SRT publisher for `stream_key` (HEAD → 200); False when unreachable.

    http.client, not httpx: httpx logs every request URL at INFO, and this one carries the stream key.
    """
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(relay_url(base, stream_key))
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=timeout)
    try:
        conn.request("HEAD", url.path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


INSTALL_LINE = "sudo apt-get install libsrt1.5-openssl"  # Debian/Ubuntu: what turns SRT push on
STATUS_TTL = 5.0  # seconds a status probe's answer is reused (the resource is read often)


@dataclass(frozen=True)
class SrtStatus:
    """Whether SRT push works now, and if not, what to do about it (the resource's `ingest.srt_status`)."""

    available: bool
    reason: str | None = None


def plan_srt_status(*, srt_port: int, libsrt: bool, listening: bool, relay: str) -> SrtStatus:
    """Pure: the status from what was found. `listening`: the relay accepts TCP (it opens after the UDP bind)."""
    if not srt_port:
        return SrtStatus(False, "SRT push is turned off (ABR_SRT_PORT=0)")
    if listening:
        return SrtStatus(True)
    if not libsrt:
        return SrtStatus(False, f"libsrt is not installed; to turn SRT push on: {INSTALL_LINE}")
    return SrtStatus(False, f"no SRT listener answers at {relay}; start it with `abr ingest` "
                            "(`abr dev` starts it when the port is free)")


class SrtStatusProbe:
    """`plan_srt_status` over a real look (a TCP connect to the relay), cached for STATUS_TTL."""

    def __init__(self, *, srt_port: int, pull_url: str) -> None:
        self.srt_port, self.pull_url = srt_port, pull_url
        self._cached: tuple[float, SrtStatus] | None = None

    def status(self) -> SrtStatus:
        import socket
        from urllib.parse import urlsplit

        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < STATUS_TTL:
            return self._cached[1]
        parts = urlsplit(self.pull_url)
        address = (parts.hostname or "127.0.0.1", parts.port or 80)
        listening = False
        if self.srt_port:
            try:
                socket.create_connection(address, timeout=0.5).close()
                listening = True
            except OSError:
                pass
        found = plan_srt_status(srt_port=self.srt_port, libsrt=srtlib.find_library() is not None,
                                listening=listening, relay=f"{address[0]}:{address[1]}")
        self._cached = (now, found)
        return found


class Gate:
    """Decides who may publish; the default lets everyone in (tests). See ApiGate for the real one."""

    def check(self, key: str, addr: str) -> Admission:
        """At the handshake, changing nothing: Refused, or what the connection needs (its passphrase)."""
        return Admission()

    def admit(self, key: str, addr: str) -> None:
        """The connection is up (encryption settled): Refused, or the stream starts (on_publish)."""

    def may_continue(self, key: str) -> bool:
        return True

    def left(self, key: str, addr: str) -> None:
        pass


class _Reader:
    def __init__(self) -> None:
        self.queue: queue.Queue[bytes] = queue.Queue(READER_QUEUE)
        self.dropped = 0

    def offer(self, data: bytes) -> None:
        try:
            self.queue.put_nowait(data)
        except queue.Full:
            self.dropped += 1  # a slow reader loses whole messages; the SRT receive loop never waits


@dataclass
class Publisher:
    key: str
    sock: int
    addr: str
    readers: frozenset[_Reader] = frozenset()  # replaced, never changed in place: the receive loop reads it unlocked
    closed: threading.Event = field(default_factory=threading.Event)
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    admitted: bool = True  # False: gate.admit refused it after the handshake (no publish-done then)


class SrtIngest:
    """The listener, the per-publisher receive threads and the loopback relay; `start()` then `stop()`."""

    def __init__(self, gate: Gate, *, port: int, host: str = "", relay_host: str = "127.0.0.1",
                 relay_port: int = 0, latency_ms: int = 200,
                 update_interval: float = UPDATE_INTERVAL) -> None:
        self.gate, self.host, self.port, self.latency_ms = gate, host, port, latency_ms
        self.update_interval = update_interval
        self.publishers: dict[str, Publisher] = {}
        self._pending: dict[str, tuple[float, str, int]] = {}  # key -> (admitted at, caller's address, socket)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sock = -1
        self._callback = srtlib.ListenCallback(self._on_handshake)  # kept: libsrt holds only the pointer
        self._threads: list[threading.Thread] = []
        self._relay = _RelayServer((relay_host, relay_port), self)
        self.relay_port = 0

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> SrtIngest:
        srtlib.lib()
        sock = srtlib.create_socket()
        try:
            srtlib.set_int(sock, srtlib.SRTO_LATENCY, self.latency_ms)  # the receiver's buffer for ARQ
            srtlib.listen_callback(sock, self._callback)
            srtlib.bind_listen(sock, self.host, self.port)
        except srtlib.SrtError:
            srtlib.close(sock)
            raise
        self._sock = sock
        try:  # the relay opens once the SRT port is bound: a listening relay means a ready ingest
            self._relay.server_bind()
            self._relay.server_activate()
        except OSError:
            srtlib.close(sock)
            raise
        self.relay_port = self._relay.server_address[1]
        for target in (self._accept_loop, self._relay.serve_forever, self._update_loop):
            t = threading.Thread(target=target, daemon=True, name=f"srt-{target.__name__}")
            t.start()
            self._threads.append(t)
        log.info("SRT ingest on udp %s:%d (latency %d ms), relay on tcp %s:%d", self.host or "*", self.port,
                 self.latency_ms, self._relay.server_address[0], self.relay_port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._sock >= 0:
            srtlib.close(self._sock)  # wakes the blocked accept
        with self._lock:
            pubs = list(self.publishers.values())
        for pub in pubs:
            self.disconnect(pub)
        if self.relay_port:
            self._relay.shutdown()
        self._relay.server_close()
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> SrtIngest:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the handshake ------------------------------------------------------------------------------
    def _on_handshake(self, _opaque, ns: int, _hsversion: int, peer, streamid: bytes | None) -> int:
        """libsrt's listen callback: 0 admits the caller, -1 refuses it (with the reason set on `ns`).

        Nothing may escape it: an exception in a ctypes callback returns 0, which would admit the caller.
        """
        addr = ""
        try:
            addr = srtlib.peer_address(peer)
            key = parse_streamid((streamid or b"").decode(errors="replace"))
            self._reserve(key, addr, ns)
            try:
                admission = self.gate.check(key, addr)
                if admission.passphrase:
                    srtlib.set_str(ns, srtlib.SRTO_PASSPHRASE, admission.passphrase)  # AES; a wrong one fails
            except BaseException:
                with self._lock:
                    self._pending.pop(key, None)
                raise
        except Refused as exc:
            log.info("srt publisher from %s refused: %s", addr, exc)
            srtlib.reject(ns, exc.reason)
            return -1
        except BaseException:
            log.exception("srt handshake from %s failed", addr)
            srtlib.reject(ns, srtlib.SRT_REJX_INTERNAL)
            return -1
        log.info("srt caller for %s… from %s passed the handshake check", key[:8], addr)
        return 0

    def _reserve(self, key: str, addr: str, ns: int) -> None:
        """One publisher per key: a live or half-open one refuses the next (SRT_REJX_CONFLICT)."""
        with self._lock:
            if key in self.publishers or self._is_pending(key):
                raise Refused(srtlib.SRT_REJX_CONFLICT, "this stream key is already publishing")
            self._pending[key] = (time.monotonic(), addr, ns)

    def _is_pending(self, key: str) -> bool:
        at = self._pending.get(key)
        return at is not None and time.monotonic() - at[0] < PENDING_TTL and \
            srtlib.state(at[2]) < srtlib.SRTS_BROKEN

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock = srtlib.accept(self._sock)
            except srtlib.SrtError as exc:
                if not self._stopping.is_set():
                    log.warning("srt accept failed: %s", exc)
                    time.sleep(0.1)
                continue
            try:
                key = parse_streamid(srtlib.get_str(sock, srtlib.SRTO_STREAMID))
                srtlib.set_int(sock, srtlib.SRTO_RCVTIMEO, RECV_TIMEOUT_MS)
            except (Refused, srtlib.SrtError):
                srtlib.close(sock)
                continue
            with self._lock:
                _, addr, _ = self._pending.pop(key, (0.0, "", -1))
                pub = self.publishers[key] = Publisher(key=key, sock=sock, addr=addr)
            threading.Thread(target=self._receive, args=(pub,), daemon=True, name=f"srt-recv-{key[:8]}").start()

    # -- media ------------------------------------------------------------------------------------------
    def _receive(self, pub: Publisher) -> None:
        buf = ctypes.create_string_buffer(srtlib.SRT_LIVE_MAX_PAYLOAD)
        try:
            try:
                self.gate.admit(pub.key, pub.addr)
            except Exception as exc:  # Refused, or the API is gone: nothing would read this stream
                log.info("srt publisher of %s… from %s not admitted: %s", pub.key[:8], pub.addr, exc)
                pub.admitted = False
                return
            log.info("srt publisher of %s… from %s admitted", pub.key[:8], pub.addr)
            while not pub.closed.is_set():
                try:
                    n = srtlib.recvmsg(pub.sock, buf)
                except srtlib.SrtError:
                    break  # the publisher left, or we closed its socket
                if n:
                    data = buf.raw[:n]
                    pub.bytes += n
                    for reader in pub.readers:
                        reader.offer(data)
        finally:
            self._drop(pub)

    def _drop(self, pub: Publisher) -> None:
        pub.closed.set()
        srtlib.close(pub.sock)
        with self._lock:
            if self.publishers.get(pub.key) is pub:
                del self.publishers[pub.key]
            else:
                return
        if not pub.admitted:
            return
        log.info("srt publisher of %s… left after %.0f s, %d bytes", pub.key[:8], time.monotonic() - pub.started,
                 pub.bytes)
        try:
            self.gate.left(pub.key, pub.addr)
        except Exception as exc:  # informational only
            log.info("srt publish-done callback failed: %s", exc)

    def disconnect(self, pub: Publisher) -> None:
        pub.closed.set()
        srtlib.close(pub.sock)  # the receive thread wakes with an error and cleans up

    def _update_loop(self) -> None:
        while not self._stopping.wait(self.update_interval):
            with self._lock:
                pubs = list(self.publishers.values())
            for pub in pubs:
                try:
                    go_on = self.gate.may_continue(pub.key)
                except Exception as exc:  # the API is down: keep the publisher (as nginx-rtmp does)
                    log.info("srt update callback failed: %s", exc)
                    continue
                if not go_on:
                    log.info("srt publisher of %s… disconnected: its stream was stopped or deleted", pub.key[:8])
                    self.disconnect(pub)

    # -- the relay ----------------------------------------------------------------------------------
    def known(self, key: str) -> bool:
        with self._lock:
            return key in self.publishers or self._is_pending(key)

    def attach(self, key: str, timeout: float = READER_WAIT) -> tuple[Publisher, _Reader] | None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pub = self.publishers.get(key)
                if pub is not None and not pub.closed.is_set():
                    reader = _Reader()
                    pub.readers = pub.readers | {reader}
                    return pub, reader
                pending = self._is_pending(key)
            if not pending or time.monotonic() > deadline:
                return None
            time.sleep(0.05)


class _RelayHandler(socketserver.StreamRequestHandler):
    server: _RelayServer

    def handle(self) -> None:
        line = self.rfile.readline(2048).decode("latin-1").split()
        while self.rfile.readline(2048) not in (b"\r\n", b"\n", b""):
            pass  # request headers: nothing in them matters
        if len(line) < 2 or line[0] not in ("GET", "HEAD") or not line[1].startswith(RELAY_PATH) \
                or not line[1].endswith(".ts"):
            self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        key = line[1][len(RELAY_PATH):-3]
        ingest = self.server.ingest
        if line[0] == "HEAD":
            status = b"200 OK" if ingest.known(key) else b"404 Not Found"
            self.wfile.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: video/mp2t\r\nConnection: close\r\n\r\n")
            return
        attached = ingest.attach(key)
        if attached is None:
            self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        pub, reader = attached
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nCache-Control: no-store\r\n"
                             b"Connection: close\r\n\r\n")
            self.wfile.flush()
            while not pub.closed.is_set():
                try:
                    first = reader.queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                chunks = [first]
                while len(chunks) < 64:  # one send for whatever has queued up
                    try:
                        chunks.append(reader.queue.get_nowait())
                    except queue.Empty:
                        break
                self.connection.sendall(b"".join(chunks))
        except OSError:
            pass  # the reader went away
        finally:
            with ingest._lock:
                pub.readers = pub.readers - {reader}
            if reader.dropped:
                log.warning("srt relay reader of %s… lagged: %d messages dropped", key[:8], reader.dropped)


class _RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], ingest: SrtIngest) -> None:
        self.ingest = ingest
        super().__init__(address, _RelayHandler, bind_and_activate=False)


class ApiGate(Gate):
    """The real gate: the API's SRT ingest callbacks (api/routers/ingest.py), guarded by the ingest secret."""

    def __init__(self, api_url: str, secret: str, *, timeout: float = 1.5,
                 client_factory: Callable | None = None) -> None:
        import httpx

        self.base = f"{api_url.rstrip('/')}/v1/ingest/srt"
        # In a header, not the query string like nginx's callbacks: request URLs get logged (httpx at INFO).
        self.headers = {INGEST_SECRET_HEADER: secret}
        # The admit call runs on libsrt's receive thread: bounded, so a slow API cannot stall the port for long.
        self.client = (client_factory or httpx.Client)(timeout=timeout)

    def _post(self, call: str, **form: str):
        return self.client.post(f"{self.base}/{call}", headers=self.headers, data=form)

    def check(self, key: str, addr: str) -> Admission:
        body = self._ask("check", key, addr)
        return Admission(passphrase=body.get("passphrase"))

    def admit(self, key: str, addr: str) -> None:
        self._ask("publish", key, addr)

    def _ask(self, call: str, key: str, addr: str) -> dict:
        try:
            r = self._post(call, name=key, addr=addr)
        except Exception as exc:
            raise Refused(srtlib.SRT_REJX_INTERNAL, f"the API did not answer: {exc}") from exc
        if r.status_code >= 400:
            reason = {401: srtlib.SRT_REJX_UNAUTHORIZED, 403: srtlib.SRT_REJX_FORBIDDEN,
                      404: srtlib.SRT_REJX_NOTFOUND, 409: srtlib.SRT_REJX_CONFLICT}.get(
                r.status_code, srtlib.SRT_REJX_INTERNAL if r.status_code >= 500 else srtlib.SRT_REJX_BAD_REQUEST)
            raise Refused(reason, f"the API refused: {r.status_code} {r.text[:200]}")
        return r.json() if r.content else {}

    def may_continue(self, key: str) -> bool:
        r = self._post("update", name=key)
        if r.status_code >= 500:
            raise RuntimeError(f"update callback answered {r.status_code}")
        return r.status_code < 400

    def left(self, key: str, addr: str) -> None:
        self._post("publish-done", name=key, addr=addr)
