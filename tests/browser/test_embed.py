"""The embed snippets the dashboard shows, pasted into a page on another origin (CORS for real)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.browser.conftest import open_context, screenshot, wait_playing

pytestmark = pytest.mark.timeout(180)


class OtherSite:
    """A second web server on another port (another origin) serving pages from a dict."""

    def __init__(self) -> None:
        pages = self.pages = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = pages.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}"  # another host name, another port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def page(self, path: str, snippet: str) -> str:
        self.pages[path] = ("<!doctype html><meta charset=utf-8><title>Another site</title>"
                            "<body style='font-family:sans-serif;max-width:720px;margin:24px auto'>"
                            "<h1>Someone else's blog</h1><p>Here is our video:</p>"
                            "<script>window.events = []; addEventListener('message', (e) => "
                            "{ if (e.data && e.data.type === 'abr-player') events.push({origin: e.origin, ...e.data}); });"
                            f"</script>\n{snippet}\n</body>")
        return self.url + path


@pytest.fixture(scope="module")
def other_site() -> Iterator[OtherSite]:
    site = OtherSite()
    yield site
    site.httpd.shutdown()


@pytest.fixture(scope="module")
def snippets(server, media, browser) -> dict[str, str]:
    """The iframe and hls.js snippets, copied out of the dashboard's asset page."""
    ctx = open_context(browser, key=server.key)
    page = ctx.new_page()
    page.goto(f"{server.url}/#/assets/{media['main'].id}")
    code = page.locator("#embed-code")
    out = {"iframe": code.input_value()}
    page.click("[data-tab='js']")
    out["js"] = code.input_value()
    ctx.close()
    return out


def test_iframe_embed_plays_on_another_origin(server, media, page, other_site, snippets):
    assert f"{server.url}/player/{media['main'].playback_id}" in snippets["iframe"]
    page.goto(other_site.page("/iframe.html", snippets["iframe"]))
    frame = page.frame_locator("iframe")
    frame.locator("#bigplay").click()  # a viewer's click: no autoplay needed
    player = next(f for f in page.frames if "/player/" in f.url)
    wait_playing(player, log=page.log)
    # The player reports to the embedding page with postMessage, and obeys its commands.
    events = page.evaluate("() => window.events")
    assert {"playing", "timeupdate"} <= {e["event"] for e in events}
    assert all(e["origin"] == server.url for e in events)
    page.evaluate("() => document.querySelector('iframe').contentWindow.postMessage("
                  "{type: 'abr-player', command: 'pause'}, '*')")
    player.wait_for_function("() => document.querySelector('video').paused")
    player.wait_for_function("() => getComputedStyle(document.getElementById('controls')).opacity === '1'")
    screenshot(page, "embed-iframe-other-origin")


def test_hlsjs_snippet_plays_on_another_origin(server, media, page, other_site, snippets):
    assert "integrity=\"sha384-" in snippets["js"] and media["main"].asset["playback"]["hls"] in snippets["js"]
    page.goto(other_site.page("/hlsjs.html", snippets["js"]))
    page.wait_for_function("() => window.Hls && Hls.isSupported()")  # loaded cross-origin, SRI checked
    page.evaluate("() => { const v = document.getElementById('video'); v.muted = true; return v.play(); }")
    wait_playing(page, log=page.log)
    assert not [line for line in page.log if "CORS" in line or "integrity" in line], page.log.text()
