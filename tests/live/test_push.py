"""Push over RTMP through the real nginx-rtmp → live HLS/DASH → stop → recording asset."""

from __future__ import annotations

import io
import re
import subprocess
import time

import av

from core.media.ffmpeg import find_ffmpeg
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.live.conftest import kill, push


def _segments(playlist: str) -> list[str]:
    return [line for line in playlist.splitlines() if line and not line.startswith("#")]


def test_push_live_stop_and_recording(live_stack):
    created = live_stack.create(segment_duration=2, dvr_window=60)  # longer than the push: all listed
    assert created["status"] == "idle" and created["recording_asset_id"] is None
    assert created["ingest"]["rtmp"].endswith(f"/live/{created['stream_key']}") and created["ingest"]["srt"].endswith(
        f"?streamid=#!::r={created['stream_key']},m=publish")
    play = created["playback"]
    # Longer than the test needs, ended by the test: a 10 s push that ended by itself was over before a
    # cold, loaded stack had shown `active` (the stream went active → reconnecting → ended unseen).
    publisher = push(f"{live_stack.rtmp}/{created['stream_key']}", seconds=40)
    try:
        live_stack.wait(created["id"], ("active",), timeout=30)
        # Live HLS: a sliding window with wall clock on every segment, no end yet.
        master = live_stack.play(play["hls"])
        assert master.status_code == 200, master.text
        variant = next(line for line in master.text.splitlines() if line.endswith("index.m3u8"))
        media_url = play["hls"].rsplit("/", 1)[0] + "/" + variant
        media = live_stack.play(media_url)
        assert media.headers["cache-control"] == "public, max-age=1"
        text = media.text
        assert "#EXT-X-ENDLIST" not in text and "#EXT-X-PLAYLIST-TYPE" not in text
        assert text.count("#EXT-X-PROGRAM-DATE-TIME:") == len(_segments(text)) >= 1
        first = _segments(text)[0]
        segment = live_stack.play(media_url.rsplit("/", 1)[0] + "/" + first)
        assert segment.status_code == 200 and "immutable" in segment.headers["cache-control"]
        # Live DASH: dynamic, with our own clock.
        mpd = live_stack.play(play["dash"])
        assert 'type="dynamic"' in mpd.text and "availabilityStartTime" in mpd.text
        assert f'value="{live_stack.api}/play/time"' in mpd.text
        validate_mpd(mpd.text)
        assert re.match(r"\d{4}-\d\d-\d\dT", live_stack.play(f"{live_stack.api}/play/time").text)
        pid = created["playback_ids"][0]["id"]
        deadline = time.monotonic() + 10
        while (thumb := live_stack.play(f"{live_stack.api}/play/{pid}/thumbnail.jpg")).status_code != 200:
            assert time.monotonic() < deadline, thumb.text
            time.sleep(0.3)
        assert thumb.content[:2] == b"\xff\xd8" and thumb.headers["content-type"] == "image/jpeg"
    finally:
        kill(publisher)
    # Reconnecting for the 6 s grace, then ended by itself: a test slowed by a loaded machine may
    # see either (it used to wait for `reconnecting` only, and failed when it looked too late).
    live_stack.wait(created["id"], ("reconnecting", "ended"), timeout=15)
    stopped = live_stack.client.post(f"/v1/live-streams/{created['id']}/stop")
    assert stopped.status_code == 200
    ended = live_stack.wait(created["id"], ("ended",), timeout=20)
    recording = live_stack.client.get(f"/v1/assets/{ended['recording_asset_id']}").json()
    # The recording's storyboard was made by the live worker before the stream was marked ended.
    board = recording["playback"]["hls"].rsplit("/", 1)[0] + "/storyboard.vtt"
    assert live_stack.play(board).text.startswith("WEBVTT")
    media = live_stack.play(media_url).text
    assert media.rstrip().endswith("#EXT-X-ENDLIST")
    mpd = live_stack.play(play["dash"]).text
    assert 'type="static"' in mpd
    validate_mpd(mpd)

    # The recording: an ordinary ready asset over the same segments, the live session's length. Its
    # length is media time, compared with media time (the ended live playlist lists every segment: its
    # window is longer than the push), not with the test's wall clock, which a loaded machine stretches.
    asset = live_stack.client.get(f"/v1/assets/{ended['recording_asset_id']}").json()
    assert asset["status"] == "ready" and asset["playable"]
    listed = sum(float(line.split(":", 1)[1].rstrip(",")) for line in media.splitlines()
                 if line.startswith("#EXTINF:"))
    assert abs(asset["duration"] - listed) <= 0.5, (asset["duration"], listed)
    assert 2 <= asset["duration"] <= 40.5, asset["duration"]  # at least a segment of the 40 s pushed, never more
    vod = asset["playback"]["hls"]
    master = live_stack.play(vod).text
    variant = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
    base = vod.rsplit("/", 1)[0] + "/" + variant.rsplit("/", 1)[0]
    playlist = live_stack.play(f"{base}/index.m3u8").text
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist
    data = live_stack.play(f"{base}/init.mp4").content + b"".join(
        live_stack.play(f"{base}/{name}").content for name in _segments(playlist))
    with av.open(io.BytesIO(data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert abs(frames / 25 - asset["duration"]) < 1.0
    validate_mpd(live_stack.play(asset["playback"]["dash"]).text)


def test_unknown_key_is_refused_before_media(live_stack):
    done = subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                           "testsrc2=size=320x240:rate=15", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast",
                           "-f", "flv", f"{live_stack.rtmp}/sk_not_a_key"], capture_output=True, timeout=30, check=False)
    assert done.returncode != 0


def test_reconnect_continues_with_a_discontinuity(live_stack):
    created = live_stack.create(segment_duration=1, record=False)
    url = f"{live_stack.rtmp}/{created['stream_key']}"
    first = push(url, seconds=30, size="320x180")
    try:
        live_stack.wait(created["id"], ("active",), timeout=20)
        time.sleep(2.5)
    finally:
        kill(first)  # the source dies mid-stream
    live_stack.wait(created["id"], ("reconnecting",), timeout=15)
    second = push(url, seconds=30, size="320x180")
    try:
        again = live_stack.wait(created["id"], ("active",), timeout=20)
        assert again["reconnects"] == 1 and again["playback_ids"] == created["playback_ids"]
        time.sleep(2.5)
        master = live_stack.play(created["playback"]["hls"]).text
        variant = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
        media = live_stack.play(created["playback"]["hls"].rsplit("/", 1)[0] + "/" + variant).text
        assert "#EXT-X-DISCONTINUITY\n" in media
        mpd = live_stack.play(created["playback"]["dash"]).text
        assert mpd.count("<Period ") == 2
        validate_mpd(mpd)
    finally:
        kill(second)
    live_stack.client.post(f"/v1/live-streams/{created['id']}/stop")
    ended = live_stack.wait(created["id"], ("ended",), timeout=20)
    assert ended["recording_asset_id"] is None


def test_stop_disconnects_the_publisher(live_stack):
    """nginx asks `on_update` every 3 s whether a publisher may go on; after stop the answer is no."""
    created = live_stack.create(segment_duration=1, record=False)
    publisher = push(f"{live_stack.rtmp}/{created['stream_key']}", seconds=120, size="320x180")
    try:
        live_stack.wait(created["id"], ("active",), timeout=20)
        assert publisher.poll() is None
        stopped = live_stack.client.post(f"/v1/live-streams/{created['id']}/stop")
        assert stopped.status_code == 200
        publisher.wait(15)  # dropped by nginx, long before its 120 s of media
        assert publisher.returncode != 0
    finally:
        kill(publisher)
    assert live_stack.wait(created["id"], ("ended",), timeout=20)["status"] == "ended"
