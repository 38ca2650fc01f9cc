"""Secrets never reach logs: access logs of both servers, ffmpeg's argv and its error lines."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from cli.migrate import upgrade
from core.db.engine import make_engine
from core.errors import FFmpegError
from core.logging import JsonFormatter, TextFormatter
from core.media.ffmpeg import find_ffmpeg
from core.media.runner import run_ffmpeg
from core.redact import redact
from core.services.playback import SigningKeys, sign_token
from core.storage import open_storage
from tests.conftest import REPO_ROOT, free_port
from tests.helpers import TEST_KEY, settings_from
from tests.origin.fabricate import fabricate
from tests.origin.live import wait_for_port


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("GET /play/p/master.m3u8?token=eyJ.a.b HTTP/1.1", "GET /play/p/master.m3u8?token=[redacted] HTTP/1.1",
                 id="token"),
    pytest.param("/play/p/x.m4s?max_height=720&token=abc&codecs=vp8",
                 "/play/p/x.m4s?max_height=720&token=[redacted]&codecs=vp8", id="token-between-filters"),
    pytest.param("POST /v1/ingest/rtmp/publish?secret=s3cr3t", "POST /v1/ingest/rtmp/publish?secret=[redacted]",
                 id="ingest-secret"),
    pytest.param("-i rtsp://admin:hunter2@10.0.0.5:554/stream1 -c copy",
                 "-i rtsp://admin:[redacted]@10.0.0.5:554/stream1 -c copy", id="rtsp-userinfo"),
    pytest.param("srt://h:9000?streamid=x&passphrase=p", "srt://h:9000?streamid=x&passphrase=p",
                 id="unknown-param-kept"),
    pytest.param("https://u:p@cdn.example/a.m3u8 and http://plain.example/b",
                 "https://u:[redacted]@cdn.example/a.m3u8 and http://plain.example/b", id="https-userinfo"),
    pytest.param("Authorization: Bearer abr_0123", "Authorization: Bearer [redacted]", id="bearer"),
    pytest.param("s3.example/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff00",
                 "s3.example/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]", id="presigned"),
    pytest.param("rtsp://camera.local/stream (no credentials)", "rtsp://camera.local/stream (no credentials)",
                 id="nothing-to-hide"),
])  # fmt: skip
def test_redact(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("formatter", [TextFormatter("%(name)s: %(message)s"), JsonFormatter()], ids=["text", "json"])
def test_every_log_line_is_redacted_by_the_formatters(formatter):
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/1.1" %d',
                               ("127.0.0.1:5", "GET", "/play/p/master.m3u8?token=TOKEN123", 200), None)
    line = formatter.format(record)
    assert "TOKEN123" not in line and "token=[redacted]" in line


def test_rtsp_pull_argv_and_ffmpeg_errors_keep_the_camera_password_out(caplog):
    password = "hunter2-camera-pass"
    url = f"rtsp://viewer:{password}@127.0.0.1:{free_port()}/stream1"  # nothing listens: ffmpeg fails fast
    argv = [find_ffmpeg(), "-hide_banner", "-rtsp_transport", "tcp", "-timeout", "2000000", "-i", url,
            "-f", "null", "-"]
    caplog.set_level(logging.INFO, logger="core.media.runner")
    with pytest.raises(FFmpegError) as failed:
        run_ffmpeg(argv, duration=None, on_progress=None, timeout=30)
    logged = "\n".join(TextFormatter("%(message)s").format(r) for r in caplog.records)
    raw = "\n".join(r.getMessage() for r in caplog.records)  # before any formatter: the runner's own text
    assert "rtsp://viewer:[redacted]@127.0.0.1" in raw, raw
    for text in (logged, raw, failed.value.message, failed.value.stderr_tail):
        assert password not in text


# -- a signed playback session through a real `abr api` ------------------------------------------

SIGNING_KEY = "signing-" + "k" * 40
INGEST_SECRET = "ingest-" + "i" * 40


@pytest.fixture
def signed_asset(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"), "ABR_SIGNING_KEY": SIGNING_KEY,
           "ABR_INGEST_SECRET": INGEST_SECRET, "ABR_API_KEYS": TEST_KEY}
    settings = settings_from(env)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    made = fabricate(engine, open_storage(settings.resolved_storage_url))
    engine.dispose()
    token = sign_token(made.signed_id, keys=SigningKeys.from_settings(SIGNING_KEY),
                       expires_at=int(time.time()) + 600)
    return env, made, token


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_logs_of_a_signed_playback_session_carry_no_secret(tmp_path, signed_asset, server):
    env, made, token = signed_asset
    port = free_port()
    log_path = tmp_path / f"{server}.log"
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("ABR_")}
    run_env.update(env, ABR_ACCESS_LOG="1", ABR_PORT=str(port), ABR_HOST="127.0.0.1", PYTHONUNBUFFERED="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--server", server], env=run_env,
                                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=60, proc=proc)
        master = httpx.get(f"{base}/play/{made.signed_id}/master.m3u8?token={token}", timeout=10)
        assert master.status_code == 200, master.text
        media = httpx.get(f"{base}/play/{made.signed_id}/h264-720p/index.m3u8?token={token}", timeout=10)
        assert media.status_code == 200 and f"?token={token}" in media.text
        segment = httpx.get(f"{base}/play/{made.signed_id}/h264-720p/00001.m4s?token={token}", timeout=10)
        assert segment.status_code == 200
        refused = httpx.get(f"{base}/play/{made.signed_id}/master.m3u8?token={token}x", timeout=10)
        assert refused.status_code == 403
        # nginx's RTMP callback carries the ingest secret in its query (an unknown stream key: refused).
        callback = httpx.post(f"{base}/v1/ingest/rtmp/publish?secret={INGEST_SECRET}",
                              data={"call": "publish", "app": "live", "name": "no-such-key", "addr": "127.0.0.1"},
                              timeout=10)
        assert 400 <= callback.status_code < 500
        assert httpx.get(f"{base}/v1/assets", headers={"Authorization": f"Bearer {TEST_KEY}"}).status_code == 200
        deadline = time.monotonic() + 10  # access lines are written after the response
        while "/v1/assets" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = log_path.read_text()
    # The session was logged (an access line per request)...
    assert f"/play/{made.signed_id}/master.m3u8?token=[redacted]" in text, text[-3000:]
    assert "/v1/ingest/rtmp/publish?secret=[redacted]" in text, text[-3000:]
    # ...and no secret is in it.
    for secret in (token, token.split(".")[-1], INGEST_SECRET, SIGNING_KEY, TEST_KEY):
        assert secret not in text, f"{secret[:12]}… is in the {server} log"


def test_a_live_pull_that_cannot_connect_reports_no_password():
    """The live reader (core/live/reader.py, which replaced the PyAV probe) opens the source: neither
    the stream's error nor the reader's output kept for the log carries the password."""
    from core.live.reader import SourceError, SourceReader, reader_argv
    from core.media.ffmpeg import find_ffmpeg

    url = f"rtsp://viewer:hunter2-camera-pass@127.0.0.1:{free_port()}/stream1"
    reader = SourceReader.start(reader_argv(find_ffmpeg(), url))
    try:
        with pytest.raises(SourceError) as failed:
            reader.wait_info(timeout=10, cancel=lambda: False)
    finally:
        reader.stop()
    assert "hunter2-camera-pass" not in failed.value.message
    assert failed.value.message == "the source refused the connection"
    assert "hunter2-camera-pass" not in reader.stderr_tail
    assert "rtsp://viewer:[redacted]@127.0.0.1" in reader.stderr_tail


def test_content_keys_in_any_argv_form_are_redacted():
    """Defence in depth beside runner.loggable_argv: every log line passes redact(), whatever logged the argv."""
    from core.redact import redact

    key = "00112233445566778899aabbccddeeff"
    line = redact(f"ffmpeg -format_options encryption_scheme=cenc-aes-ctr:encryption_key={key}:"
                  f"encryption_kid=0123456789abcdef0123456789abcdef -decryption_key {key.upper()} -i in.mp4")
    assert key not in line.lower()
    assert "encryption_key=[redacted]:encryption_kid=0123456789abcdef0123456789abcdef" in line  # the KID is public
    assert "-decryption_key [redacted] -i in.mp4" in line
