"""Webhooks: endpoint CRUD and its error paths, and signed deliveries with retries through the real worker."""

from __future__ import annotations

import time

from tests.helpers import app_client
from tests.integrations.conftest import tus_upload
from tests.integrations.receiver import Receiver


def test_webhook_endpoints_and_errors(tmp_path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as client:
        # SSRF: loopback, private and metadata addresses are refused without ABR_ALLOW_PRIVATE_URLS
        for url in ("http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]/x", "http://10.1.2.3/x",
                    "http://169.254.169.254/latest/meta-data"):
            r = client.post("/v1/webhooks", json={"url": url})
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (url, r.text)
        assert client.post("/v1/webhooks", json={"url": "ftp://example.com/x"}).status_code == 422
        assert client.post("/v1/webhooks", json={"url": "http://93.184.215.14/x",
                                                  "events": ["asset.exploded"]}).status_code == 422
        r = client.post("/v1/webhooks", json={"url": "http://93.184.215.14/x", "events": ["asset.ready"]})
        assert r.status_code == 201
        hook = r.json()
        assert hook["secret"].startswith("whsec_") and hook["events"] == ["asset.ready"]
        listed = client.get("/v1/webhooks").json()
        assert listed["count"] == 1 and "secret" not in listed["data"][0]
        assert client.get(f"/v1/webhooks/{hook['id']}/deliveries").json() == {"data": [], "count": 0}
        assert client.get("/v1/webhooks", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
        assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 404
        assert client.get(f"/v1/webhooks/{hook['id']}/deliveries").status_code == 404


def test_signed_deliveries_retry_after_a_failure(server, clip):
    receiver = Receiver(fail_first=1)
    try:
        r = server.client.post(f"{server.url}/v1/webhooks", json={"url": receiver.url})
        assert r.status_code == 201, r.text
        hook = r.json()
        receiver.secret = hook["secret"]
        up = server.direct_upload(settings={"passthrough": "hooked"})
        tus_upload(up["url"], clip.read_bytes())
        asset_id = server.client.get(f"{server.url}/v1/uploads/{up['id']}").json()["asset_id"]
        created = receiver.wait_for("asset.created")
        assert created["data"]["id"] == asset_id and created["data"]["passthrough"] == "hooked"
        assert set(created) >= {"type", "created_at", "data"}
        assert receiver.wait_for("upload.completed")["data"] == {
            "id": up["id"], "status": "complete", "asset_id": asset_id, "filename": None, "error": None}
        receiver.wait_for("asset.playable", timeout=60)
        ready = receiver.wait_for("asset.ready", timeout=60)
        assert ready["data"]["status"] == "ready" and ready["data"]["playback_ids"]
        assert receiver.bad_signatures == 0
        # the first attempt hit a 500; its delivery was retried and logged both attempts
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = server.client.get(f"{server.url}/v1/webhooks/{hook['id']}/deliveries").json()
            if all(d["status"] == "delivered" for d in log["data"]):
                break
            time.sleep(0.2)
        retried = [d for d in log["data"] if d["attempts"] == 2]
        assert len(retried) == 1, log
        assert retried[0]["last_status_code"] == 204 and retried[0]["delivered_at"] and retried[0]["last_error"] is None
        assert {d["event_type"] for d in log["data"]} >= {"asset.created", "upload.completed", "asset.playable",
                                                           "asset.ready"}
        assert server.client.delete(f"{server.url}/v1/assets/{asset_id}").status_code == 204
        assert receiver.wait_for("asset.deleted")["data"]["id"] == asset_id
    finally:
        server.client.delete(f"{server.url}/v1/webhooks/{hook['id']}")
        receiver.close()
