"""The RTSP relay (core/live/rtsp_relay.py): follows the server's messages, never passes a redirect on."""

from __future__ import annotations

import socket
import threading

import pytest

from core.live.rtsp_relay import RtspRelay, RtspScanner, relay_url


def test_scanner_follows_responses_frames_and_bodies():
    scanner = RtspScanner()
    sdp = b"v=0\r\no=- 0 0 IN IP4 10.0.0.7\r\n"
    stream = (b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: DESCRIBE\r\n\r\n"
              + b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: %d\r\n\r\n" % len(sdp) + sdp
              + b"$\x00\x00\x05RTSP/" + b"$\x01\x00\x02ab"  # interleaved frames, one looking like a status line
              + b"GET_PARAMETER rtsp://x RTSP/1.0\r\nCSeq: 9\r\n\r\n"
              + b"RTSP/1.0 302 Moved\nCSeq: 3\nLocation: rtsp://169.254.169.254/\n\n")
    seen = []
    for i in range(0, len(stream), 7):  # in awkward pieces, as TCP may deliver them
        seen += scanner.feed(stream[i:i + 7])
    assert seen == [200, 200, 302]


def test_scanner_fails_closed_on_what_is_not_rtsp():
    with pytest.raises(ValueError):
        RtspScanner().feed(b"x" * 70_000)
    with pytest.raises(ValueError):
        RtspScanner().feed(b"RTSP/1.0 200 OK\r\nContent-Length: lots\r\n\r\n")


@pytest.mark.parametrize(("url", "relayed"), [
    ("rtsp://cam.lan/Streaming/101", "rtsp://127.0.0.1:9/Streaming/101"),
    ("rtsp://admin:pw@cam.lan:8554/live?channel=1&udp&subtype=0", "rtsp://admin:pw@127.0.0.1:9/live?channel=1&subtype=0"),
    ("rtsp://cam.lan/x?multicast", "rtsp://127.0.0.1:9/x"),
])  # fmt: skip
def test_relay_url(url, relayed):
    assert relay_url(url, 9) == relayed


def _fake_rtsp(answer: bytes) -> tuple[socket.socket, list[bytes]]:
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            got.append(conn.recv(4096))
            conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return server, got


def test_relay_passes_answers_but_not_redirects():
    ok, _ = _fake_rtsp(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
    moved, got = _fake_rtsp(b"RTSP/1.0 301 Moved\r\nCSeq: 1\r\nLocation: rtsp://169.254.169.254/x\r\n\r\n")
    try:
        with RtspRelay("127.0.0.1", ok.getsockname()[1]) as relay:
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as c:
                c.sendall(b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n\r\n")
                assert c.recv(4096).startswith(b"RTSP/1.0 200 OK")
            assert relay.refusal is None
        with RtspRelay("127.0.0.1", moved.getsockname()[1]) as relay:
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as c:
                c.sendall(b"OPTIONS rtsp://127.0.0.1/x RTSP/1.0\r\nCSeq: 1\r\n\r\n")
                assert c.recv(4096) == b""  # hung up: the redirect never reaches ffmpeg
            assert got and relay.refusal is not None and relay.refusal.code == "address_not_allowed"
    finally:
        ok.close()
        moved.close()


def test_relay_speaks_tls_upstream_and_plain_to_ffmpeg(tmp_path):
    """rtsps/rtmps: ffmpeg talks plain to the relay, the relay TLS (with the source's name) to the checked address."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cam.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))  # self-signed, like a camera's
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    names = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = server.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        with RtspRelay("127.0.0.1", server.getsockname()[1], tls_host="cam.test") as relay:
            assert relay.url_for("rtsps://u:p@cam.test/live") == f"rtsp://u:p@127.0.0.1:{relay.port}/live"
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as c:
                c.sendall(b"OPTIONS rtsp://127.0.0.1/live RTSP/1.0\r\nCSeq: 1\r\n\r\n")
                assert c.recv(4096).startswith(b"RTSP/1.0 200 OK")
        assert names == ["cam.test"]
    finally:
        server.close()
