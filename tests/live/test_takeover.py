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

from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.live.conftest import chromium, kill, push
from tests.live.sources import hls_live_source
from tests.live.test_players import ARGS, HLS_PAGE, _library

TAKEOVER_LIMIT = 10.0  # s from the kill to the first segment published by the next worker


def _live_processes(stream_id: str) -> list[tuple[int, int]]:
    """(pid, parent pid) of every ffmpeg encoding this stream: its argv names the run's work directory,
    data/work/live/<stream id>/<run id>/, whatever the source (push or pull)."""
    marker = f"/live/{stream_id}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if any(marker in a for a in argv):
            found.append((int(entry.name), int(stat.rsplit(")", 1)[1].split()[1])))
    return found


def _worker_of(stream_id: str, timeout: float = 10) -> int:
    """The pid of the worker process running the stream (the encoder's parent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parents = {ppid for _, ppid in _live_processes(stream_id)}
        if len(parents) == 1:
            return parents.pop()
        time.sleep(0.2)
    raise AssertionError(f"no single live worker encodes {stream_id}: {_live_processes(stream_id)}")


def _kill_worker(stream: dict) -> tuple[int, float]:
    victim = _worker_of(stream["id"])
    assert b"worker" in Path(f"/proc/{victim}/cmdline").read_bytes()  # a worker process, not the test
    os.kill(victim, signal.SIGKILL)
    return victim, time.monotonic()


def _wait_resumed(live_stack, media_url: str, killed: float) -> tuple[float, str]:
    """Seconds from the kill until a segment is listed after a discontinuity, and that playlist."""
    while time.monotonic() - killed < TAKEOVER_LIMIT + 5:
        text = live_stack.play(media_url).text
        after = text.split("#EXT-X-DISCONTINUITY\n", 1)
        if len(after) == 2 and _segments(after[1]):
            return time.monotonic() - killed, text
        time.sleep(0.2)
    raise AssertionError(f"nothing published after the kill\n{live_stack.log.read_text()[-3000:]}")


def _wait_growing(live_stack, media_url: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while len(_segments(live_stack.play(media_url).text)) < count + 3:
        assert time.monotonic() < deadline, "the playlist stopped growing after the takeover"
        time.sleep(0.3)


def _check_recording(live_stack, recording_id: str, outage: float) -> None:
    """Both workers' segments in one timeline, with no gap (let alone one longer than the outage)."""
    asset = live_stack.client.get(f"/v1/assets/{recording_id}").json()
    assert asset["status"] == "ready" and asset["playable"]
    vod = asset["playback"]["hls"]
    master = live_stack.play(vod).text
    variant = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
    base = vod.rsplit("/", 1)[0] + "/" + variant.rsplit("/", 1)[0]
    names = _segments(live_stack.play(f"{base}/index.m3u8").text)
    assert names[0].startswith("00001.")  # from the first worker's first segment
    data = live_stack.play(f"{base}/init.mp4").content + b"".join(
        live_stack.play(f"{base}/{name}").content for name in names)
    # PyAV (libavformat, what ffprobe runs; the imageio-ffmpeg wheel ships no ffprobe binary).
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        times = sorted(float(p.pts * video.time_base) for p in container.demux(video) if p.pts is not None)
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(f"recording: {times[-1] - times[0]:.2f} s of video, largest gap between frames {max(gaps):.3f} s")
    assert max(gaps) <= outage, (max(gaps), outage)
    assert max(gaps) < 0.5, max(gaps)  # the next worker continued the timeline where the last one ended
    assert abs((times[-1] - times[0]) - asset["duration"]) < 1.5, (times[-1] - times[0], asset["duration"])


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

        victim, killed = _kill_worker(stream)
        played_at_kill = page.evaluate("document.querySelector('video').currentTime")

        # Another worker publishes again within TAKEOVER_LIMIT: the next segment after a discontinuity.
        resumed, text = _wait_resumed(live_stack, media_url, killed)
        print(f"\ntakeover (push): first segment of the next worker listed {resumed:.2f} s after SIGKILL")
        assert resumed <= TAKEOVER_LIMIT, resumed
        assert last_before in _segments(text)  # the window from before the kill is still listed
        assert _worker_of(stream["id"]) != victim
        # The run publishes a segment, then records `active` (core/live/session.py poll): the row follows
        # the playlist by one database write, so it is waited for, briefly, not read at once.
        row = live_stack.wait(stream["id"], ("active",), timeout=5)
        assert row["playback_ids"] == stream["playback_ids"]
        mpd = live_stack.play(stream["playback"]["dash"]).text  # DASH: the join is a new Period
        assert mpd.count("<Period ") == 2, mpd
        validate_mpd(mpd)

        # The playlist keeps growing after the takeover.
        _wait_growing(live_stack, media_url, len(_segments(text)))

        # hls.js keeps playing or recovers on its own: well past where it was at the kill.
        page.wait_for_function(f"document.querySelector('video').currentTime > {played_at_kill + 4}",
                               timeout=25000)
        assert not errors, errors
    finally:
        browser.close()
        kill(publisher)
    live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
    ended = live_stack.wait(stream["id"], ("ended",), timeout=30)

    _check_recording(live_stack, ended["recording_asset_id"], resumed)


def test_sigkill_of_the_worker_pulling_a_source_reopens_it(live_stack, tmp_path):
    # Run after the push takeover above: a second pool child SIGKILLed in the same worker. On the embedded
    # broker that once stopped the worker's consumer for good (issue #15, workers/sqla_broker.py).
    with hls_live_source(tmp_path / "hls") as source:
        stream = live_stack.create(source_url=source, segment_duration=1, dvr_window=30)
        try:
            live_stack.wait(stream["id"], ("active",), timeout=40)
            media_url = _media_playlist(live_stack, stream)
            victim, killed = _kill_worker(stream)
            resumed, text = _wait_resumed(live_stack, media_url, killed)
            print(f"\ntakeover (pull): first segment of the next worker listed {resumed:.2f} s after SIGKILL")
            assert resumed <= TAKEOVER_LIMIT, resumed
            assert _worker_of(stream["id"]) != victim
            _wait_growing(live_stack, media_url, len(_segments(text)))
        finally:
            live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
        ended = live_stack.wait(stream["id"], ("ended",), timeout=30)
    _check_recording(live_stack, ended["recording_asset_id"], resumed)
