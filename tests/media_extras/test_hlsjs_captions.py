"""Captions play in hls.js: real Chromium, the real origin over HTTP, a subtitle track with cues.

hls.js comes from the project's vendored player files (`player/web/hls.min.js`,
or the pinned npm copy the player's vendoring reads, checked against
`player/vendor.lock.json`); the test is skipped with the reason when neither
is there, or when Chromium / Playwright is missing.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VTT = b"WEBVTT\n\n00:00.000 --> 00:02.000\nFirst words\n\n00:02.000 --> 00:05.500\nSecond words\n"


def _hls_js() -> bytes:
    """The project's pinned hls.js (player/vendor), checked against its lock entry."""
    from player.vendor import VENDOR_DIR, check_bytes, load_lock

    data = (VENDOR_DIR / "hls.min.js").read_bytes()
    check_bytes(load_lock()["hls.min.js"], data)
    return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_origin(ready):
    """The same app the fixture built, served over real HTTP by uvicorn in a thread."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(ready.client.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


PAGE = """<!doctype html><html><body><video id="v" muted playsinline width="320"></video>
<script src="/hls.min.js"></script>
<script>
  window.report = {errors: []};
  const video = document.getElementById('v');
  const hls = new Hls({enableWebVTT: true, renderTextTracksNatively: true});
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.report.errors.push(d.details); });
  // The SUBTITLES group of the chosen variant is known once a level is picked; hls.js then selects
  // its default track itself right after this event, so the user's choice comes a tick later.
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_, data) => {
    window.report.subtitleTracks = data.subtitleTracks.map(t => t.lang);
    const wanted = data.subtitleTracks.findIndex(t => t.lang === 'fr');
    setTimeout(() => { hls.subtitleDisplay = true; hls.subtitleTrack = wanted; }, 0);
  });
  hls.loadSource(new URLSearchParams(location.search).get('src'));
  hls.attachMedia(video);
</script></body></html>"""

CUES_OF = """(lang) => {
    const t = Array.from(document.getElementById('v').textTracks)
        .find(t => t.language === lang && t.cues && t.cues.length > 0);
    return t ? {mode: t.mode, label: t.label, cues: Array.from(t.cues).map(c => [c.startTime, c.endTime, c.text])}
             : null;
}"""


def test_captions_play_in_hlsjs(ready, http_origin, chromium_browser):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright Python is not installed")
    script = _hls_js()
    made = ready.client.post(f"/v1/assets/{ready.id}/text-tracks", files={"file": ("fr.vtt", VTT, "text/vtt")},
                             data={"language": "fr", "name": "Français"})
    assert made.status_code == 201, made.text
    src = f"{http_origin}/play/{ready.public_id}/master.m3u8"
    with _page_server(PAGE.encode(), script) as page_origin:
        found, report = _play(sync_api, chromium_browser, page_origin, src)
    assert report["errors"] == []
    assert "fr" in report["subtitleTracks"]
    assert found["label"] == "Français" and found["mode"] in ("showing", "hidden")
    texts = [c[2] for c in found["cues"]]
    assert texts == ["First words", "Second words"], found
    first = found["cues"][0]
    assert abs(first[0] - 0.0) < 0.3 and abs(first[1] - 2.0) < 0.3  # cue times on the media timeline


@contextmanager
def _page_server(page: bytes, script: bytes):
    """The test page and hls.js from a real loopback server on another port (another origin, so
    CORS is exercised; a real one, because Chromium's local-network checks refuse loopback
    requests from a page it cannot place)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, ctype = (script, "application/javascript") if self.path.startswith("/hls.min.js") \
                else (page, "text/html")
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _play(sync_api, browser, page_origin: str, src: str) -> tuple[dict, dict]:
    """Load the test page in a fresh context of the session's shared Chromium (tests/conftest.py)."""
    context = browser.new_context()
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.on("pageerror", lambda e: console.append(str(e)))
        page.on("request", lambda r: console.append(f"GET {r.url}") if "/text/" in r.url else None)
        page.on("requestfailed", lambda r: console.append(f"failed {r.url} {r.failure}"))
        page.goto(f"{page_origin}/?src={src}")
        try:
            page.wait_for_function("window.report && window.report.subtitleTracks !== undefined",
                                   timeout=20_000)
        except sync_api.TimeoutError:
            pytest.fail(f"hls.js never parsed the manifest: {page.evaluate('window.report')} {console[-10:]}")
        try:
            found = page.wait_for_function(CUES_OF, arg="fr", timeout=30_000).json_value()
        except sync_api.TimeoutError:
            state = page.evaluate("""() => ({report: window.report, tracks: Array.from(
                document.getElementById('v').textTracks).map(t => [t.language, t.mode, t.cues && t.cues.length]),
                time: document.getElementById('v').currentTime})""")
            pytest.fail(f"no cues in the subtitle track: {state} {console[-10:]}")
        report = page.evaluate("window.report")
    finally:
        context.close()
    return found, report
