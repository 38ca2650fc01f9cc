"""Raw request paths (literal `..`, `//`, encodings) sent byte for byte to a real uvicorn."""

from __future__ import annotations

import http.client

import pytest

from cli.migrate import upgrade
from core.db.engine import make_engine
from core.storage import open_storage
from tests.helpers import settings_from
from tests.origin.fabricate import fabricate
from tests.origin.live import uvicorn_origin


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path_factory.mktemp("live") / "data")}
    settings = settings_from(env)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    made = fabricate(engine, open_storage(settings.resolved_storage_url))
    engine.dispose()
    with uvicorn_origin(env) as (url, _):
        yield url, made


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.putrequest("GET", path, skip_host=False, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("rest", [
    "../../../sources/{asset}/original",
    "h264-720p/../presentation.json",
    "h264-720p/../../../../../../etc/passwd",
    "./master.m3u8/../presentation.json",
    "h264-720p//init.mp4",
    "%2e%2e/%2e%2e/sources/{asset}/original",
    "%2E%2E%2F%2E%2E%2Fsources%2F{asset}%2Foriginal",
    "%252e%252e%252fpresentation.json",
    "..%5c..%5cpresentation.json",
    "h264-720p/init.mp4%00",
    "/etc/passwd",
    "//etc/passwd",
])
def test_raw_traversal(live, rest):
    url, made = live
    status, body = raw_get(url, f"/play/{made.public_id}/" + rest.format(asset=made.asset_id))
    assert status in (400, 404), (rest, status)
    assert b"never served" not in body and b"segment_duration" not in body and b"root:" not in body


def test_raw_good_path_still_works(live):
    url, made = live
    status, body = raw_get(url, f"/play/{made.public_id}/h264-720p/00001.m4s")
    assert status == 200 and body == made.files["h264-720p/00001.m4s"]
