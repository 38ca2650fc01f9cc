"""Live sources carrying several audio tracks: each becomes a track of the live HLS group and DASH sets."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from core.live.encode import build_live_argv
from core.live.plan import plan_live
from core.live.probe import LiveSourceInfo
from core.media.encode import EncodeJob
from core.media.ffmpeg import find_ffmpeg
from core.media.probe import AudioInfo
from tests.conftest import free_port
from tests.live.conftest import kill


def _stream(position: int, language: str) -> AudioInfo:
    return AudioInfo("aac", 2, None, 44100, None, language=language, position=position)


def test_plan_and_argv_carry_every_audio_track():
    info = LiveSourceInfo(320, 180, Fraction(15), 2, 44100, (_stream(0, "eng"), _stream(1, "fre")))
    plan = plan_live(info, {})
    assert [(r.id, r.language, r.source_stream) for r in plan.renditions if r.is_audio] == [
        ("audio", "en", 0), ("audio-2", "fr", 1)]
    job = EncodeJob(Path("live"), Path("/out"), plan.ladder, plan.audio, 2.0, plan.frame_rate,
                    more_audio=plan.more_audio)
    argv = build_live_argv("ffmpeg", job, source_url="rtmp://127.0.0.1/live/k", offset=10)
    maps = [argv[i + 1] for i, a in enumerate(argv) if a == "-map" and argv[i + 1].startswith("0:a:")]
    assert maps == ["0:a:0", "0:a:1"]
    # One `-af` (no stream specifier) pads every audio output stream alike.
    assert argv.count("-af") == 1 and argv[argv.index("-af") + 1] == "aresample=async=1:first_pts=0"
    # A single-audio source is planned as before.
    single = plan_live(LiveSourceInfo(320, 180, Fraction(15), 2, 44100, (_stream(0, "eng"),)), {})
    assert single.more_audio == () and single.audio.language == ""


@pytest.fixture
def two_language_hls(tmp_path):
    """A live HLS source whose MPEG-TS segments carry English (300 Hz) and French (500 Hz) audio."""
    root = tmp_path / "hls"
    root.mkdir()
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    writer = subprocess.Popen([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-re",
                               "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15",
                               "-f", "lavfi", "-i", "sine=f=300:sample_rate=44100",
                               "-f", "lavfi", "-i", "sine=f=500:sample_rate=44100",
                               "-map", "0:v", "-map", "1:a", "-map", "2:a",
                               "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-c:a", "aac",
                               "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre",
                               "-f", "hls", "-hls_time", "1", "-hls_list_size", "5",
                               "-hls_flags", "delete_segments", str(root / "live.m3u8")],
                              start_new_session=True)
    deadline = time.monotonic() + 15
    while not (root / "live.m3u8").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/live.m3u8"
    finally:
        kill(writer)
        httpd.shutdown()


def test_live_source_with_two_languages(live_stack, two_language_hls):
    stream = live_stack.create(source_url=two_language_hls, segment_duration=1, record=False)
    live = live_stack.wait(stream["id"], ("active",), timeout=40)
    assert [r["id"] for r in live["plan"]["renditions"] if r["codec"] == "aac"] == ["audio", "audio-2"]
    deadline = time.monotonic() + 20
    while True:
        master = live_stack.play(stream["playback"]["hls"])
        if master.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert master.status_code == 200, master.text
    assert 'LANGUAGE="en",DEFAULT=YES' in master.text and 'LANGUAGE="fr",DEFAULT=NO' in master.text, master.text
    mpd = live_stack.play(stream["playback"]["dash"])
    assert mpd.status_code == 200 and mpd.text.count('contentType="audio"') == 2 and 'lang="fr"' in mpd.text
    live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")


def test_reader_dump_lists_every_audio_stream_with_its_language():
    from core.live.reader import parse_input_dump

    dump = """Input #0, hls, from 'http://127.0.0.1:9/live.m3u8':
  Stream #0:0[0x100]: Video: h264 (High), yuv420p(progressive), 320x180, 15 fps, 15 tbr, 90k tbn
  Stream #0:1[0x101](eng): Audio: aac (LC) ([15][0][0][0] / 0x000F), 44100 Hz, stereo, fltp
  Stream #0:2[0x102](fre): Audio: aac (LC) ([15][0][0][0] / 0x000F), 48000 Hz, mono, fltp
Stream mapping:"""
    info = parse_input_dump(dump.splitlines())
    assert (info.audio_channels, info.audio_sample_rate) == (2, 44100)
    assert [(a.position, a.language, a.channels, a.sample_rate) for a in info.audio_streams] == [
        (0, "eng", 2, 44100), (1, "fre", 1, 48000)]
