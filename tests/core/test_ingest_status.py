"""What the API and `abr dev` say about RTMP push ingest: exact words for each case."""

from __future__ import annotations

import socket

import pytest

from core.live.ingest import (
    INSTALL_LINE,
    IngestStatus,
    RtmpStatusProbe,
    find_nginx,
    find_rtmp_module,
    plan_rtmp_status,
    pull_address,
)


@pytest.mark.parametrize(("found", "expected"), [
    pytest.param(dict(listening=True, nginx=None, module=None), IngestStatus(True), id="listening"),
    pytest.param(dict(listening=False, nginx="/usr/sbin/nginx", module=None), IngestStatus(
        False, f"nginx's RTMP module is not installed; to turn live push on: {INSTALL_LINE}"), id="no-module"),
    pytest.param(dict(listening=False, nginx=None, module="/m.so"), IngestStatus(
        False, f"nginx is not installed; to turn live push on: {INSTALL_LINE}"), id="no-nginx"),
    pytest.param(dict(listening=False, nginx="/usr/sbin/nginx", module="/m.so"), IngestStatus(
        False, "nothing accepts RTMP at 127.0.0.1:1935; start it with `abr ingest` "
               "(`abr dev` starts it when the port is free)"), id="installed-not-running"),
])
def test_plan_rtmp_status(found, expected):
    assert plan_rtmp_status(address="127.0.0.1:1935", **found) == expected


def test_install_line_is_debians():
    assert INSTALL_LINE == "sudo apt-get install nginx libnginx-mod-rtmp"


def test_configured_paths_win_and_missing_ones_are_none(tmp_path):
    assert find_rtmp_module(str(tmp_path / "nope.so")) is None
    assert find_nginx(str(tmp_path / "nginx")) is None
    module = tmp_path / "ngx_rtmp_module.so"
    module.write_bytes(b"")
    assert find_rtmp_module(str(module)) == str(module)


@pytest.mark.parametrize(("url", "address"), [
    (None, ("127.0.0.1", 1940)),
    ("rtmp://ingest:1936/live", ("ingest", 1936)),
    ("rtmp://ingest/live", ("ingest", 1935)),
])
def test_pull_address(url, address):
    assert pull_address(url, 1940) == address


def test_probe_sees_a_listener_and_caches(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = RtmpStatusProbe(pull_url=None, rtmp_port=port, nginx=None, module=None, ttl=60)
        assert probe.status() == IngestStatus(True)
    assert probe.status() == IngestStatus(True)  # cached for ttl seconds
    fresh = RtmpStatusProbe(pull_url=None, rtmp_port=port, nginx=None, module=str(tmp_path / "x.so"), ttl=0)
    assert fresh.status().available is False
