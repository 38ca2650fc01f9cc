"""The same origin on an S3 bucket (moto server): same headers, streamed or redirected."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.helpers import app_client
from tests.origin.fabricate import fabricate
from tests.s3_server import s3_client

SEGMENT = "h264-720p/00002.m4s"


@pytest.fixture
def s3_env(s3_endpoint, tmp_path):
    bucket = f"b{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"),
            "ABR_STORAGE_URL": f"s3://{bucket}/prefix", "ABR_S3_ENDPOINT_URL": s3_endpoint}


def test_s3_streams_segments_with_the_same_headers(s3_env):
    with app_client(s3_env) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        r = client.get(f"/play/{made.public_id}/{SEGMENT}")
        assert r.status_code == 200 and r.content == made.files[SEGMENT]
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
        assert r.headers["etag"] == f'"{ctx.storage.stat("media/" + made.asset_id + "/" + SEGMENT).etag}"'
        assert r.headers["last-modified"].endswith("GMT")
        assert client.get(f"/play/{made.public_id}/{SEGMENT}",
                          headers={"If-None-Match": r.headers["etag"]}).status_code == 304
        part = client.get(f"/play/{made.public_id}/{SEGMENT}", headers={"Range": "bytes=-100"})
        assert part.status_code == 206 and part.content == made.files[SEGMENT][-100:]
        assert part.headers["content-range"] == "bytes 2900-2999/3000"
        assert client.get(f"/play/{made.public_id}/{SEGMENT}", headers={"Range": "bytes=9999-"}).status_code == 416
        head = client.head(f"/play/{made.public_id}/{SEGMENT}")
        assert head.status_code == 200 and head.headers["content-length"] == "3000" and head.content == b""
        master = client.get(f"/play/{made.public_id}/master.m3u8")
        assert master.status_code == 200 and master.headers["cache-control"].startswith("public, max-age=86400")
        assert client.get(f"/play/{made.public_id}/h264-720p/00009.m4s").status_code == 404
        assert client.get(f"/play/{made.public_id}/presentation.json").status_code == 404


def test_s3_presign_redirects_gets_but_answers_heads(s3_env):
    with app_client(s3_env, s3_presign=True) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        r = client.get(f"/play/{made.public_id}/{SEGMENT}", follow_redirects=False)
        assert r.status_code == 307
        assert r.headers["cache-control"] == "public, max-age=600"
        assert r.headers["access-control-allow-origin"] == "*"
        direct = httpx.get(r.headers["location"])
        assert direct.status_code == 200 and direct.content == made.files[SEGMENT]
        head = client.head(f"/play/{made.public_id}/{SEGMENT}")
        assert head.status_code == 200 and head.headers["content-length"] == "3000"
        # manifests are always rendered by the origin
        assert client.get(f"/play/{made.public_id}/master.m3u8", follow_redirects=False).status_code == 200


def valid_for(url: str) -> int:
    """Seconds a presigned URL stays valid (SigV4 `X-Amz-Expires`, or SigV2's absolute `Expires`)."""
    import time
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(url).query)
    if "X-Amz-Expires" in query:
        return int(query["X-Amz-Expires"][0])
    return int(query["Expires"][0]) - int(time.time())


def test_s3_presigned_url_lives_no_longer_than_the_token(s3_env):
    import time

    from core.services.playback import SigningKeys, sign_token

    with app_client(s3_env, s3_presign=True) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        keys = SigningKeys.from_settings(ctx.settings.signing_key, "", ctx.settings.signing_key_id)
        token = sign_token(made.signed_id, keys=keys, expires_at=int(time.time()) + 120)
        r = client.get(f"/play/{made.signed_id}/{SEGMENT}?token={token}", follow_redirects=False)
        assert r.status_code == 307
        assert 100 <= valid_for(r.headers["location"]) <= 121  # the token's rest, not the default hour
        public = client.get(f"/play/{made.public_id}/{SEGMENT}", follow_redirects=False)
        assert 3590 <= valid_for(public.headers["location"]) <= 3601


def test_presign_expires_policy():
    from core.origin.policy import presign_expires

    assert [presign_expires(t) for t in (None, 7200, 3600, 120, 0)] == [3600, 3600, 3600, 120, 1]
