"""The SRT listener on its own: streamid parsing (pure), and real libsrt with ffmpeg callers and a test gate."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import time

import httpx
import pytest

from core.live import srtlib
from core.live.encode import input_args
from core.live.srt_ingest import (
    Admission,
    ApiGate,
    Gate,
    Refused,
    SrtIngest,
    SrtStatus,
    SrtStatusProbe,
    _Reader,
    ingest_url,
    parse_streamid,
    plan_srt_status,
    relay_url,
    srt_publishing,
)
from core.media.ffmpeg import find_ffmpeg
from tests.conftest import free_port

KEY = "sk_abcDEF123xyz"


@pytest.mark.parametrize("streamid, key", [
    (f"#!::r={KEY},m=publish", KEY),
    (f"#!::m=publish,r={KEY}", KEY),
    (f"#!::r={KEY}", KEY),  # an encoder that names only the resource publishes
    (f"#!::u=alice,r={KEY},m=publish,s=abc", KEY),
    (KEY, KEY),  # a bare key
    (f"%23!::r={KEY},m=publish", KEY),  # URL-encoded by the caller
])
def test_parse_streamid(streamid, key):
    assert parse_streamid(streamid) == key


@pytest.mark.parametrize("streamid, reason", [
    ("", srtlib.SRT_REJX_BAD_REQUEST),
    ("#!::", srtlib.SRT_REJX_BAD_REQUEST),
    ("#!::m=publish", srtlib.SRT_REJX_BAD_REQUEST),
    ("#!::r", srtlib.SRT_REJX_BAD_REQUEST),
    (f"#!::r={KEY},m=request", 1405),  # SRT_REJX_BAD_MODE: we take publishers only
    ("sk_with space", srtlib.SRT_REJX_BAD_REQUEST),
    ("../../etc/passwd", srtlib.SRT_REJX_BAD_REQUEST),
    ("x" * 65, srtlib.SRT_REJX_BAD_REQUEST),
])
def test_parse_streamid_refuses(streamid, reason):
    with pytest.raises(Refused) as err:
        parse_streamid(streamid)
    assert err.value.reason == reason


def test_urls():
    assert ingest_url("live.example", 8890, KEY) == f"srt://live.example:8890?streamid=#!::r={KEY},m=publish"
    assert relay_url("http://127.0.0.1:8891/", KEY) == f"http://127.0.0.1:8891/srt/{KEY}.ts"
    # The relay is MPEG-TS over HTTP: no HLS options, only http/tcp may be opened.
    args = input_args(relay_url("http://127.0.0.1:8891", KEY))
    assert args[args.index("-protocol_whitelist") + 1] == "http,tcp"
    assert "-live_start_index" not in args and args[args.index("-rw_timeout") + 1] == "5000000"
    hls = input_args("http://cam.example/live/index.m3u8")
    assert "-live_start_index" in hls


def test_plan_srt_status():
    assert plan_srt_status(srt_port=8890, libsrt=True, listening=True, relay="127.0.0.1:8891") == SrtStatus(True)
    off = plan_srt_status(srt_port=0, libsrt=True, listening=False, relay="127.0.0.1:8891")
    assert not off.available and "ABR_SRT_PORT=0" in off.reason
    missing = plan_srt_status(srt_port=8890, libsrt=False, listening=False, relay="127.0.0.1:8891")
    assert missing == SrtStatus(False, "libsrt is not installed; to turn SRT push on: "
                                       "sudo apt-get install libsrt1.5-openssl")
    down = plan_srt_status(srt_port=8890, libsrt=True, listening=False, relay="ingest:8891")
    assert not down.available and "ingest:8891" in down.reason and "abr ingest" in down.reason


def test_status_probe_looks_at_the_relay(ingest):
    relay = f"http://127.0.0.1:{ingest.relay_port}"
    assert SrtStatusProbe(srt_port=ingest.port, pull_url=relay).status() == SrtStatus(True)
    gone = SrtStatusProbe(srt_port=ingest.port, pull_url=f"http://127.0.0.1:{free_port()}").status()
    assert not gone.available and "abr ingest" in gone.reason


def test_slow_reader_drops_whole_messages():
    reader = _Reader()
    for i in range(reader.queue.maxsize + 5):
        reader.offer(bytes([i % 256]) * 1316)
    assert reader.dropped == 5 and reader.queue.qsize() == reader.queue.maxsize
    assert reader.queue.get_nowait() == b"\x00" * 1316  # the oldest kept, the newest dropped: no partial packets


# -- real libsrt ----------------------------------------------------------------------------------------


def _need_libsrt() -> None:
    if srtlib.find_library() is None:
        if os.environ.get("CI"):
            pytest.fail("libsrt (libsrt1.5-openssl) is missing in CI")
        pytest.skip("libsrt is not installed")


class _Gate(Gate):
    def __init__(self) -> None:
        self.admitted: list[str] = []
        self.left_keys: queue.Queue[str] = queue.Queue()
        self.stopped: set[str] = set()

    def check(self, key, addr):
        if key == "sk_unknown":
            raise Refused(srtlib.SRT_REJX_NOTFOUND, "unknown stream key")
        if key == "sk_boom":
            raise RuntimeError("the gate itself failed")  # must refuse, never admit by accident
        return Admission(passphrase="correct-horse-battery" if key == "sk_secret" else None)

    def admit(self, key, addr):
        if key == "sk_late":
            raise Refused(srtlib.SRT_REJX_CONFLICT, "another ingest took it meanwhile")
        self.admitted.append(key)

    def may_continue(self, key):
        return key not in self.stopped

    def left(self, key, addr):
        self.left_keys.put(key)


def _caller(port: int, streamid: str, *, seconds: float, extra: str = "", color: str = "red") -> subprocess.Popen:
    url = f"srt://127.0.0.1:{port}?streamid={streamid}{extra}"
    return subprocess.Popen([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-f", "lavfi",
                             "-i", f"color=c={color}:size=160x90:rate=10", "-t", str(seconds), "-c:v", "libx264",
                             "-preset", "ultrafast", "-g", "10", "-f", "mpegts", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def ingest():
    _need_libsrt()
    gate = _Gate()
    with SrtIngest(gate, port=free_port(), relay_port=free_port(), update_interval=0.5) as server:
        server.test_gate = gate
        yield server


def test_refusals_happen_at_the_handshake(ingest):
    first = _caller(ingest.port, f"#!::r={KEY},m=publish", seconds=30)
    try:
        _wait(lambda: KEY in ingest.publishers)
        for streamid, extra in (("sk_unknown", ""), ("sk_boom", ""), (KEY, ""), (f"#!::r={KEY},m=request", ""), ("", ""),
                                ("sk_secret", "&passphrase=wrong-passphrase")):
            refused = _caller(ingest.port, streamid, seconds=2, extra=extra)
            assert refused.wait(20) != 0, streamid  # the caller's connect fails
            assert b"Error opening output" in refused.stderr.read()
        # Only connections reach admit: not the busy key, not the wrong passphrase.
        assert ingest.test_gate.admitted == [KEY]
        assert list(ingest.publishers) == [KEY]
        # The right passphrase gets in straight after a wrong one (the refused socket frees the key).
        secret = _caller(ingest.port, "sk_secret", seconds=1, extra="&passphrase=correct-horse-battery")
        _wait(lambda: "sk_secret" in ingest.publishers)
        assert secret.wait(20) == 0
        assert ingest.test_gate.admitted == [KEY, "sk_secret"]
        # Refused after the connection was made (admit): closed at once, no publish-done for it.
        late = _caller(ingest.port, "sk_late", seconds=30)
        late.wait(15)
    finally:
        first.kill()
        first.wait()
    assert ingest.test_gate.left_keys.get(timeout=10) in (KEY, "sk_secret")


def test_relay_serves_each_publisher_its_own_bytes_and_ends_with_it(ingest):
    relay = f"http://127.0.0.1:{ingest.relay_port}"
    assert not srt_publishing(relay, "sk_a")
    callers = {k: _caller(ingest.port, f"#!::r={k},m=publish", seconds=3, color=c)
               for k, c in (("sk_a", "red"), ("sk_b", "blue"))}
    try:
        _wait(lambda: len(ingest.publishers) == 2)
        assert srt_publishing(relay, "sk_a") and srt_publishing(relay, "sk_b")
        assert httpx.get(f"{relay}/srt/sk_none.ts").status_code == 404
        assert httpx.get(f"{relay}/elsewhere").status_code == 404
        got = {}
        with httpx.Client(timeout=10) as client, contextlib.ExitStack() as stack:
            # Both readers attach now; the second one's bytes wait in its queue while the first is read.
            responses = {k: stack.enter_context(client.stream("GET", relay_url(relay, k))) for k in callers}
            for key, r in responses.items():
                assert r.status_code == 200 and r.headers["content-type"] == "video/mp2t"
                got[key] = b"".join(r.iter_bytes())  # until the publisher ends: the relay closes with it
        for data in got.values():
            assert len(data) > 188 * 10 and len(data) % 188 == 0
            assert all(data[i] == 0x47 for i in range(0, len(data), 188))  # whole TS packets only
        assert got["sk_a"] != got["sk_b"]
    finally:
        for c in callers.values():
            c.kill()
            c.wait()
    _wait(lambda: not ingest.publishers)
    assert not srt_publishing(relay, "sk_a")


def test_a_stopped_stream_is_disconnected(ingest):
    caller = _caller(ingest.port, KEY, seconds=60)
    try:
        _wait(lambda: KEY in ingest.publishers)
        ingest.test_gate.stopped.add(KEY)
        caller.wait(15)  # TimeoutExpired unless the listener dropped it long before its 60 s of media
        _wait(lambda: KEY not in ingest.publishers)
    finally:
        caller.kill()
        caller.wait()


def test_api_gate_maps_answers_and_keeps_the_secret_out_of_urls():
    seen: list[httpx.Request] = []
    answers = {"sk_ok": httpx.Response(200, json={"passphrase": "p" * 12}), "sk_none": httpx.Response(404),
               "sk_ended": httpx.Response(403), "sk_busy": httpx.Response(409), "sk_err": httpx.Response(500)}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        key = dict(pair.split("=") for pair in request.content.decode().split("&"))["name"]
        if request.url.path.endswith("/update"):
            return httpx.Response(204 if key == "sk_ok" else 403)
        return answers[key]

    gate = ApiGate("http://api.test/", "s3cret",
                   client_factory=lambda timeout: httpx.Client(transport=httpx.MockTransport(handler), timeout=timeout))
    assert gate.check("sk_ok", "192.0.2.1:5000") == Admission(passphrase="p" * 12)
    gate.admit("sk_ok", "192.0.2.1:5000")
    for key, reason in (("sk_none", srtlib.SRT_REJX_NOTFOUND), ("sk_ended", srtlib.SRT_REJX_FORBIDDEN),
                        ("sk_busy", srtlib.SRT_REJX_CONFLICT), ("sk_err", srtlib.SRT_REJX_INTERNAL)):
        for call in (gate.check, gate.admit):
            with pytest.raises(Refused) as err:
                call(key, "192.0.2.1:5000")
            assert err.value.reason == reason, key
    assert gate.may_continue("sk_ok") and not gate.may_continue("sk_none")
    assert {str(r.url) for r in seen} == {f"http://api.test/v1/ingest/srt/{call}"
                                          for call in ("check", "publish", "update")}
    assert all(r.headers["x-abr-ingest-secret"] == "s3cret" for r in seen)
