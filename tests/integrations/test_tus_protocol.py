"""The tus 1.0 server behind direct uploads, request by request (in-process app, no worker)."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from tests.helpers import app_client

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def client(tmp_path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}, max_upload_bytes=10_000_000) as c:
        yield c


def _direct(client, **body) -> dict:
    r = client.post("/v1/uploads", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _create(client, url: str, length: int, **headers) -> str:
    r = client.post(url, headers={**TUS, "Upload-Length": str(length), **headers})
    assert r.status_code == 201, r.text
    return r.headers["location"]


def test_direct_upload_resource_and_auth(client):
    up = _direct(client, cors_origin="https://app.example", settings={"codecs": ["h264", "vp8"]})
    assert set(up) >= {"id", "url", "status", "expires_at"} and up["status"] == "waiting"
    assert up["url"].endswith(f"/tus/{up['id']}")
    got = client.get(f"/v1/uploads/{up['id']}").json()
    assert got["status"] == "waiting" and got["asset_id"] is None and got["error"] is None
    assert client.get("/v1/uploads/up_nope").status_code == 404
    assert client.post("/v1/uploads", json={"settings": {"codecs": ["mpeg2"]}}).status_code == 422
    assert client.post("/v1/uploads", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/uploads").json()["count"] == 1


def test_discovery_and_cors(client):
    up = _direct(client, cors_origin="https://app.example")
    r = client.options(up["url"])
    assert r.status_code == 204 and r.headers["tus-version"] == "1.0.0"
    assert r.headers["tus-extension"] == "creation,creation-with-upload,termination,expiration,checksum"
    assert r.headers["tus-max-size"] == "10000000" and r.headers["tus-checksum-algorithm"] == "sha1,md5,sha256"
    pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH",
           "Access-Control-Request-Headers": "upload-offset,tus-resumable,content-type"}
    r = client.options(up["url"], headers=pre)
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert "PATCH" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    for h in ("upload-offset", "upload-length", "upload-metadata", "upload-checksum", "tus-resumable",
              "upload-concat", "content-type", "x-http-method-override"):
        assert h in allowed
    r = client.options(up["url"], headers={**pre, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    r = client.post(up["url"], headers={**TUS, "Upload-Length": "3", "Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    exposed = r.headers["access-control-expose-headers"]
    for h in ("Location", "Upload-Offset", "Upload-Length", "Tus-Resumable", "Upload-Expires", "Tus-Version",
              "Tus-Max-Size", "Tus-Extension"):
        assert h in exposed


def test_version_length_and_one_upload_per_url(client):
    up = _direct(client)
    r = client.post(up["url"], headers={"Tus-Resumable": "0.2.2", "Upload-Length": "5"})
    assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
    assert client.post(up["url"], headers={**TUS}).status_code == 400  # no Upload-Length
    assert client.post(up["url"], headers={**TUS, "Upload-Length": "99999999999"}).status_code == 413
    assert client.head(up["url"], headers=TUS).status_code == 404  # not created yet
    meta = f"filename {base64.b64encode(b'my clip.mp4').decode()},filetype {base64.b64encode(b'video/mp4').decode()},flag"
    location = _create(client, up["url"], 10, **{"Upload-Metadata": meta})
    r = client.head(location, headers=TUS)
    assert r.status_code == 200 and r.headers["upload-offset"] == "0" and r.headers["upload-length"] == "10"
    assert r.headers["cache-control"] == "no-store" and r.headers["tus-resumable"] == "1.0.0"
    assert "upload-expires" in r.headers
    assert client.post(up["url"], headers={**TUS, "Upload-Length": "10"}).status_code == 409
    assert client.get(f"/v1/uploads/{up['id']}").json()["status"] == "uploading"
    assert client.post(_direct(client)["url"], headers={**TUS, "Upload-Length": "1",
                                                        "Upload-Metadata": "filename %%%"}).status_code == 400


def test_patch_offsets_types_and_checksums(client):
    up = _direct(client)
    location = _create(client, up["url"], 10)
    assert client.patch(location, content=b"abc", headers={**TUS, "Upload-Offset": "0",
                                                           "Content-Type": "text/plain"}).status_code == 415
    assert client.patch(location, content=b"abc", headers={**OCTETS, "Upload-Offset": "4"}).status_code == 409
    r = client.patch(location, content=b"abc", headers={**OCTETS, "Upload-Offset": "0"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "3"
    good = "sha1 " + base64.b64encode(hashlib.sha1(b"def").digest()).decode()
    bad = "sha256 " + base64.b64encode(hashlib.sha256(b"xyz").digest()).decode()
    r = client.patch(location, content=b"def", headers={**OCTETS, "Upload-Offset": "3", "Upload-Checksum": bad})
    assert r.status_code == 460
    assert client.head(location, headers=TUS).headers["upload-offset"] == "3"  # the body was discarded
    r = client.patch(location, content=b"def", headers={**OCTETS, "Upload-Offset": "3", "Upload-Checksum": "crc32 AAAA"})
    assert r.status_code == 400
    r = client.patch(location, content=b"def", headers={**OCTETS, "Upload-Offset": "3", "Upload-Checksum": good})
    assert r.status_code == 204 and r.headers["upload-offset"] == "6"
    md5 = "md5 " + base64.b64encode(hashlib.md5(b"ghij").digest()).decode()
    r = client.patch(location, content=b"ghijk", headers={**OCTETS, "Upload-Offset": "6"})
    assert r.status_code == 413  # past Upload-Length
    # X-HTTP-Method-Override: POST standing in for PATCH
    r = client.post(location, content=b"ghij", headers={**OCTETS, "Upload-Offset": "6", "Upload-Checksum": md5,
                                                         "X-HTTP-Method-Override": "PATCH"})
    assert r.status_code == 204 and r.headers["upload-offset"] == "10"
    done = client.get(f"/v1/uploads/{up['id']}").json()
    assert done["status"] == "errored" and done["error"]["code"] == "invalid_media"  # ten letters are not media


def test_creation_with_upload_completes_into_an_asset(client, tmp_path):
    from tests.media_fixtures import make_clip

    data = make_clip(tmp_path / "c", duration=1.0).read_bytes()
    up = _direct(client, settings={"passthrough": "from-tus"})
    r = client.post(up["url"], content=data, headers={**OCTETS, "Upload-Length": str(len(data))})
    assert r.status_code == 201 and r.headers["upload-offset"] == str(len(data))
    done = client.get(f"/v1/uploads/{up['id']}").json()
    assert done["status"] == "complete" and done["asset_id"]
    asset = client.get(f"/v1/assets/{done['asset_id']}").json()
    assert asset["status"] == "queued" and asset["passthrough"] == "from-tus" and asset["source"]["video"]
    assert client.head(r.headers["location"], headers=TUS).headers["upload-offset"] == str(len(data))
    assert client.delete(r.headers["location"], headers=TUS).status_code == 409  # complete: not terminable


def test_termination_and_expiry(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, upload_expiry=1.0) as client:
        up = _direct(client)
        location = _create(client, up["url"], 100)
        client.patch(location, content=b"x" * 10, headers={**OCTETS, "Upload-Offset": "0"})
        assert client.delete(location, headers=TUS).status_code == 204
        assert client.head(location, headers=TUS).status_code == 410
        assert not (tmp_path / "data" / "uploads" / up["id"]).exists()
        assert client.get(f"/v1/uploads/{up['id']}").json()["error"]["code"] == "terminated"
        late = _direct(client)
        time.sleep(1.1)
        assert client.post(late["url"], headers={**TUS, "Upload-Length": "5"}).status_code == 410
        assert client.get(f"/v1/uploads/{late['id']}").json()["status"] == "expired"
        assert client.head("/tus/up_unknown", headers=TUS).status_code == 404
