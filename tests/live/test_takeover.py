"""A live stream survives its worker: SIGKILL the process running a pushed stream; another worker takes
it over from the lease (core/live/takeover.py), the playlist continues after a discontinuity under the
same playback id, hls.js in Chromium keeps playing, and the recording holds both sides without a gap."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import av

from tests.live.conftest import chromium, kill, push
from tests.live.test_players import ARGS, HLS_PAGE, _library

TAKEOVER_LIMIT = 10.0  # s from the kill to the first segment published by the next worker


def _live_processes(stream_key: str) -> list[tuple[int, int]]:
    """(pid, parent pid) of every ffmpeg reading this stream from nginx: the live run's reader."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if any(argv[i - 1] == b"-i" and stream_key.encode() in a for i, a in enumerate(argv) if i):
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            found.append((int(entry.name), ppid))
    return found


def _reader_parent(stream_key: str, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parents = {ppid for _, ppid in _live_processes(stream_key)}
        if len(parents) == 1:
            return parents.pop()
        time.sleep(0.2)
    raise AssertionError(f"no single live worker reads {stream_key}: {_live_processes(stream_key)}")


def _media_playlist(live_stack, stream: dict) -> str:
    master = live_stack.play(stream["playback"]["hls"]).text
    variant = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
    return stream["playback"]["hls"].rsplit("/", 1)[0] + "/" + variant


def _segments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_sigkill_of_the_live_worker_moves_the_stream_to_another(live_stack, playwright_instance):
    chromium()
    hls_js = _library("hls.min.js")
    stream = live_stack.create(segment_duration=1, dvr_window=30)
    publisher = push(f"{live_stack.rtmp}/{stream['stream_key']}", seconds=60, size="426x240", fps=15)
    browser = playwright_instance.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    try:
        live_stack.wait(stream["id"], ("active",), timeout=20)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_content("<video width=426 height=240></video>")
        page.add_script_tag(content=hls_js.read_text())
        page.add_script_tag(content=f"const SOURCE = {stream['playback']['hls']!r};" + HLS_PAGE)
        page.wait_for_function("document.querySelector('video').currentTime > 2", timeout=30000)
        media_url = _media_playlist(live_stack, stream)
        before = live_stack.play(media_url).text
        assert "#EXT-X-DISCONTINUITY\n" not in before  # (not -SEQUENCE)
        last_before = _segments(before)[-1]

        victim = _reader_parent(stream["stream_key"])
        assert b"worker" in Path(f"/proc/{victim}/cmdline").read_bytes()  # a worker process, not the test
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        played_at_kill = page.evaluate("document.querySelector('video').currentTime")

        # Another worker publishes again within TAKEOVER_LIMIT: the next segment after a discontinuity.
        resumed = None
        while time.monotonic() - killed < TAKEOVER_LIMIT + 5:
            text = live_stack.play(media_url).text
            after = text.split("#EXT-X-DISCONTINUITY\n", 1)
            if len(after) == 2 and _segments(after[1]):
                resumed = time.monotonic() - killed
                break
            time.sleep(0.2)
        assert resumed is not None and resumed <= TAKEOVER_LIMIT, (resumed, live_stack.log.read_text()[-3000:])
        print(f"\ntakeover: first segment of the next worker listed {resumed:.2f} s after SIGKILL")
        assert last_before in _segments(text)  # the window from before the kill is still listed
        successor = _reader_parent(stream["stream_key"])
        assert successor != victim
        row = live_stack.get(stream["id"])
        assert row["status"] == "active" and row["playback_ids"] == stream["playback_ids"]

        # The playlist keeps growing after the takeover.
        count = len(_segments(text))
        deadline = time.monotonic() + 15
        while len(_segments(live_stack.play(media_url).text)) < count + 3:
            assert time.monotonic() < deadline, "the playlist stopped growing after the takeover"
            time.sleep(0.3)

        # hls.js keeps playing or recovers on its own: well past where it was at the kill.
        page.wait_for_function(f"document.querySelector('video').currentTime > {played_at_kill + 4}",
                               timeout=25000)
        assert not errors, errors
    finally:
        browser.close()
        kill(publisher)
    live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
    ended = live_stack.wait(stream["id"], ("ended",), timeout=30)

    # The recording: both workers' segments, one timeline, no gap (let alone one longer than the outage).
    asset = live_stack.client.get(f"/v1/assets/{ended['recording_asset_id']}").json()
    assert asset["status"] == "ready" and asset["playable"]
    vod = asset["playback"]["hls"]
    master = live_stack.play(vod).text
    variant = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
    base = vod.rsplit("/", 1)[0] + "/" + variant.rsplit("/", 1)[0]
    playlist = live_stack.play(f"{base}/index.m3u8").text
    names = _segments(playlist)
    assert names[0].startswith("00001.")  # from the first worker's first segment
    data = live_stack.play(f"{base}/init.mp4").content + b"".join(
        live_stack.play(f"{base}/{name}").content for name in names)
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        times = sorted(float(p.pts * video.time_base) for p in container.demux(video) if p.pts is not None)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert times and max(gaps) <= resumed, (max(gaps), resumed)
    assert max(gaps) < 0.5, max(gaps)  # the next worker continued the timeline where the last one ended
    assert abs((times[-1] - times[0]) - asset["duration"]) < 1.5, (times[-1] - times[0], asset["duration"])
