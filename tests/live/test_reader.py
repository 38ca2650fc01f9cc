"""The live reader (core/live/reader.py): its argv, the stream info from its input dump, failure classes."""

from __future__ import annotations

from fractions import Fraction

import pytest

from core.live.probe import LiveSourceInfo
from core.live.reader import NO_MEDIA, REFUSED, UNREACHABLE, classify, parse_input_dump, reader_argv

RTMP_DUMP = """\
Input #0, flv, from 'rtmp://127.0.0.1:19351/live/x':
  Metadata:
    encoder         : Lavf63.1.102
  Duration: 00:00:08.00, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(progressive), 320x180 [SAR 1:1 DAR 16:9], 15 fps, 15 tbr, 1k tbn, start 0.023000
  Stream #0:1: Audio: aac (LC), 44100 Hz, mono, fltp, 69 kb/s
Stream mapping:
  Stream #0:0 -> #0:0 (copy)
Output #0, nut, to 'pipe:1':
  Stream #0:0: Video: h264 (H264 / 0x34363248), yuv420p(progressive), 1920x1080, q=2-31, 60 fps
"""

HLS_DUMP = """\
Input #0, hls, from 'http://127.0.0.1:41233/aGk.x/live.m3u8':
  Duration: N/A, start: 1.400000, bitrate: N/A
  Program 0
    Metadata:
      variant_bitrate : 0
  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p(tv, bt709, progressive), 720x576 [SAR 16:15 DAR 4:3], 29.97 fps, 29.97 tbr, 90k tbn
  Stream #0:1[0x101](und): Audio: aac (LC) ([15][0][0][0] / 0x000F), 48000 Hz, 5.1(side), fltp, 397 kb/s
  Stream #0:2[0x100]: Video: h264 (High), yuv420p, 1920x1080, 60 fps, 60 tbr, 90k tbn
Stream mapping:
"""

AUDIO_ONLY = """\
Input #0, rtsp, from 'rtsp://cam/audio':
  Stream #0:0: Audio: pcm_alaw, 8000 Hz, 1 channels, s16, 64 kb/s
Stream mapping:
"""


@pytest.mark.parametrize(("dump", "info"), [
    (RTMP_DUMP, LiveSourceInfo(320, 180, Fraction(15), 1, 44100)),
    (HLS_DUMP, LiveSourceInfo(768, 576, Fraction(30000, 1001), 6, 48000)),  # SAR 16:15 widens the picture
    (AUDIO_ONLY, LiveSourceInfo(0, 0, Fraction(30), 1, 8000)),
    ("Input #0, flv, from 'x':\nStream mapping:\n", None),
])  # fmt: skip
def test_parse_input_dump(dump, info):
    assert parse_input_dump(dump.splitlines()) == info


@pytest.mark.parametrize(("stderr", "words"), [
    ("[tcp @ 0x1] Connection to tcp://10.0.0.7:554?timeout=5000000 failed: Connection refused\n"
     "rtsp://10.0.0.7/cam: Connection refused", REFUSED),
    ("[tcp @ 0x1] Connection to tcp://10.0.0.7:1935 failed: Connection timed out", UNREACHABLE),
    ("[tcp @ 0x1] Connection to tcp://10.0.0.7:1935 failed: No route to host", UNREACHABLE),
    ("[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized\nrtsp://10.0.0.7/cam: Server returned 401 Unauthorized",
     "the source answered 401 Unauthorized"),
    ("[http @ 0x1] HTTP error 404 Not Found\nhttp://127.0.0.1:4000/a.m3u8: Server returned 404 Not Found",
     "the source answered 404 Not Found"),
    ("rtmp://10.0.0.7/live/x: Invalid data found when processing input", NO_MEDIA),
    ("", NO_MEDIA),
])  # fmt: skip
def test_classify_says_the_class_not_the_address(stderr, words):
    assert classify(stderr) == words
    assert "10.0.0.7" not in classify(stderr)


def test_reader_stderr_is_redacted():
    """What the reader printed is kept for the log without the passwords (core/redact.py)."""
    from collections import deque
    from threading import Event

    from core.live.reader import SourceReader

    reader = SourceReader(proc=None, lines=deque(["Input #0, rtsp, from 'rtsp://admin:s3c@ret@10.0.0.7:554/x':",
                                                  "[tcp] rtmp://k:pw@h/live?token=abc failed"]),
                          dump=[], dump_done=Event())
    tail = reader.stderr_tail
    assert "s3c" not in tail and "ret@" not in tail and "pw" not in tail and "abc" not in tail
    assert "rtsp://admin:[redacted]@10.0.0.7:554/x" in tail


def test_reader_argv():
    assert reader_argv("ffmpeg", "rtmp://127.0.0.1:1935/live/k", ("-rtmp_tcurl", "rtmp://cam:1935/live")) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", "-nostats",
        "-fflags", "nobuffer", "-flags", "low_delay", "-probesize", "1000000", "-analyzeduration", "1500000",
        "-protocol_whitelist", "rtmp,rtmps,tcp,tls", "-rtmp_live", "live", "-rw_timeout", "5000000",
        "-rtmp_tcurl", "rtmp://cam:1935/live", "-i", "rtmp://127.0.0.1:1935/live/k",
        "-map", "0:v:0?", "-map", "0:a?", "-c", "copy", "-flush_packets", "1",
        "-max_interleave_delta", "1000000", "-f", "nut", "pipe:1",
    ]  # fmt: skip
    proxied = reader_argv("ffmpeg", "http://127.0.0.1:9/t.s/live.m3u8", whitelist="http,tcp,hls,crypto")
    assert proxied[proxied.index("-protocol_whitelist") + 1] == "http,tcp,hls,crypto"
