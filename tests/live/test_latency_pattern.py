"""The latency bench's burnt-in clock (bench/clock_pattern.py): exact roundtrip, refusals, and a real x264 trip."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from bench.clock_pattern import BITS, bits_clock, clock_bits, draw_clock, read_bits, read_clock
from bench.live_latency import sender_background

MS = 1_796_000_123_456  # a 2026 wall clock in ms: 41 significant bits


def test_bits_roundtrip_and_check_bits_refuse_damage():
    for ms in (0, 1, MS, (1 << 42) - 1):
        assert bits_clock(clock_bits(ms)) == ms
    bits = clock_bits(MS)
    for i in range(BITS):  # any single flipped block is refused, never read as another time
        damaged = list(bits)
        damaged[i] ^= 1
        assert bits_clock(damaged) is None, i
    assert bits_clock([0] * BITS) is None  # a black frame
    assert bits_clock([1] * BITS) is None  # a white one
    assert bits_clock(bits[:-1]) is None


def test_pattern_reads_back_after_scaling_to_the_lowest_rung_and_x264():
    """The sender's 720p picture, scaled to the 720p ladder's 360p rung and encoded starved, still reads."""
    frame = sender_background(1280, 720)[:, :1280].copy()
    draw_clock(frame, MS)
    assert read_clock(frame) == MS
    picture = av.VideoFrame.from_ndarray(np.stack([frame] * 3, axis=-1), format="rgb24")
    small = picture.reformat(width=640, height=360, format="yuv420p")
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 640, 360, "yuv420p"
    enc.time_base = Fraction(1, 25)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "45"}  # far below the rung's bitrate
    packets = [*enc.encode(small), *enc.encode(None)]
    assert packets
    dec = av.CodecContext.create("h264", "r")
    decoded = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    assert len(decoded) == 1
    luma = decoded[0].to_ndarray(format="gray")
    assert luma.shape == (360, 640)
    assert read_clock(luma) == MS
    assert read_bits(luma) == clock_bits(MS)


def test_bench_drives_hls_js_with_the_players_own_ll_settings():
    """bench/live_latency.py cuts the LL settings out of player/web/player.js: they exist, run, and say what
    the player applies (catch-up 1.5, one part of back-off after a stall; nothing for a standard playlist)."""
    import json
    import shutil
    import subprocess

    from bench.live_latency import player_ll_script

    node = shutil.which("node")
    assert node, "node runs the player's JS here (installed with the JS integration tests)"
    script = player_ll_script() + """
const ll = {live: true, partTarget: 0.28, partList: [{}]};
const video = {currentTime: 2, removeEventListener() {}};
const hls = {latestLevelDetails: {targetduration: 1}, liveSyncPosition: 9};
const jumps = [];
startNearEdge(); jumps.push(video.currentTime);  // 7 s behind the target: jumps to it
video.currentTime = 8.5; startNearEdge(); jumps.push(video.currentTime);  // within a target duration: stays
console.log(JSON.stringify({ll: isLowLatencyPlaylist(ll), std: isLowLatencyPlaylist({live: true, partList: null}),
                            settings: hlsLowLatencyConfig(ll), noPart: hlsLowLatencyConfig({partTarget: 0}), jumps}));
"""
    out = json.loads(subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout)
    assert out == {"ll": True, "std": False,
                   "settings": {"maxLiveSyncPlaybackRate": 1.5, "liveSyncOnStallIncrease": 0.28},
                   "noPart": {"maxLiveSyncPlaybackRate": 1.5}, "jumps": [9, 8.5]}
