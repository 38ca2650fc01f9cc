"""One writer per tus upload across API processes: two uvicorn servers on one database and data dir."""

from __future__ import annotations

import threading
import time

import httpx

from cli.migrate import upgrade
from tests.conftest import free_port
from tests.helpers import TEST_KEY, settings_from
from tests.integrations.conftest import TUS, ApiServer

OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


def test_a_second_api_process_cannot_write_an_upload_being_written(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"), "ABR_API_KEYS": TEST_KEY}
    upgrade(settings_from(env).resolved_database_url)
    first = ApiServer(env=env, port=free_port(), log=tmp_path / "api1.log")
    second = ApiServer(env=env, port=free_port(), log=tmp_path / "api2.log")
    first.start()
    second.start()
    try:
        up = first.direct_upload()
        created = httpx.post(up["url"], headers={**TUS, "Upload-Length": "2000000"})
        assert created.status_code == 201, created.text
        path = created.headers["location"].split("://", 1)[1].split("/", 1)[1]
        on_first, on_second = f"{first.url}/{path}", f"{second.url}/{path}"

        writing = threading.Event()
        release = threading.Event()

        def slow_body():
            yield b"a" * 1000
            writing.set()
            release.wait(20)  # hold the write open while the other process is tried
            yield b"a" * 999_000

        result = {}

        def slow_patch():
            result["r"] = httpx.patch(on_first, content=slow_body(), timeout=30,
                                      headers={**OCTETS, "Upload-Offset": "0", "Content-Length": "1000000"})

        thread = threading.Thread(target=slow_patch)
        thread.start()
        assert writing.wait(10)
        time.sleep(0.5)  # the first process has the body's first bytes and holds the upload
        other = httpx.patch(on_second, content=b"b" * 1000, timeout=10,
                            headers={**OCTETS, "Upload-Offset": "0", "Content-Length": "1000"})
        release.set()
        thread.join(30)
        assert other.status_code == 409, other.text  # not a second writer at the same offset
        assert result["r"].status_code == 204 and result["r"].headers["upload-offset"] == "1000000"
        after = httpx.patch(on_second, content=b"c" * 1000, timeout=10,  # free again: the other process may go on
                            headers={**OCTETS, "Upload-Offset": "1000000", "Content-Length": "1000"})
        assert after.status_code == 204 and after.headers["upload-offset"] == "1001000"
    finally:
        first.stop()
        second.stop()
