"""Bad input refused: every hostile upload is a clear 4xx, or ends `ready`/`errored` — never a 5xx,
never stuck, never a worker crash, and no local file ever leaks into an output.

The corpus (tests/reliability/hostile_corpus.py) is generated at test time.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.media_fixtures import make_clip
from tests.reliability.faults import running_stack
from tests.reliability.hostile_corpus import LOCAL_SECRETS, build_corpus

pytestmark = pytest.mark.timeout(300)


class Listener:
    """A loopback TCP listener that records every connection: nothing may ever call it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.hits: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.hits.append(conn.recv(512))
                except OSError:
                    self.hits.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_hostile_corpus_is_refused_or_processed_and_nothing_leaks(tmp_path):
    canary_token = b"ABR-CANARY-7f3c1e9a"
    canary = tmp_path / "secret.txt"
    canary.write_bytes(canary_token + b"\n")
    listener = Listener()
    evil = Path("/tmp/evil.mp4")
    evil_existed = evil.exists()
    try:
        cases = build_corpus(tmp_path / "corpus", canary=canary, http_url=listener.url)
        assert len(cases) >= 20
        with running_stack(tmp_path / "stack") as stack:
            failures, accepted, seen_text = [], {}, []
            for case in cases:
                r = stack.client.post("/v1/assets", files={"file": (case.filename, case.data, "video/mp4")})
                seen_text.append(r.text)
                if r.status_code >= 500:
                    failures.append(f"{case.id}: {r.status_code} {r.text}")
                elif r.status_code == 201:
                    accepted[case.id] = r.json()["id"]
                    if case.expect == "refuse":
                        failures.append(f"{case.id}: accepted, but it must be refused")
                else:
                    message = r.json().get("error", {}).get("message", "")
                    if not (400 <= r.status_code < 500 and message):
                        failures.append(f"{case.id}: {r.status_code} without a message: {r.text}")
                    if case.expect == "ready":
                        failures.append(f"{case.id}: refused ({message}), but it is media we can use")
                    if case.words and case.words not in message.lower():
                        failures.append(f"{case.id}: message {message!r} does not say {case.words!r}")
            expected = {c.id: c.expect for c in cases}
            for case_id, asset_id in accepted.items():
                asset = stack.wait(asset_id, timeout=90)
                seen_text.append(str(asset))
                if asset["status"] == "errored" and not (asset["error"] or {}).get("message"):
                    failures.append(f"{case_id}: errored without a reason")
                if expected[case_id] == "ready" and asset["status"] != "ready":
                    failures.append(f"{case_id}: {asset['status']} ({asset['error']}), expected ready")
            assert not failures, "\n".join(failures)

            # The worker survived all of it and still does its job.
            assert stack.worker.alive, stack.worker.log_path.read_text()[-3000:]
            good = make_clip(tmp_path / "after.mp4", duration=2, width=320, height=240)
            after = stack.wait(stack.upload(good, None)["id"])
            assert after["status"] == "ready", after["error"]

            # Refusals stored nothing and left no temp file; accepted files stayed inside storage.
            assert stack.client.get("/v1/assets").json()["count"] == len(accepted) + 1
            assert not list((stack.data_dir / "tmp").glob("upload-*"))
            assert evil.exists() == evil_existed
            # No local file content in any output or answer, and no URL was ever fetched.
            secrets = (canary_token, *LOCAL_SECRETS)
            for path in (stack.data_dir / "storage" / "media").rglob("*"):
                if path.is_file():
                    data = path.read_bytes()
                    assert not any(s in data for s in secrets), f"local file content in {path}"
            assert not any(s.decode() in text for s in secrets for text in seen_text)
        time.sleep(0.3)
        assert listener.hits == [], f"something fetched a URL named in an upload: {listener.hits}"
    finally:
        listener.close()
