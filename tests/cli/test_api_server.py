"""`abr api`'s Granian runtime: chosen by the number of processes (cli/main.py, measured in bench/origin.py)."""

from __future__ import annotations

from cli.main import behind_local_proxy, granian_runtime


def test_several_processes_get_one_single_threaded_runtime_each():
    assert granian_runtime(2) == {"runtime_mode": "st", "runtime_threads": 1}
    assert granian_runtime(8) == {"runtime_mode": "st", "runtime_threads": 1}


def test_one_process_gets_two_runtime_threads():
    assert granian_runtime(1) == {"runtime_mode": "mt", "runtime_threads": 2}


def _seen(headers: list[tuple[bytes, bytes]], client: str = "127.0.0.1") -> dict:
    seen = {}

    def app(scope, receive, send):
        seen.update(scope)

    behind_local_proxy(app)({"type": "http", "scheme": "http", "client": (client, 5000), "headers": headers},
                            None, None)
    return seen


def test_the_local_proxy_sets_the_client_and_scheme():
    seen = _seen([(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")])
    assert seen["client"] == ("203.0.113.7", 0) and seen["scheme"] == "https"


def test_without_forwarded_headers_or_from_elsewhere_nothing_changes():
    assert _seen([(b"x-forwarded-proto", b"https")]) == {
        "type": "http", "scheme": "http", "client": ("127.0.0.1", 5000), "headers": [(b"x-forwarded-proto", b"https")]}
    elsewhere = _seen([(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")], client="198.51.100.1")
    assert elsewhere["client"] == ("198.51.100.1", 5000) and elsewhere["scheme"] == "http"
