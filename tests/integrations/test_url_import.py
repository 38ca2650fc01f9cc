"""URL import hardening: SSRF refusals (every hop, DNS-rebinding safe), limits, and a real import."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import BadRequest, Forbidden, TooLarge, Unprocessable
from core import net
from core.services import url_import
from core.net import address_allowed
from core.services.url_import import fetch

LIMITS = {"max_bytes": 10_000_000, "timeout": 10}


class Origin:
    """A tiny HTTP server: `/file` serves `body`, `/redirect?to=URL` answers 302, `/secret` is counted."""

    def __init__(self, body: bytes = b"", host: str = "127.0.0.1") -> None:
        self.body, self.paths = body, []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                origin.paths.append(self.path)
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("=", 1)[1])
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(origin.body)))
                self.end_headers()
                self.wfile.write(origin.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("url", [
    pytest.param("http://127.0.0.1/x", id="loopback"),
    pytest.param("http://localhost/x", id="localhost"),
    pytest.param("http://[::1]/x", id="ipv6-loopback"),
    pytest.param("http://10.0.0.8/x", id="private-10"),
    pytest.param("http://192.168.1.1/x", id="private-192"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="metadata"),
    pytest.param("http://100.64.0.1/x", id="cgnat"),
    pytest.param("http://224.0.0.1/x", id="multicast"),
    pytest.param("http://0.0.0.0/x", id="unspecified"),
    pytest.param("http://[fd00::1]/x", id="ipv6-ula"),
    pytest.param("http://[fe80::1]/x", id="ipv6-link-local"),
    pytest.param("http://[::ffff:127.0.0.1]/x", id="ipv4-mapped"),
    pytest.param("http://[64:ff9b::a00:1]/x", id="nat64-private"),
])
def test_private_targets_are_refused_before_connecting(url, tmp_path):
    with pytest.raises(Forbidden):
        fetch(url, tmp_path / "out", **LIMITS)
    assert not (tmp_path / "out").exists()


def test_public_addresses_pass_the_policy():
    for a in ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"):
        assert address_allowed(ipaddress.ip_address(a), allow_private=False)


@pytest.fixture
def fake_dns(monkeypatch):
    """Names under `.test` resolve to what the test says; everything else as usual. Counts lookups."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".test"):
            lookups.append(host)
            ip = answers[host][min(len(lookups), len(answers[host])) - 1]
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


@pytest.fixture
def loopback_is_public(monkeypatch):
    """Let 127.0.0.1 (and only it) stand in for a public host, so a server on loopback can be the first hop."""
    original = net.address_allowed

    def allowed(addr, *, allow_private):
        return str(addr) == "127.0.0.1" or original(addr, allow_private=allow_private)

    monkeypatch.setattr(net, "address_allowed", allowed)


def test_a_name_resolving_to_loopback_is_refused(fake_dns, tmp_path):
    answers, _ = fake_dns
    answers["evil.test"] = ["127.0.0.1"]
    with pytest.raises(Forbidden):
        fetch("http://evil.test/x", tmp_path / "out", **LIMITS)


def test_a_redirect_to_a_private_address_is_refused(loopback_is_public, tmp_path):
    inner = Origin(b"secret", host="127.0.0.2")  # also loopback, but not the stand-in public address
    outer = Origin()
    try:
        with pytest.raises(Forbidden):
            fetch(f"{outer.url}/redirect?to={inner.url}/secret", tmp_path / "out", **LIMITS)
        assert outer.paths and inner.paths == []  # the private target was never contacted
    finally:
        inner.close()
        outer.close()


def test_dns_is_resolved_once_and_the_checked_address_is_used(fake_dns, loopback_is_public, tmp_path):
    answers, lookups = fake_dns
    origin = Origin(b"media bytes")
    port = origin.server.server_port
    answers["rebind.test"] = ["127.0.0.1", "10.0.0.1"]  # a second lookup would be rebound to a private address
    try:
        size = fetch(f"http://rebind.test:{port}/file", tmp_path / "out", **LIMITS)
        assert size == 11 and (tmp_path / "out").read_bytes() == b"media bytes"
        assert lookups == ["rebind.test"]
    finally:
        origin.close()


def test_redirect_and_size_limits(tmp_path):
    origin = Origin(b"x" * 5000)
    try:
        with pytest.raises(TooLarge):
            fetch(f"{origin.url}/file", tmp_path / "out", max_bytes=1000, timeout=10, allow_private=True)
        chain = f"{origin.url}/file"
        for _ in range(url_import.MAX_REDIRECTS + 1):
            chain = f"{origin.url}/redirect?to={chain}"
        with pytest.raises(BadRequest, match="redirected more than"):
            fetch(chain, tmp_path / "out", max_bytes=10_000, timeout=10, allow_private=True)
        with pytest.raises(Unprocessable):
            fetch(f"{origin.url.replace('http', 'gopher')}/file", tmp_path / "out", **LIMITS)
    finally:
        origin.close()


def test_real_import_from_a_local_server(server, clip):
    origin = Origin(clip.read_bytes())
    try:
        r = server.client.post(f"{server.url}/v1/assets", json={"input_url": f"{origin.url}/redirect?to=/file"})
        assert r.status_code == 201, r.text
        asset = server.wait_asset(r.json()["id"])
        assert asset["status"] == "ready", asset
        assert asset["source"]["video"] and origin.paths == ["/redirect?to=/file", "/file"]
    finally:
        origin.close()


def test_a_trickling_server_is_cut_off_at_the_total_timeout(tmp_path):
    """One byte every 0.3 s keeps every read alive; the total deadline still ends the download in time."""
    import time

    stop = threading.Event()

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(30):  # ~9 s in all, well past the 2 s limit
                if stop.is_set():
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.3)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(Unprocessable, match="took longer than 2 s"):
            fetch(f"http://127.0.0.1:{server.server_port}/slow", tmp_path / "out", max_bytes=10_000, timeout=2,
                  allow_private=True)
        assert time.monotonic() - started < 4
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def test_a_silent_server_is_cut_off_by_the_read_timeout(tmp_path):
    """Headers, then nothing: the read timeout (never above the total) ends it with the same message."""
    import time

    stop = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            stop.wait(10)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(Unprocessable, match="took longer than 1 s"):
            fetch(f"http://127.0.0.1:{server.server_port}/silent", tmp_path / "out", max_bytes=10_000, timeout=1,
                  allow_private=True)
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
