"""SRT push through the real listener (`abr ingest --no-rtmp`, libsrt): many publishers on one UDP port,
refusals at the handshake, stop disconnecting, and a lossy path that still gives a clean stream."""

from __future__ import annotations

import io
import random
import select
import socket
import subprocess
import threading
import time

import av
import httpx

from core.live.srt_ingest import relay_url
from core.media.ffmpeg import find_ffmpeg
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.live.conftest import kill
from tests.live.test_players import HLS_PAGE, _library

# Distinct solid colours: each stream's marker, checked in its own decoded segments.
COLOURS = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}
SMALL = {"segment_duration": 1, "record": False, "ladder": [{"height": 180, "bitrate": 200_000}]}


def srt_push(port: int, key: str, colour: str, *, seconds: float, extra: str = "", noise: bool = False,
             tone: int = 440) -> subprocess.Popen:
    """ffmpeg publishing a solid colour (the stream's marker) and a tone as MPEG-TS over SRT, in real time."""
    video = f"color=c={colour}:size=320x180:rate=15" + (",noise=alls=12:allf=t" if noise else "")
    url = f"srt://127.0.0.1:{port}?streamid=#!::r={key},m=publish{extra}"
    return subprocess.Popen([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                             "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", f"sine=f={tone}:sample_rate=48000",
                             "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                             "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "mpegts", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _media_url(stack, stream: dict) -> str:
    hls = stream["playback"]["hls"]
    master = stack.play(hls).text
    variant = next(line for line in master.splitlines() if line.endswith("index.m3u8"))
    return hls.rsplit("/", 1)[0] + "/" + variant


def _decoded_frames(stack, stream: dict, last: int = 2) -> list[av.VideoFrame]:
    """The video frames of the stream's newest `last` segments, decoded independently (init + segments)."""
    media = _media_url(stack, stream)
    text = stack.play(media).text
    names = [line for line in text.splitlines() if line and not line.startswith("#")][-last:]
    init = next(line.split('URI="')[1].split('"')[0] for line in text.splitlines() if line.startswith("#EXT-X-MAP"))
    base = media.rsplit("/", 1)[0]
    data = stack.play(f"{base}/{init}").content + b"".join(stack.play(f"{base}/{n}").content for n in names)
    with av.open(io.BytesIO(data)) as container:
        return list(container.decode(video=0))


def _blocks(frame: av.VideoFrame, n: int = 4) -> list[tuple[int, int, int]]:
    """The frame shrunk to n×n RGB blocks (each the mean of its area)."""
    plane = frame.reformat(width=n, height=n, format="rgb24", interpolation="AREA").planes[0]
    raw, line = bytes(plane), plane.line_size
    return [tuple(raw[y * line + 3 * x: y * line + 3 * x + 3]) for y in range(n) for x in range(n)]


def _colour_of(frame: av.VideoFrame) -> str:
    r, g, b = _blocks(frame, 1)[0]
    return min(COLOURS, key=lambda c: sum((a - v) ** 2 for a, v in zip(COLOURS[c], (r, g, b), strict=True)))


def _refused(proc: subprocess.Popen) -> None:
    """The caller's connect failed at the handshake (ffmpeg never opened its output)."""
    assert proc.wait(20) != 0
    assert b"Error opening output" in proc.stderr.read()


def test_four_publishers_on_one_port(live_stack, playwright_instance):
    streams = {colour: live_stack.create(**SMALL) for colour in COLOURS}
    for s in streams.values():
        assert s["ingest"]["srt"] == (f"srt://127.0.0.1:{live_stack.srt_port}"
                                      f"?streamid=#!::r={s['stream_key']},m=publish")
        assert s["ingest"]["srt_status"] == {"available": True, "reason": None}
    pushers = [srt_push(live_stack.srt_port, s["stream_key"], colour, seconds=60, tone=440 + 220 * i)
               for i, (colour, s) in enumerate(streams.items())]
    try:
        for s in streams.values():
            live_stack.wait(s["id"], ("active",), timeout=60)
        # A second publisher on a live key is refused at the handshake; the first one goes on.
        _refused(srt_push(live_stack.srt_port, streams["red"]["stream_key"], "blue", seconds=5))
        time.sleep(2)
        for colour, s in streams.items():
            frames = _decoded_frames(live_stack, s)
            assert len(frames) >= 10
            seen = {_colour_of(f) for f in frames}
            assert seen == {colour}, (colour, seen)  # only its own content, never another stream's
            now = live_stack.get(s["id"])
            assert now["status"] == "active" and now["reconnects"] == 0
        # One of them plays in hls.js (real Chromium).
        lib = _library("hls.min.js")
        browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_content("<video width=320 height=180></video>")
            page.add_script_tag(content=lib.read_text())
            page.add_script_tag(content=f"const SOURCE = {streams['lime']['playback']['hls']!r};" + HLS_PAGE)
            page.wait_for_function("document.querySelector('video').currentTime > 2", timeout=40000)
            t0 = page.evaluate("document.querySelector('video').currentTime")
            time.sleep(3)
            t1 = page.evaluate("document.querySelector('video').currentTime")
        finally:
            browser.close()
        assert t1 - t0 > 1.5 and not errors, (t0, t1, errors)
    finally:
        for p in pushers:
            kill(p)
        for s in streams.values():
            live_stack.client.post(f"/v1/live-streams/{s['id']}/stop")


def test_unknown_and_ended_keys_are_refused_at_the_handshake(live_stack):
    _refused(srt_push(live_stack.srt_port, "sk_not_a_key", "red", seconds=3))
    ended = live_stack.create(**SMALL)
    assert live_stack.client.post(f"/v1/live-streams/{ended['id']}/stop").json()["status"] == "ended"
    _refused(srt_push(live_stack.srt_port, ended["stream_key"], "red", seconds=3))
    _refused(srt_push(live_stack.srt_port, "", "red", seconds=3))  # no streamid at all
    after = live_stack.get(ended["id"])
    assert after["status"] == "ended" and after["plan"] is None  # no encoder ever started
    # A pull stream takes no publisher either.
    pull = live_stack.create(source_url="rtsp://127.0.0.1:9/none", **SMALL)
    assert pull["ingest"]["srt"] is None and pull["ingest"]["srt_status"] is None
    _refused(srt_push(live_stack.srt_port, pull["stream_key"], "red", seconds=3))
    live_stack.client.delete(f"/v1/live-streams/{pull['id']}")


def test_passphrase_and_stop_disconnects_the_publisher(live_stack):
    created = live_stack.create(srt_passphrase="a-long-passphrase", **SMALL)
    assert created["settings"]["srt_passphrase"] == "a-long-passphrase"
    _refused(srt_push(live_stack.srt_port, created["stream_key"], "red", seconds=3))  # none given
    _refused(srt_push(live_stack.srt_port, created["stream_key"], "red", seconds=3,
                      extra="&passphrase=the-wrong-phrase"))
    assert live_stack.get(created["id"])["status"] == "idle"  # no worker was started for them
    publisher = srt_push(live_stack.srt_port, created["stream_key"], "red", seconds=120,
                         extra="&passphrase=a-long-passphrase")
    try:
        live_stack.wait(created["id"], ("active",), timeout=40)
        assert publisher.poll() is None
        assert live_stack.client.post(f"/v1/live-streams/{created['id']}/stop").status_code == 200
        publisher.wait(15)  # dropped by the listener, long before its 120 s of media
    finally:
        kill(publisher)
    assert live_stack.wait(created["id"], ("ended",), timeout=20)["status"] == "ended"


def test_reconnect_continues_the_same_stream(live_stack):
    created = live_stack.create(**SMALL)
    first = srt_push(live_stack.srt_port, created["stream_key"], "red", seconds=60)
    try:
        live_stack.wait(created["id"], ("active",), timeout=40)
        time.sleep(2)
    finally:
        kill(first)  # the encoder dies mid-stream
    live_stack.wait(created["id"], ("reconnecting",), timeout=15)
    second = srt_push(live_stack.srt_port, created["stream_key"], "lime", seconds=60)
    try:
        again = live_stack.wait(created["id"], ("active",), timeout=20)
        assert again["reconnects"] == 1 and again["playback_ids"] == created["playback_ids"]
        time.sleep(2)
        assert {_colour_of(f) for f in _decoded_frames(live_stack, created, last=1)} == {"lime"}
        assert "#EXT-X-DISCONTINUITY" in live_stack.play(_media_url(live_stack, created)).text
    finally:
        kill(second)
        live_stack.client.post(f"/v1/live-streams/{created['id']}/stop")


class LossyUdpRelay:
    """A UDP hop on loopback that drops `loss` of the packets in each direction (seeded, reproducible)."""

    def __init__(self, target_port: int, loss: float, seed: int = 16) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(("127.0.0.1", target_port))
        self.loss, self.rng = loss, random.Random(seed)
        self.passed = self.dropped = 0
        self._client = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.front, self.back], [], [], 0.2)
            for sock in ready:
                data, addr = sock.recvfrom(65536)
                if sock is self.front:
                    self._client = addr
                if self.rng.random() < self.loss:
                    self.dropped += 1
                    continue
                self.passed += 1
                if sock is self.front:
                    self.back.send(data)
                elif self._client is not None:
                    self.front.sendto(data, self._client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.front.close()
        self.back.close()


def continuity_errors(data: bytes) -> int:
    """MPEG-TS continuity-counter gaps: each is a lost (or corrupted) TS packet."""
    last: dict[int, int] = {}
    errors = 0
    for i in range(0, len(data) - 187, 188):
        packet = data[i:i + 188]
        assert packet[0] == 0x47, f"lost TS sync at byte {i}"
        pid, has_payload, cc = ((packet[1] & 0x1F) << 8) | packet[2], packet[3] & 0x10, packet[3] & 0x0F
        if pid == 0x1FFF or not has_payload:
            continue
        if pid in last and cc not in ((last[pid] + 1) % 16, last[pid]):
            errors += 1
        last[pid] = cc
    return errors


def test_five_percent_loss_still_gives_a_clean_stream(live_stack):
    created = live_stack.create(**SMALL)
    hop = LossyUdpRelay(live_stack.srt_port, loss=0.05)
    publisher = None
    try:
        for _ in range(3):  # the handshake crosses the lossy hop too; a caller may need another try
            publisher = srt_push(hop.port, created["stream_key"], "blue", seconds=40, noise=True,
                                 extra="&latency=200000")  # µs: 200 ms, as the listener's default
            time.sleep(4)
            if publisher.poll() is None:
                break
        live_stack.wait(created["id"], ("active",), timeout=40)
        # An independent reader of the relay: the TS the listener delivers, after SRT's retransmissions.
        relay = f"http://127.0.0.1:{live_stack.srt_relay_port}"
        data = b""
        with httpx.stream("GET", relay_url(relay, created["stream_key"]), timeout=10) as r:
            assert r.status_code == 200
            deadline = time.monotonic() + 8
            for chunk in r.iter_bytes():
                data += chunk
                if time.monotonic() > deadline:
                    break
        statuses = set()
        for _ in range(6):
            statuses.add(live_stack.get(created["id"])["status"])
            time.sleep(0.5)
        frames = _decoded_frames(live_stack, created, last=4)
    finally:
        if publisher is not None:
            kill(publisher)
        hop.close()
        live_stack.client.post(f"/v1/live-streams/{created['id']}/stop")
    assert hop.dropped > 50 and 0.03 < hop.dropped / (hop.dropped + hop.passed) < 0.07  # the loss was real
    assert len(data) > 500_000 and continuity_errors(data) == 0  # ARQ recovered every lost packet
    assert statuses == {"active"}
    assert live_stack.get(created["id"])["reconnects"] == 0
    assert len(frames) >= 40
    for frame in frames:  # a lost slice would leave grey/green blocks in the re-encoded picture
        for block in _blocks(frame):
            assert _near(block, COLOURS["blue"]), block


def _near(rgb, want, tolerance: int = 60) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(rgb, want, strict=True))


def test_continuity_errors_finds_a_lost_packet():
    def packet(pid: int, cc: int) -> bytes:
        return bytes([0x47, pid >> 8, pid & 0xFF, 0x10 | cc]) + b"\xff" * 184

    stream = [packet(256, i % 16) for i in range(40)] + [packet(257, i % 16) for i in range(3)]
    assert continuity_errors(b"".join(stream)) == 0
    assert continuity_errors(b"".join(stream[:10] + stream[11:])) == 1  # one packet of PID 256 lost
