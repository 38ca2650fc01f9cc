"""The checked loopback proxy that an http(s) pull source reaches ffmpeg through (core/live/hls_proxy.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest

from core.live.hls_proxy import PullProxy, rewrite_playlist
from core.live.pull_guard import PullPolicy
from tests.conftest import free_port


def test_rewrite_playlist_exact():
    text = ('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="/keys/k1",IV=0x1\n#EXT-X-MAP:URI="init.mp4"\n'
            '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="http://10.0.0.9/a.m3u8"\n\n#EXTINF:2.0,\n'
            '  seg1.ts?x=1  \n#EXTINF:2.0,\nhttp://169.254.169.254/latest/meta-data\n')
    got = rewrite_playlist(text, "http://cam.example/live/index.m3u8", lambda u: f"<{u}>")
    assert got == ('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="<http://cam.example/keys/k1>",IV=0x1\n'
                   '#EXT-X-MAP:URI="<http://cam.example/live/init.mp4>"\n'
                   '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="<http://10.0.0.9/a.m3u8>"\n\n#EXTINF:2.0,\n'
                   '<http://cam.example/live/seg1.ts?x=1>\n#EXTINF:2.0,\n<http://169.254.169.254/latest/meta-data>\n')


@pytest.fixture
def origin() -> Iterator[int]:
    """A loopback HLS server whose playlist names a segment beside it, one on 127.0.0.2, a key on 10/8."""
    port = free_port()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/live.m3u8":
                body = (f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"http://10.255.255.1/k\"\n"
                        f"#EXTINF:2,\nseg1.ts\n#EXTINF:2,\nhttp://127.0.0.2:{port}/seg1.ts\n"
                        f"#EXTINF:2,\n/redirect\n").encode()
                self._send(200, body, "application/vnd.apple.mpegurl")
            elif self.path == "/seg1.ts":
                self._send(200, b"G" * 188 * 10, "video/mp2t")
            elif self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.2:{port}/seg1.ts")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(404, b"", "text/plain")

        def _send(self, status, body, ctype):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()
    server.server_close()


def test_proxy_checks_every_uri_it_fetches(origin):
    policy = PullPolicy.from_setting("127.0.0.1/32")  # the playlist's host only
    with PullProxy(f"http://127.0.0.1:{origin}/live.m3u8", policy) as proxy:
        playlist = httpx.get(proxy.entry_url, timeout=5)
        assert playlist.status_code == 200
        assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
        uris = [line for line in playlist.text.splitlines() if line and not line.startswith("#")]
        prefix = f"http://127.0.0.1:{proxy.server.server_port}/"
        assert len(uris) == 3 and all(u.startswith(prefix) for u in uris)
        assert "127.0.0.2" not in playlist.text and "10.255" not in playlist.text
        key = playlist.text.split('URI="')[1].split('"')[0]
        assert key.startswith(prefix)

        beside, elsewhere, redirected = uris
        assert httpx.get(beside, timeout=5).content == b"G" * 1880  # allowed host: passed through
        assert proxy.refusal is None
        assert httpx.get(elsewhere, timeout=5).status_code == 403  # loopback, but not the allowed address
        assert proxy.refusal is not None and proxy.refusal.code == "address_not_allowed"
        assert httpx.get(redirected, timeout=5).status_code == 403  # a redirect is checked like the first hop
        assert httpx.get(key, timeout=5).status_code == 403
        forged = prefix + "aHR0cDovLzEyNy4wLjAuMjo4MC8.0123456789abcdef0123456789abcdef/x.ts"
        assert httpx.get(forged, timeout=5).status_code == 404  # not an open proxy for local processes
