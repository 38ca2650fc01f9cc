"""Bounded request bodies: JSON and forms everywhere, media uploads up to their own limits."""

from __future__ import annotations

import json

import pytest

from api.bodylimit import FORM_ALLOWANCE, body_limit
from core.media.captions import MAX_TEXT_BYTES
from tests.helpers import app_client

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.mark.parametrize(
    ("method", "path", "content_type", "limit"),
    [
        pytest.param("POST", "/v1/assets", "application/json", MIB, id="asset-import-json"),
        pytest.param("POST", "/v1/assets", "multipart/form-data; boundary=x", 5 * MIB + FORM_ALLOWANCE,
                     id="asset-upload"),
        pytest.param("POST", "/v1/assets/as_1/text-tracks", "Multipart/Form-Data; boundary=x",
                     MAX_TEXT_BYTES + FORM_ALLOWANCE, id="captions"),
        pytest.param("PATCH", "/tus/up_1", "application/offset+octet-stream", 5 * MIB, id="tus-patch"),
        pytest.param("POST", "/tus/up_1", "application/offset+octet-stream", 5 * MIB, id="tus-creation-with-upload"),
        pytest.param("POST", "/v1/webhooks", "multipart/form-data; boundary=x", MIB, id="form-elsewhere"),
        pytest.param("PUT", "/v1/assets", "multipart/form-data; boundary=x", MIB, id="other-method"),
        pytest.param("POST", "/ingest/publish", "application/x-www-form-urlencoded", MIB, id="ingest-form"),
        pytest.param("POST", "/v1/assets/x/../../tus/a", "application/json", MIB, id="json-anywhere"),
    ],
)  # fmt: skip
def test_body_limit_per_route(method, path, content_type, limit):
    assert body_limit(method, path, content_type, max_body=MIB, max_upload=5 * MIB) == limit


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data = tmp_path_factory.mktemp("bodies") / "data"
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(data)}, max_upload_bytes=5 * MIB) as c:
        yield c


def _is_413(r) -> None:
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large"
    assert "larger than the limit of 1048576 bytes" in r.json()["error"]["message"]
    assert r.headers["cache-control"] == "no-store" and r.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/v1/assets", "/v1/webhooks", "/v1/playback-tokens", "/v1/uploads",
                                  "/v1/live-streams", "/v1/no-such-route"])
def test_a_json_body_over_1_mib_is_413_with_the_api_error_body(client, path):
    body = json.dumps({"input_url": "https://example.com/a.mp4", "pad": "x" * MIB})
    _is_413(client.post(path, content=body, headers={"Content-Type": "application/json"}))


def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(client):
    def chunks():
        for _ in range(64):  # 4 MiB in 64 KiB chunks, no Content-Length
            yield b"x" * 65536

    _is_413(client.post("/v1/webhooks", content=chunks(), headers={"Content-Type": "application/json"}))


def test_a_body_longer_than_its_declared_length_is_cut_off(tmp_path):
    """Straight at the middleware: the app's own answer to a cut-off body is replaced by the 413."""
    import asyncio

    from api.bodylimit import BodyLimitMiddleware

    seen = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(len(message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario():
        messages = [{"type": "http.request", "body": b"x" * 600, "more_body": True} for _ in range(4)]
        sent = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/webhooks", "headers": [(b"content-length", b"10")]}
        await BodyLimitMiddleware(app, max_body=1000, max_upload=10)(scope, receive, send)
        return sent, messages

    sent, unread = asyncio.run(scenario())
    assert sent[0]["status"] == 413 and b"too_large" in sent[1]["body"]
    assert seen == [600] and len(unread) == 2  # the second message crossed the limit; the rest was never read


def test_a_body_under_the_limit_reaches_the_route(client):
    body = json.dumps({"url": "https://example.com/hook", "pad": "x" * (MIB - 1000)})
    r = client.post("/v1/webhooks", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422  # the route's own validation (unknown field), not the body limit


def test_media_uploads_are_bounded_by_the_upload_limit_not_the_body_limit(client):
    r = client.post("/v1/assets", files={"file": ("noise.mp4", b"\x01" * (2 * MIB), "video/mp4")})
    assert r.status_code == 415, r.text  # read whole and probed: not media
    r = client.post("/v1/assets", files={"file": ("big.mp4", b"\x01" * (6 * MIB), "video/mp4")})
    assert r.status_code == 413 and "5242880" in r.json()["error"]["message"]
    up = client.post("/v1/uploads", json={}).json()
    created = client.post(up["url"], headers={**TUS, "Upload-Length": str(3 * MIB)})
    assert created.status_code == 201, created.text
    r = client.patch(created.headers["location"], content=b"\x01" * (2 * MIB),
                     headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204 and r.headers["upload-offset"] == str(2 * MIB)


def _multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for headers, body in parts:
        out += f"--{boundary}\r\n{headers}\r\n\r\n".encode() + body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


FORM = {"Content-Type": "multipart/form-data; boundary=b0undary"}


def test_multipart_field_count_is_bounded(client):
    fields = [(f'Content-Disposition: form-data; name="f{i}"', b"1") for i in range(17)]
    r = client.post("/v1/assets", content=_multipart(fields), headers=FORM)
    assert r.status_code == 413 and "more than 16 fields" in r.json()["error"]["message"], r.text


def test_multipart_part_headers_are_bounded(client):
    # python-multipart 0.0.34 bounds a part to 8 header lines of 4 KiB; ours bounds them together,
    # whatever its version does.
    many = 'Content-Disposition: form-data; name="settings"' + "".join(f"\r\nX-Pad-{i}: {'p' * 3000}"
                                                                     for i in range(7))
    r = client.post("/v1/assets", content=_multipart([(many, b"{}")]), headers=FORM)
    assert r.status_code == 413 and "headers are larger than 16384 bytes" in r.json()["error"]["message"], r.text
