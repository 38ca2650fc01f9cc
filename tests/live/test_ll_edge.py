"""Low-latency live at the edge: one real LL push (RTMP, nginx-rtmp, live worker) behind the real CDN config
(docker/nginx-cache.conf under Debian's nginx), played by real players in Chromium.

- nginx: a crowd of blocked playlist reloads for the next part is one origin request, answered alike to all;
  the answered blocking (and delta) URL is then a HIT; parts come through byte-identical.
- players: our player turns on hls.js's low-latency catch-up for the LL stream and sits nearer the live
  edge than hls.js with lowLatencyMode off on the same stream (which still plays it); Shaka plays it;
  hls.js parses the parts, CAN-BLOCK-RELOAD and PART-HOLD-BACK; dash.js in our player sees the LL MPD.

One push and one nginx serve every test here (module fixtures): small picture, 1 s segments, 0.25 s parts.
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import m3u8
import pytest

from tests.conftest import REPO_ROOT
from tests.live.conftest import kill, push
from tests.origin.live import nginx_cache

pytestmark = pytest.mark.timeout(180)

HLS_JS = REPO_ROOT / "player" / "vendor" / "hls.min.js"
PART_TARGET = 0.25
CROWD = 20


@dataclass
class LLStream:
    id: str
    playback_id: str
    media_path: str  # /play/<playback id>/<rendition>/index.m3u8
    cdn: str  # nginx (docker/nginx-cache.conf) in front of the API
    api: str


@pytest.fixture(scope="module")
def ll(live_stack, tmp_path_factory) -> Iterator[LLStream]:
    created = live_stack.create(segment_duration=1, dvr_window=20, latency_mode="low", part_target=PART_TARGET,
                                record=False)
    publisher = push(f"{live_stack.rtmp}/{created['stream_key']}", seconds=120, size="320x180", fps=15)
    try:
        live_stack.wait(created["id"], ("active",), timeout=20)
        master_url = created["playback"]["hls"]
        master = live_stack.play(master_url)
        variant = next(line for line in master.text.splitlines() if line.endswith("index.m3u8"))
        media_path = urlsplit(master_url).path.rsplit("/", 1)[0] + "/" + variant
        deadline = time.monotonic() + 15
        while "#EXT-X-PART:" not in (text := live_stack.play(live_stack.api + media_path).text):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        with nginx_cache(tmp_path_factory.mktemp("ll-nginx"), upstream=live_stack.api[len("http://"):]) as cdn:
            yield LLStream(created["id"], created["playback_ids"][0]["id"], media_path, cdn, live_stack.api)
    finally:
        kill(publisher)
        live_stack.client.post(f"/v1/live-streams/{created['id']}/stop")


def origin_manifest_requests(http: httpx.Client, api: str) -> int:
    """Manifest requests the origin served so far (its own counter, abr_origin_requests_total)."""
    text = http.get(f"{api}/metrics").text
    return int(sum(float(v) for v in re.findall(r'^abr_origin_requests_total\{class="manifest",[^}]*\} (\S+)$',
                                                text, re.M)))


def hint_of(playlist: str | m3u8.M3U8) -> tuple[int, int]:
    """(segment, part) of a playlist's EXT-X-PRELOAD-HINT: the part being encoded now."""
    parsed = m3u8.loads(playlist) if isinstance(playlist, str) else playlist
    msn, part = re.match(r"(\d+)\.(\d+)\.m4s", parsed.preload_hint.uri.rsplit("/", 1)[-1]).groups()
    return int(msn), int(part)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """One client (one connection pool) for a test: an httpx.get each would build an SSL context per
    request, seconds of CPU on a loaded machine before a crowd's requests even leave."""
    with httpx.Client(timeout=15, limits=httpx.Limits(max_connections=CROWD + 4)) as client:
        yield client


def test_blocked_crowd_is_one_origin_request_then_hits(ll, http):
    url = ll.cdn + ll.media_path
    get = http.get
    playlist = m3u8.loads(get(url).text)
    msn = hint_of(playlist)[0]  # the segment being encoded now
    # The first part of the next segment: it cannot exist yet, so every request for it is held.
    blocking = f"{url}?_HLS_msn={msn + 1}&_HLS_part=0"
    before = origin_manifest_requests(http, ll.api)
    answers: list[tuple[float, httpx.Response]] = []
    lock = threading.Lock()

    def ask() -> None:
        r = http.get(blocking)
        with lock:
            answers.append((time.monotonic(), r))

    started = time.monotonic()
    crowd = [threading.Thread(target=ask) for _ in range(CROWD)]
    for t in crowd:
        t.start()
    for t in crowd:
        t.join(20)
    after = origin_manifest_requests(http, ll.api)

    times = sorted(at for at, _ in answers)
    held, spread = times[0] - started, times[-1] - times[0]
    print(f"\ncrowd of {CROWD}: first answer after {held:.2f} s held, last {spread:.2f} s after the first; "
          f"asked for {msn + 1}.0, answered with hint {[hint_of(r.text) for _, r in answers[:1]]}")
    assert [r.status_code for _, r in answers] == [200] * CROWD
    bodies = {r.text for _, r in answers}
    assert len(bodies) == 1  # all N answered with the same playlist
    body = bodies.pop()
    # With the part it asked for (or past it, on a slow machine: only the last 3 segments list parts).
    assert hint_of(body) > (msn + 1, 0), (msn, body)
    statuses = sorted(r.headers["x-cache-status"] for _, r in answers)
    assert statuses == ["HIT"] * (CROWD - 1) + ["MISS"], statuses
    assert after - before == 1, (before, after)  # one origin request for the whole crowd
    assert answers[0][1].headers["cache-control"] == "public, max-age=6"  # 6 target durations: cacheable
    # nginx's lock waiters poll every 0.5 s: the crowd lags the first answer by at most that (+ load).
    assert spread < 1.5, spread

    # The next viewer of that blocking URL: straight from the cache, same body.
    again = get(blocking)
    assert (again.status_code, again.headers["x-cache-status"], again.text) == (200, "HIT", body)
    # A delta update of a part that exists: answered once by the origin, then a HIT.
    delta = f"{url}?_HLS_msn={msn + 1}&_HLS_part=0&_HLS_skip=YES"
    first, second = get(delta), get(delta)
    assert (first.status_code, first.headers["x-cache-status"]) == (200, "MISS")
    assert (second.headers["x-cache-status"], second.text) == ("HIT", first.text)
    assert origin_manifest_requests(http, ll.api) - before == 2, "the HITs above must not reach the origin"

    # Parts (and the init segment) through nginx: byte-identical to the origin's, then cached.
    answered = m3u8.loads(body)
    base = url.rsplit("/", 1)[0]
    uris = [answered.segment_map[0].uri] + [p.uri for s in answered.segments for p in s.parts][-4:]
    for uri in uris:
        direct = get(f"{ll.api}{urlsplit(base).path}/{uri}")
        edge, edge_again = get(f"{base}/{uri}"), get(f"{base}/{uri}")
        assert direct.status_code == 200 and len(direct.content) > 0, uri
        assert edge.content == direct.content and edge_again.content == direct.content, uri
        assert edge_again.headers["x-cache-status"] == "HIT", uri


# -- players -------------------------------------------------------------------------------------------

HLS_PAGE = """
const video = document.querySelector('video');
const hls = new Hls(CONFIG);
window.hls = hls;
window.levelDetails = null;
hls.on(Hls.Events.LEVEL_LOADED, (_, d) => { window.levelDetails = d.details; });
hls.loadSource(SOURCE); hls.attachMedia(video);
hls.on(Hls.Events.MANIFEST_PARSED, () => { video.muted = true; video.play(); });
"""


def hls_page(browser, source: str, config: dict):
    page = browser.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.set_content("<video width=320 height=180></video>")
    page.add_script_tag(content=HLS_JS.read_text())
    page.add_script_tag(content=f"const SOURCE = {json.dumps(source)}; const CONFIG = {json.dumps(config)};" + HLS_PAGE)
    return page


def player_page(browser, ll: LLStream, query: str):
    page = browser.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(f"{ll.cdn}/player/{ll.playback_id}?{query}&autoplay=1&muted=1")
    return page


def playing(page, past: float = 2.0, timeout: float = 40_000) -> None:
    page.wait_for_function(f"() => {{ const v = document.querySelector('video'); "
                           f"return v && !v.paused && v.currentTime > {past}; }}", timeout=timeout)


PART_URI = re.compile(r"/\d+\.\d+\.m4s$")  # 00042.3.m4s: a part (segments are 00042.m4s)


def advancing(*pages, seconds: float = 2.0) -> list[float]:
    """How far each page's video moved in `seconds` (measured side by side)."""
    t0 = [page.evaluate("document.querySelector('video').currentTime") for page in pages]
    time.sleep(seconds)
    return [page.evaluate("document.querySelector('video').currentTime") - t for page, t in zip(pages, t0)]


def test_our_player_in_ll_mode_is_nearer_the_edge_than_hlsjs_without_it(ll, chromium_browser):
    """Our player (hls.js, through nginx) and plain hls.js with lowLatencyMode off, side by side on one stream."""
    ours = player_page(chromium_browser, ll, "engine=hls")
    standard = hls_page(chromium_browser, ll.cdn + ll.media_path, {"lowLatencyMode": False})
    try:
        playing(ours)
        playing(standard)
        samples: dict[str, list[float]] = {"ll": [], "standard": []}
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # both settled past their start: sample side by side
            samples["ll"].append(ours.evaluate("window.abrPlayer.latency()"))
            samples["standard"].append(standard.evaluate("window.hls.latency"))
            time.sleep(0.25)
        mode = ours.evaluate("window.abrPlayer.lowLatency")
        moved = advancing(ours, standard, seconds=3.0)
        parts = [sum(1 for u in page.requests if PART_URI.search(u)) for page in (ours, standard)]
        assert not ours.errors and not standard.errors, (ours.errors, standard.errors)
    finally:
        ours.close()
        standard.close()
    assert mode["catchupRate"] == 1.5 and mode["holdBack"] == pytest.approx(3 * mode["partTarget"], abs=0.01), mode
    assert PART_TARGET <= mode["partTarget"] < PART_TARGET + 0.1, mode  # whole frames: 0.267 s at 15 fps
    # Both play on, in 3 s at least half speed on a loaded machine (standard players still play LL streams).
    assert moved[0] > 1.5 and moved[1] > 1.5, moved
    # LL mode loads parts; with lowLatencyMode off hls.js loads whole segments only (it still uses
    # blocking reloads: the playlist offers them).
    assert parts[0] > 0 and parts[1] == 0, parts
    ll_latency, standard_latency = statistics.median(samples["ll"]), statistics.median(samples["standard"])
    print(f"\nhls.js latency behind the live edge, median of {len(samples['ll'])} samples: "
          f"LL mode {ll_latency:.2f} s, lowLatencyMode off {standard_latency:.2f} s")
    # LL aims at PART-HOLD-BACK (0.8 s, plus up to a target duration after stalls); without lowLatencyMode
    # hls.js aims at 3 target durations: 3 s here, 6 s on a standard stream's 2 s segments, which the
    # bound below is out of reach for. Side by side on one machine, LL must also be the nearer one.
    # (A machine too loaded to decode in real time stalls both players far behind: `moved` shows it.)
    load = Path("/proc/loadavg").read_text().split()[0]
    assert ll_latency < 6.0 and ll_latency < standard_latency, (samples, moved, f"load average {load}")


def test_shaka_plays_the_ll_stream(ll, chromium_browser):
    page = player_page(chromium_browser, ll, "engine=shaka&protocol=hls")
    try:
        playing(page)
        moved, = advancing(page, seconds=3.0)
        state = page.evaluate("({engine: window.abrPlayer.engine, live: window.abrPlayer.live, "
                              "error: window.abrPlayer.error, ll: window.abrPlayer.lowLatency})")
        assert not page.errors, page.errors
    finally:
        page.close()
    assert state == {"engine": "shaka", "live": True, "error": None, "ll": None}, state
    assert moved > 1.5, moved  # in 3 s: it plays on (a loaded 2-core machine decodes slower than real time)


def test_hlsjs_parses_the_ll_playlist(ll, chromium_browser):
    page = hls_page(chromium_browser, ll.cdn + ll.media_path, {})
    try:
        page.wait_for_function("window.levelDetails !== null", timeout=15_000)
        details = page.evaluate("""(() => { const d = window.levelDetails; return {
            live: d.live, parts: d.partList ? d.partList.length : 0, partTarget: d.partTarget,
            canBlockReload: d.canBlockReload, partHoldBack: d.partHoldBack, canSkipUntil: d.canSkipUntil,
            hint: !!d.preloadHint, lowLatencyMode: window.hls.config.lowLatencyMode,
            independent: d.partList ? d.partList.filter((p) => p.independent).length : 0 }; })()""")
    finally:
        page.close()
    assert details["live"] and details["lowLatencyMode"] and details["hint"], details
    assert details["parts"] >= 3 and details["independent"] >= 1, details
    assert PART_TARGET <= details["partTarget"] < PART_TARGET + 0.1, details  # whole frames: 0.267 s at 15 fps
    assert details["partHoldBack"] == pytest.approx(3 * details["partTarget"], abs=0.01), details
    assert details["canBlockReload"] is True and details["canSkipUntil"] == 6, details



def test_dashjs_in_our_player_follows_the_ll_mpd(ll, chromium_browser):
    """The LL MPD (availabilityTimeOffset, ServiceDescription) is seen as LL and left to dash.js's own LL mode."""
    page = player_page(chromium_browser, ll, "engine=dash")
    try:
        playing(page)
        moved, = advancing(page, seconds=3.0)
        state = page.evaluate("({ll: window.abrPlayer.lowLatency, error: window.abrPlayer.error, "
                              "latency: window.abrPlayer.latency()})")
        assert not page.errors, page.errors
    finally:
        page.close()
    assert state["ll"] == {"from": "mpd"} and state["error"] is None, state
    assert moved > 1.5, moved
    print(f"\ndash.js latency (its own, wall clock): {state['latency']:.2f} s")
