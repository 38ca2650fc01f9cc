"""An http(s) pull source fetched by our checked client and handed to ffmpeg on loopback.

An HLS playlist names more hosts than its own: variant playlists, segments,
keys (`EXT-X-KEY URI=`), init sections, renditions, and every one of them
may redirect. ffmpeg would open them all with no address check. So ffmpeg
never sees the source: it reads `http://127.0.0.1:<port>/<token>/<name>`
from this proxy, which

- fetches the real URL with the checked client (every hop resolved once,
  checked by `pull_guard`, connected to by address, redirects followed here
  and checked, never passed on to ffmpeg),
- rewrites every URI in a playlist (URI lines and `URI="…"` attributes of
  any tag) to a proxy URL, so nothing in what ffmpeg reads points elsewhere,
- signs each proxy URL (HMAC, a secret per stream run), so the loopback port
  is not an open proxy for other local processes.

ffmpeg's protocol whitelist for a proxied source is `http,tcp,hls,crypto`
(no https, no file) and its format whitelist `FORMATS` (HLS and media, no
DASH or concat lists): with every URI rewritten, the only host it reaches is
this proxy. A refused address is remembered (`refusal`) so the stream can
end with "address not allowed" instead of waiting for media.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from posixpath import basename
from urllib.parse import quote, urljoin, urlsplit

import httpx

from core.errors import AbrError
from core.live.pull_guard import DEFAULT_PORTS, AddressNotAllowed, PullPolicy, resolve_pull
from core.live.reader import NO_MEDIA, REFUSED, UNREACHABLE
from core.net import safe_client

log = logging.getLogger(__name__)

WHITELIST = "http,tcp,hls,crypto"
# Demuxers ffmpeg may use on what the proxy serves (copied by the HLS demuxer to its segments). Only
# HLS is rewritten: another format that names URLs (a DASH MPD, a concat list) would make ffmpeg
# reach hosts the proxy never saw, so it is not demuxed at all.
FORMATS = "hls,mpegts,mov,flv,live_flv,aac,mp3,ac3,eac3,webvtt,matroska"
MAX_REDIRECTS = 5
MAX_PLAYLIST_BYTES = 2 * 1024 * 1024
_URI_ATTR = re.compile(r'URI="([^"]*)"')


def rewrite_playlist(text: str, base_url: str, proxied) -> str:
    """Every URI of an m3u8 (lines and `URI="…"` attributes) made absolute and passed through `proxied` (pure)."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            out.append("")
        elif stripped.startswith("#"):
            out.append(_URI_ATTR.sub(lambda m: f'URI="{proxied(urljoin(base_url, m[1]))}"', stripped))
        else:
            out.append(proxied(urljoin(base_url, stripped)))
    return "\n".join(out) + "\n"


def is_playlist(head: bytes) -> bool:
    """A playlist starts with #EXTM3U (RFC 8216), whatever its name or type says: anything ffmpeg would
    read as HLS is rewritten, and media (passed through) is never mistaken for text."""
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"#EXTM3U")


class PullProxy:
    def __init__(self, source_url: str, policy: PullPolicy, *, timeout: float = 10.0) -> None:
        self.source_url, self.policy, self.timeout = source_url, policy, timeout
        self._key = secrets.token_bytes(16)
        self.refusal: AbrError | None = None  # the first address refused, for the stream's error
        self.failure: str | None = None  # the last upstream failure's class (core/live/reader.py words)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                proxy._serve(self)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- lifetime ---------------------------------------------------------------------------------
    def __enter__(self) -> PullProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def entry_url(self) -> str:
        return self.proxied(self.source_url)

    # -- URLs ---------------------------------------------------------------------------------------
    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    def proxied(self, url: str) -> str:
        payload = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        name = quote(basename(urlsplit(url).path) or "index", safe=".-_")  # ffmpeg checks extensions
        return f"http://127.0.0.1:{self.server.server_port}/{payload}.{self._sign(payload)}/{name}"

    def _target(self, path: str) -> str | None:
        token = path.lstrip("/").split("/", 1)[0]
        payload, _, mac = token.rpartition(".")
        if not payload or not hmac.compare_digest(mac, self._sign(payload)):
            return None
        return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()

    # -- serving --------------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = self._target(handler.path)
        if url is None:
            handler.send_error(404)
            return
        headers = {"User-Agent": "abr-origin-live", "Accept-Encoding": "identity"}  # lengths pass through
        if rng := handler.headers.get("Range"):
            headers["Range"] = rng
        try:
            with safe_client(httpx.Timeout(self.timeout)) as client:
                with self._open(client, url, headers) as (final_url, response):
                    self._relay(handler, final_url, response)
        except AddressNotAllowed as exc:
            if self.refusal is None:
                self.refusal = exc
            _answer(handler, 403)
        except AbrError as exc:
            log.info("live proxy: %s: %s", _safe(url), exc.message)
            self.failure = NO_MEDIA if exc.code != "source_unreachable" else UNREACHABLE
            _answer(handler, 502)
        except httpx.HTTPError as exc:
            log.info("live proxy: %s: %s: %s", _safe(url), type(exc).__name__, exc)
            self.failure = REFUSED if "refused" in str(exc).lower() else UNREACHABLE
            _answer(handler, 504 if isinstance(exc, httpx.TimeoutException) else 502)
        except (BrokenPipeError, ConnectionResetError):
            pass  # ffmpeg went away

    def _open(self, client: httpx.Client, url: str, headers: dict):
        """A context manager over (final URL, streamed response) with every hop checked and pinned."""
        proxy = self

        class Opened:
            def __enter__(self):
                nonlocal url
                for _ in range(MAX_REDIRECTS + 1):
                    target, extra, extensions = proxy._pin(url)
                    request = client.build_request("GET", target, headers={**headers, **extra},
                                                   extensions=extensions)
                    self.response = client.send(request, stream=True)
                    if not self.response.is_redirect:
                        return url, self.response
                    location = self.response.headers.get("location", "")
                    self.response.close()
                    url = urljoin(url, location)
                raise AbrError("the source redirected too many times")

            def __exit__(self, *exc):
                self.response.close()

        return Opened()

    def _pin(self, url: str) -> tuple[str, dict, dict]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            # A key or segment on another scheme (data:, skd:, file:) is refused like a bad address.
            raise AddressNotAllowed(f"the source refers to a {scheme or 'relative'}: URL, which is not allowed")
        default = DEFAULT_PORTS[scheme]
        port = parts.port or default
        ip = resolve_pull(parts.hostname, port, self.policy)
        netloc_ip = f"[{ip}]" if ":" in ip else ip
        target = parts._replace(netloc=f"{netloc_ip}:{port}").geturl()
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if parts.port and parts.port != default:
            host += f":{parts.port}"
        extensions = {"sni_hostname": parts.hostname} if scheme == "https" else {}
        return target, {"Host": host}, extensions

    def _relay(self, handler: BaseHTTPRequestHandler, url: str, response: httpx.Response) -> None:
        if response.status_code not in (200, 206):
            self.failure = f"the source answered {response.status_code} {response.reason_phrase}".rstrip()
            _answer(handler, response.status_code if 400 <= response.status_code < 600 else 502)
            return
        chunks = response.iter_bytes()  # as it arrives: a live MPEG-TS stream is not held back
        first = b""
        for chunk in chunks:  # enough to decide (a playlist split after "#EX" must not pass unrewritten)
            first += chunk
            if len(first) >= 64:
                break
        if is_playlist(first[:64]):
            body = bytearray(first)
            for chunk in chunks:
                body += chunk
                if len(body) > MAX_PLAYLIST_BYTES:
                    raise AbrError("the source's playlist is too large")
            text = rewrite_playlist(body.decode("utf-8", "replace"), url, self.proxied).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/vnd.apple.mpegurl")
            handler.send_header("Content-Length", str(len(text)))
            handler.end_headers()
            handler.wfile.write(text)
            return
        handler.send_response(response.status_code)
        for name in ("content-type", "content-length", "content-range"):
            if value := response.headers.get(name):
                handler.send_header(name.title(), value)
        handler.end_headers()
        handler.wfile.write(first)
        for chunk in chunks:  # media: streamed through (an MPEG-TS over HTTP source never ends)
            handler.wfile.write(chunk)


def _answer(handler: BaseHTTPRequestHandler, status: int) -> None:
    try:
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    except OSError:
        pass


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}"
