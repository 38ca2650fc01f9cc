"""Low-latency live, step 1: CMAF parts from the live encoder, published while their segment is written."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import time
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from core import layout
from core.live.encode import build_live_argv, build_live_raw_argv
from core.live.plan import plan_live
from core.live.probe import LiveSourceInfo
from core.live.publisher import LivePublisher
from core.media.cmaf_parts import Fragment, complete_fragments
from core.media.encode import EncodeJob, RawVideo, stream_map
from core.media.ffmpeg import find_ffmpeg
from core.media.live_model import LIVE_PRESENTATION, LivePresentation
from core.storage.local import LocalStorage
from tests.live.conftest import kill


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _fragment(decode_time: int, durations: list[int], first_flags: int, mdat: bytes) -> bytes:
    tfhd = _box(b"tfhd", struct.pack(">II", 0x020000, 1))  # default-base-is-moof, no defaults
    tfdt = _box(b"tfdt", struct.pack(">IQ", 0x01000000, decode_time))
    # data offset, first sample flags, per-sample duration and size
    trun = _box(b"trun", struct.pack(">IIiI", 0x000305, len(durations), 0, first_flags)
                + b"".join(struct.pack(">II", d, 10) for d in durations))
    return _box(b"moof", _box(b"mfhd", struct.pack(">II", 0, 1)) + _box(b"traf", tfhd + tfdt + trun)) \
        + _box(b"mdat", mdat)


def test_complete_fragments_exact():
    styp = _box(b"styp", b"msdh\x00\x00\x00\x00msdh")
    one = _fragment(9000, [1000, 1000, 1000], 0x02000000, b"k" * 30)  # sync sample first
    two = _fragment(12000, [1000, 1500], 0x01010000, b"p" * 20)  # non-sync first
    data = styp + one + two
    expected = [Fragment(0, len(styp) + len(one), 9000, 3000, True),
                Fragment(len(styp) + len(one), len(two), 12000, 2500, False)]
    assert complete_fragments(data) == expected
    # A fragment whose mdat is still being written is not a part yet.
    assert complete_fragments(data[:-1]) == expected[:1]
    assert complete_fragments(data[:len(styp) + 20]) == []
    # Resuming after the first part (the publisher reads from its byte offset on).
    assert complete_fragments(data[expected[1].offset:]) == [Fragment(0, len(two), 12000, 2500, False)]


def test_part_args_only_for_low_latency():
    info = LiveSourceInfo(320, 180, Fraction(30), 0, 0)
    plan = plan_live(info, {})
    job = EncodeJob(Path("live"), Path("/out"), plan.ladder, plan.audio, 1.0, plan.frame_rate)
    standard = build_live_argv("ffmpeg", job, source_url="rtmp://127.0.0.1/live/k", offset=0.1)
    low = build_live_argv("ffmpeg", job, source_url="rtmp://127.0.0.1/live/k", offset=0.1, part_target=0.25)
    assert "-frag_duration" not in standard and "-streaming" not in standard
    tail = low[low.index("-window_size"):]
    assert tail[4:10] == ["-frag_type", "duration", "-frag_duration", "0.25", "-streaming", "1"]
    assert low[-1] == standard[-1]  # the (unused) manifest is still the last argument


def test_live_x264_takes_the_live_preset_and_x265_keeps_the_vod_one():
    info = LiveSourceInfo(1280, 720, Fraction(25), 0, 0)
    for codec, preset in (("h264", "superfast"), ("h265", "veryfast")):
        plan = plan_live(info, {"codecs": [codec]})
        job = EncodeJob(Path("live"), Path("/out"), plan.ladder, plan.audio, 1.0, plan.frame_rate)
        argv = build_live_argv("ffmpeg", job, source_url="rtmp://127.0.0.1/live/k", offset=0.1)
        at = argv.index("-preset")
        assert argv[at - 2:at + 4] == ["-c:v", "libx264" if codec == "h264" else "libx265", "-preset", preset,
                                       "-tune", "zerolatency"], argv
        assert argv.count("-preset") == 1
        # The VOD ladder's per-rung presets (core/media/rungs.py) stay out of live: LIVE_X264_PRESET for every rung.
        assert [a for a in argv if a.startswith("-preset:")] == []
        raw_video = RawVideo(1280, 720, "yuv420p", Fraction(25))
        raw = build_live_raw_argv("ffmpeg", replace(job, raw_video=raw_video), audio_fifo="/tmp/a.nut", offset=0.1)
        assert [a for a in raw if a.startswith("-preset")] == ["-preset"]


def test_parts_published_before_their_segment(tmp_path):
    """A real 2-rung encode: every part appears while its segment is still being written, as bytes of it."""
    info = LiveSourceInfo(640, 360, Fraction(30), 0, 0)
    plan = plan_live(info, {"ladder": [{"height": 360, "bitrate": 600_000}, {"height": 180, "bitrate": 200_000}]})
    out = tmp_path / "session"
    out.mkdir()
    job = EncodeJob(Path("live"), out, plan.ladder, None, 1.0, plan.frame_rate)
    renditions = {r.id: r for r in plan.renditions}
    outputs = {rep: renditions[rid] for rep, rid in stream_map(job).items()}
    argv = build_live_argv(find_ffmpeg(), job, source_url="pipe:0", offset=0.1, part_target=0.25,
                           input_options=["-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
    storage = LocalStorage(tmp_path / "store")
    publisher = LivePublisher(storage, "ls1", segment_duration=1.0, dvr_window=30, record=True, part_target=0.25)
    publisher.begin_session(out, outputs, offset=0.1)
    ids = [r.id for r in plan.renditions]
    seen_before_segment: set[tuple[str, int]] = set()  # (rendition, segment) with a part out before the segment
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        def done() -> bool:  # every rung has 3 segments (they close within a poll of each other)
            return len(publisher.tracks) == len(ids) and all(len(t.segments) >= 3 for t in publisher.tracks.values())

        while time.monotonic() < deadline and not done():
            publisher.collect()
            for rid in ids:
                for part in publisher.parts.get(rid, []):
                    seg_key = layout.media_key("ls1", f"{rid}/{part.segment:05d}.m4s")
                    if not storage.exists(seg_key):
                        seen_before_segment.add((rid, part.segment))
            time.sleep(0.02)
    finally:
        kill(proc)
    assert done(), proc.stderr.read().decode()[-2000:]
    for rid in ids:
        track = publisher.tracks[rid]
        assert {(rid, n) for n in (1, 2, 3)} <= seen_before_segment
        by_segment: dict[int, list] = {}
        for part in publisher.parts[rid]:
            by_segment.setdefault(part.segment, []).append(part)
        for segment in track.segments[:3]:
            parts = by_segment[segment.number]
            assert [p.index for p in parts] == list(range(len(parts)))
            assert len(parts) == 4  # 1 s in parts of 8 frames (0.267 s, the muxer rounds to frames)
            assert [p.independent for p in parts] == [True, False, False, False]
            assert sum(p.duration for p in parts) == segment.duration
            assert all(p.duration <= 0.34 * track.timescale for p in parts)
            joined = b"".join(storage.get_bytes(layout.media_key("ls1", p.uri(track))) for p in parts)
            assert joined == storage.get_bytes(layout.media_key("ls1", track.segment_uri(segment.number)))
    # Keyframes aligned across rungs: the segments (and so the independent parts) start together.
    starts = [[s.start * 1000 // publisher.tracks[rid].timescale for s in publisher.tracks[rid].segments[:3]]
              for rid in ids]
    assert starts[0] == starts[1]
    live = LivePresentation.from_dict(json.loads(storage.get_bytes(layout.media_key("ls1", LIVE_PRESENTATION))))
    assert live.part_target == 0.25 and set(live.parts) == set(ids)
    assert live.parts == {rid: publisher.parts[rid] for rid in ids}


def test_latency_mode_settings():
    import pytest
    from pydantic import ValidationError

    from core.live.encode import part_target
    from core.services.live_streams import LiveStreamCreate

    low = LiveStreamCreate(latency_mode="low", segment_duration=1.0, part_target=0.25)
    assert part_target(low.model_dump()) == 0.25
    assert part_target(LiveStreamCreate().model_dump()) is None  # standard by default
    assert part_target({"segment_duration": 2.0}) is None  # a stream created before LL existed
    for bad in ({"segment_duration": 4.0}, {"codecs": ["vp8"]}, {"segment_duration": 1.0, "part_target": 0.5},
                {"part_target": 0.05}):
        with pytest.raises(ValidationError):
            LiveStreamCreate(latency_mode="low", **bad)


def test_low_latency_push_end_to_end(live_stack):
    """RTMP push through nginx-rtmp into a latency_mode=low stream: the worker's playlists carry parts that play."""
    import m3u8

    from tests.live.conftest import push

    created = live_stack.create(segment_duration=1, dvr_window=20, latency_mode="low", part_target=0.25)
    play = created["playback"]
    publisher = push(f"{live_stack.rtmp}/{created['stream_key']}", seconds=8)
    try:
        live_stack.wait(created["id"], ("active",), timeout=20)
        master = live_stack.play(play["hls"])
        variant = next(line for line in master.text.splitlines() if line.endswith("index.m3u8"))
        media_url = play["hls"].rsplit("/", 1)[0] + "/" + variant
        deadline = time.monotonic() + 15
        while "#EXT-X-PART:" not in (text := live_stack.play(media_url).text):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        playlist = m3u8.loads(text)
        assert playlist.server_control.can_block_reload == "YES" and playlist.preload_hint is not None
        part = next(p for s in playlist.segments for p in s.parts)
        body = live_stack.play(media_url.rsplit("/", 1)[0] + "/" + part.uri)
        assert body.status_code == 200 and b"moof" in body.content[:200]
        # A blocking reload for the hinted part is answered once the encoder closes it.
        msn, index = re.match(r"(\d+)\.(\d+)\.m4s", playlist.preload_hint.uri).groups()
        started = time.monotonic()
        held = live_stack.play(f"{media_url}?_HLS_msn={int(msn)}&_HLS_part={int(index)}")
        assert held.status_code == 200 and f'URI="{playlist.preload_hint.uri}"' in held.text
        assert time.monotonic() - started < 3.0
    finally:
        kill(publisher)


def test_a_period_settles_to_the_earliest_wall_clock_its_segments_allow(tmp_path):
    """An encoder that starts behind closes its first segment late; later segments, closed nearer their
    media time, move the period's wall clock (availabilityStartTime, PROGRAM-DATE-TIME) earlier only."""
    from core.live.publisher import PERIOD_SETTLE_S
    from core.media.live_model import Period

    now = [1000.0]
    publisher = LivePublisher(LocalStorage(tmp_path), "ls1", segment_duration=1.0, dvr_window=30, record=False,
                              clock=lambda: now[0])
    publisher.periods = [Period("p0", 0.1, 998.0)]  # the first segment (0.1-1.1) closed at 999.0: 3 s behind
    now[0] = 999.8
    publisher._settle_period(2.1)  # the second closed 2.0 s after its media start: 997.8
    assert publisher.periods[-1].wall == 997.8
    now[0] = 1005.0
    publisher._settle_period(3.1)  # late (a busy moment): never moves later
    now[0] = 1000.75
    publisher._settle_period(3.1)  # 0.05 s better: not worth a change
    assert publisher.periods[-1].wall == 997.8
    now[0] = 1000.0 + PERIOD_SETTLE_S
    publisher._settle_period(PERIOD_SETTLE_S + 0.2)  # past the settling span: fixed
    assert publisher.periods[-1].wall == 997.8
    # A later period (a reconnect at media time 10.1) never starts before the previous one's media ended.
    publisher.periods.append(Period("p1", 10.1, 1010.0))
    now[0] = 1000.0
    publisher._settle_period(11.1)
    assert publisher.periods[-1].wall == 997.8 + 10.0 == publisher.periods[0].wall + (10.1 - 0.1)
