"""Real players in real Chromium against a real `abr dev` (API + worker) on a free port.

Chromium is Debian's package (`/usr/bin/chromium`, or `ABR_CHROMIUM`), driven
by Playwright for Python; Playwright's own browser download is never used.
Without Chromium or Playwright these tests skip, except in CI (`CI` set),
where that is a failure. Media is made by the real pipeline from generated
clips: one 8 s 640x360 asset in H.264 and VP8 (two rungs each, 2 s
segments) and one short signed asset, uploaded once per session.
Screenshots go to `test-artifacts/screenshots/`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port
from tests.helpers import TEST_KEY, upload_asset
from tests.media_fixtures import make_clip

CHROMIUM = os.environ.get("ABR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def _require(what: str, why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI: {why}")
    pytest.skip(f"{what} not available: {why}")


@dataclass
class Server:
    url: str
    key: str
    log: Path
    client: httpx.Client
    proc: subprocess.Popen

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"abr dev exited ({self.proc.returncode}):\n{self.log.read_text()[-4000:]}")

    def upload(self, path: Path, settings: dict) -> dict:
        self.check_alive()
        return upload_asset(self.client, path, settings)

    def wait_ready(self, asset_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            asset = self.client.get(f"/v1/assets/{asset_id}").json()
            if asset["status"] in ("ready", "errored"):
                assert asset["status"] == "ready", (asset["error"], self.log.read_text()[-3000:])
                return asset
            time.sleep(0.3)
        raise AssertionError(f"{asset_id} not ready after {timeout}s\n{self.log.read_text()[-3000:]}")

    def token(self, playback_id: str, expires_in: int = 600) -> str:
        r = self.client.post("/v1/playback-tokens", json={"playback_id": playback_id, "expires_in": expires_in})
        assert r.status_code == 201, r.text
        return r.json()["token"]


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    """`abr dev` on a free port with its own data dir; stopped (whole process group) at the end."""
    root = tmp_path_factory.mktemp("abr-dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABR_")}
    env.update(ABR_DATA_DIR=str(root / "data"), ABR_API_KEYS=TEST_KEY, PYTHONUNBUFFERED="1",
               # Its own RTMP port (never another run's 1935); live pulls from loopback test sources allowed.
               ABR_RTMP_PORT=str(free_port()), ABR_LIVE_PULL_ALLOW_NETWORKS="127.0.0.0/8")
    log = root / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", "--port", str(port)], env=env, cwd=REPO_ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while "abr dev is up" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"abr dev did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=30) as client:
            yield Server(url=url, key=TEST_KEY, log=log, client=client, proc=proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass
class Media:
    asset: dict
    playback_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.playback_id = self.asset["playback_ids"][0]["id"]

    @property
    def id(self) -> str:
        return self.asset["id"]


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser-clips")


@pytest.fixture(scope="session")
def media(server: Server, clips: Path) -> dict[str, Media]:
    """`main`: 8 s, 640x360 and 426x240 in H.264 and VP8; `signed`: 4 s H.264, signed playback."""
    main = server.upload(make_clip(clips / "main.mp4", duration=8, width=640, height=360, fps=30),
                         {"codecs": ["h264", "vp8"], "segment_duration": 2, "passthrough": "browser-main"})
    signed = server.upload(make_clip(clips / "signed.mp4", duration=4, width=320, height=180, fps=30),
                           {"codecs": ["h264"], "segment_duration": 2, "playback_policy": "signed"})
    return {"main": Media(server.wait_ready(main["id"])), "signed": Media(server.wait_ready(signed["id"]))}


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        _require("Chromium", f"{CHROMIUM} does not exist (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        _require("Playwright for Python", f"{exc} (pip install playwright; never `playwright install`)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium, server, chromium_browser):
    """The session's shared Chromium (tests/conftest.py), requested after `server` so it closes first."""
    return chromium_browser


@pytest.fixture(autouse=True)
def _chromium_first(chromium):
    """Skip (or fail, in CI) on a missing browser before a server starts and media is encoded."""


class PageLog(list):
    """Console errors and page errors of one page, for assertion messages."""

    def text(self) -> str:
        return "\n".join(self[-30:])


def open_context(browser, *, viewport=DESKTOP, phone: bool = False, key: str | None = None):
    ctx = browser.new_context(viewport=viewport, device_scale_factor=2 if phone else 1, is_mobile=phone,
                              has_touch=phone)
    ctx.set_default_timeout(20_000)
    if key:  # signed in to the dashboard, as after the first visit
        ctx.add_init_script(f"localStorage.setItem('abr.apiKey', {json.dumps(key)})")
    return ctx


@pytest.fixture
def context(browser):
    ctx = open_context(browser)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    page.log = PageLog()
    page.on("console", lambda m: page.log.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: page.log.append(f"pageerror: {e}"))
    return page


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def wait_playing(target, *, past: float = 3.0, timeout: float = 25_000, log: PageLog | None = None) -> dict:
    """Wait until the page's (or frame's) video plays past `past` seconds; return the player's state."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        target.wait_for_function(f"() => {{ const v = document.querySelector('video'); "
                                 f"return v && !v.paused && v.currentTime > {past}; }}", timeout=timeout)
    except PlaywrightTimeout:
        state = target.evaluate(PLAYER_STATE)
        raise AssertionError(f"video did not play past {past}s: {state}\n{log.text() if log else ''}") from None
    return target.evaluate(PLAYER_STATE)


PLAYER_STATE = """() => {
  const v = document.querySelector('video');
  const p = window.abrPlayer;
  return {
    currentTime: v && v.currentTime, videoHeight: v && v.videoHeight, paused: v && v.paused,
    engine: p ? p.engine : null, protocol: p ? p.protocol : null, error: p ? p.error : null,
    levels: p ? p.levels() : [], current: p ? p.currentLevel() : -1, auto: p ? p.autoLevel() : null,
  };
}"""
