from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from core.storage import LocalStorage, S3Storage, Storage
from tests.s3_server import s3_client, s3_endpoint  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint: str) -> str:  # noqa: F811
    bucket = f"abr-test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path) -> Iterator[Storage]:
    """The same suite runs on both backends; each S3 test gets its own key prefix."""
    if request.param == "local":
        yield LocalStorage(tmp_path / "store")
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    yield S3Storage(bucket, f"t-{uuid.uuid4().hex[:8]}/root", endpoint_url=endpoint, presign=True)
