"""Live pull SSRF policy (core/live/pull_guard.py): what a pull may reach, checked at creation and pinned to IPs."""

from __future__ import annotations

import ipaddress

import pytest

from core.errors import Unprocessable
from core.live.pull_guard import (
    AddressNotAllowed,
    PullPolicy,
    check_source,
    parse_networks,
    pin_source,
    pull_address_allowed,
)
from tests.helpers import app_client

NONE = PullPolicy()
CAMERAS = PullPolicy.from_setting("10.20.0.0/16, 127.0.0.1/32, 169.254.0.0/16")


@pytest.mark.parametrize(("addr", "policy", "allowed"), [
    ("8.8.8.8", NONE, True),
    ("2001:4860:4860::8888", NONE, True),
    ("127.0.0.1", NONE, False),
    ("::1", NONE, False),
    ("::ffff:127.0.0.1", NONE, False),
    ("169.254.10.1", NONE, False),  # link-local
    ("169.254.169.254", NONE, False),  # metadata
    ("fd00:ec2::254", NONE, False),
    ("100.100.100.200", NONE, False),
    ("10.20.3.4", NONE, False),  # private
    ("192.168.1.10", NONE, False),
    ("0.0.0.0", NONE, False),
    # The operator's allow-list opens exactly its networks ...
    ("10.20.3.4", CAMERAS, True),
    ("10.21.3.4", CAMERAS, False),
    ("127.0.0.1", CAMERAS, True),
    ("::ffff:127.0.0.1", CAMERAS, True),
    ("127.0.0.2", CAMERAS, False),
    ("169.254.10.1", CAMERAS, True),
    # ... and never a metadata address, in any of its spellings.
    ("169.254.169.254", CAMERAS, False),
    ("::ffff:169.254.169.254", CAMERAS, False),
    ("64:ff9b::a9fe:a9fe", CAMERAS, False),
    ("169.254.170.2", CAMERAS, False),
    ("100.100.100.200", PullPolicy.from_setting("100.64.0.0/10"), False),
    ("0.0.0.0", PullPolicy.from_setting("0.0.0.0/0"), False),
])  # fmt: skip
def test_pull_address_policy(addr, policy, allowed):
    assert pull_address_allowed(ipaddress.ip_address(addr), policy) is allowed


def test_parse_networks():
    assert parse_networks(" 10.0.0.0/8 ,, 192.168.1.7 ") == (ipaddress.ip_network("10.0.0.0/8"),
                                                             ipaddress.ip_network("192.168.1.7/32"))
    with pytest.raises(ValueError, match="camera"):
        parse_networks("camera.lan")


@pytest.mark.parametrize("url", [
    "rtsp://127.0.0.1/cam", "rtmp://169.254.169.254/live/x", "srt://10.0.0.5:9000", "http://[::1]:8080/live.m3u8",
    "rtsps://192.168.0.2/cam", "http://localhost/live.m3u8", "rtmp://[fd00:ec2::254]/live/x",
])
def test_check_source_refuses_non_public(url):
    with pytest.raises(AddressNotAllowed) as err:
        check_source(url, NONE)
    assert err.value.code == "address_not_allowed" and err.value.status == 403
    assert "127.0.0.1" not in err.value.message and "169.254" not in err.value.message  # the class, not the address


def test_check_source_needs_a_port_for_srt():
    with pytest.raises(Unprocessable, match="port"):
        check_source("srt://10.20.0.9", CAMERAS)


@pytest.mark.parametrize(("url", "pinned", "options"), [
    ("rtmp://localhost:1936/live/cam1", "rtmp://127.0.0.1:1936/live/cam1",
     ("-rtmp_tcurl", "rtmp://localhost:1936/live")),
    ("rtmp://u:p@localhost/app/inst/key", "rtmp://u:p@127.0.0.1:1935/app/inst/key",
     ("-rtmp_tcurl", "rtmp://localhost/app/inst")),
    ("rtsp://admin:secret@localhost/Streaming/101", "rtsp://admin:secret@localhost/Streaming/101", ()),  # relayed
    ("srt://localhost:9000?streamid=cam", "srt://127.0.0.1:9000?streamid=cam", ()),
    ("rtsps://localhost/cam", "rtsps://localhost/cam", ()),  # relayed (TLS upstream): core/live/rtsp_relay.py
])  # fmt: skip
def test_pin_source(url, pinned, options):
    got = pin_source(url, PullPolicy.from_setting("127.0.0.1/32"))
    assert (got.url, got.input_options) == (pinned, options)


@pytest.mark.parametrize(("source", "status", "code"), [
    ("rtsp://127.0.0.1:8554/cam", 403, "address_not_allowed"),
    ("rtmp://169.254.169.254/live/x", 403, "address_not_allowed"),
    ("http://10.20.0.9/live.m3u8", 403, "address_not_allowed"),
    ("srt://[::1]:9000", 403, "address_not_allowed"),
    ("rtsp://10.20.0.9/cam", 201, None),
    ("rtsp://169.254.169.254/cam", 403, "address_not_allowed"),  # allow-listed 169.254/16, still metadata
    ("rtsp://no-such-host.invalid/cam", 422, "source_unreachable"),
])  # fmt: skip
def test_api_checks_the_source_at_creation(tmp_path, source, status, code):
    env = {"ABR_DATA_DIR": str(tmp_path), "ABR_ENV": "test"}
    allow = "10.20.0.0/16, 169.254.0.0/16" if source.startswith(("rtsp://10.", "rtsp://169")) else ""
    with app_client(env, live_pull_allow_networks=allow, allow_private_urls=True) as client:
        r = client.post("/v1/live-streams", json={"source_url": source, "record": False})
        assert r.status_code == status, r.text
        if code:
            assert r.json()["error"]["code"] == code
        assert client.get("/v1/live-streams").json()["count"] == (1 if status == 201 else 0)


def test_bad_allow_list_is_a_startup_error(tmp_path):
    from core.config import Settings

    with pytest.raises(ValueError, match="CIDR"):
        Settings(data_dir=tmp_path, live_pull_allow_networks="10.0.0.0/8,cameras")


def test_worker_checks_again_right_before_opening(tmp_path, monkeypatch):
    """DNS may change between creation and the worker's open: the worker resolves and checks again."""
    import contextlib
    import socket

    from core.live.session import LiveConfig, LiveRun

    def answer(ip):
        return lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr("core.live.pull_guard.socket.getaddrinfo", answer("93.184.216.34"))
    assert check_source("rtsp://cam.example/live", NONE) == "93.184.216.34"  # what the API saw
    monkeypatch.setattr("core.live.pull_guard.socket.getaddrinfo", answer("169.254.169.254"))  # rebound
    run = LiveRun(None, None, LiveConfig(ffmpeg="/nonexistent/ffmpeg", work_dir=tmp_path,
                                         rtmp_pull_base="rtmp://127.0.0.1:1935/live"), "ls_test")
    with contextlib.ExitStack() as stack, pytest.raises(AddressNotAllowed):
        run._open(stack, "rtsp://cam.example/live", pull=True)  # refused before any ffmpeg starts
