"""A real S3-compatible HTTP server (moto in server mode) for tests.

`start_moto()` starts one on 127.0.0.1 at a free port. The `s3_endpoint`
fixture (session-scoped) starts it once, points boto3 at dummy credentials
and yields the endpoint URL; import it into a conftest to use it:

    from tests.s3_server import s3_endpoint  # noqa: F401

Buckets are the tests' business (`s3_client(endpoint).create_bucket(...)`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    # Never read a developer's real profile or credentials file.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
_UNSET_AWS_ENV = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def start_moto() -> tuple[str, Callable[[], None]]:
    """Start moto's S3-compatible server in a thread; return (endpoint_url, stop)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server.stop


def s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client for the test server (to create buckets, inspect uploads)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, config=Config(s3={"addressing_style": "path"})
    )


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in DUMMY_AWS_ENV.items():
            mp.setenv(name, value)
        for name in _UNSET_AWS_ENV:
            mp.delenv(name, raising=False)
        endpoint_url, stop = start_moto()
        try:
            yield endpoint_url
        finally:
            stop()
