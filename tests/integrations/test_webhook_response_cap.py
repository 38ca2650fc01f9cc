"""A webhook receiver's answer body is read with a size cap: an endless answer neither fills memory nor holds on."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from core.services import webhooks


def test_an_endless_answer_body_is_cut_at_the_cap():
    sent = []
    stop = threading.Event()

    class Endless(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while not stop.is_set() and sum(sent) < 500 * 1024 * 1024:  # "forever"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent.append(len(chunk))
            except OSError:
                pass  # we hung up: what this test wants

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        status, error = webhooks._post(f"http://127.0.0.1:{server.server_port}/hook", "secret", b"{}",
                                       timeout=10, allow_private=True)
        assert (status, error) == (200, None)
        assert time.monotonic() - started < 5
        time.sleep(0.2)
        assert sum(sent) < 16 * 1024 * 1024  # stopped soon after the cap, not after 500 MB
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
