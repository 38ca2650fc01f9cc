"""No secret that ships in the repository ever guards a reachable API; first runs make strong ones."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from sqlmodel import Session

from core.config import Settings
from core.secrets_policy import DEV_SIGNING_KEY, KNOWN_PLACEHOLDERS, is_loopback, refusal
from tests.conftest import REPO_ROOT, free_port
from tests.helpers import settings_from

STRONG = "s" * 43  # long enough, no placeholder words: the baseline every case spoils once
COMPOSE_AS_SHIPPED = {"ABR_ENV": "production", "ABR_SIGNING_KEY": "change-me-signing-key",
                      "ABR_API_KEYS": "change-me-api-key-0123456789abcdef",
                      "ABR_INGEST_SECRET": "change-me-ingest-secret"}


def _clean_env(tmp_path, **abr: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABR_")}
    env.update(ABR_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1", **abr)
    return env


def _abr(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize(("env", "variable"), [
    pytest.param({}, "ABR_SIGNING_KEY", id="dev-default-signing-key"),
    pytest.param({"ABR_ENV": "test"}, "ABR_SIGNING_KEY", id="dev-default-with-ABR_ENV-test"),
    pytest.param({"ABR_SIGNING_KEY": DEV_SIGNING_KEY}, "ABR_SIGNING_KEY", id="dev-signing-key-spelt-out"),
    pytest.param({"ABR_SIGNING_KEY": "change-me-signing-key"}, "ABR_SIGNING_KEY", id="compose-signing-key"),
    pytest.param({"ABR_SIGNING_KEY": STRONG, "ABR_API_KEYS": "change-me-api-key-0123456789abcdef"}, "ABR_API_KEYS",
                 id="compose-api-key"),
    pytest.param({"ABR_SIGNING_KEY": STRONG, "ABR_INGEST_SECRET": "change-me-ingest-secret"}, "ABR_INGEST_SECRET",
                 id="compose-ingest-secret"),
    pytest.param({"ABR_SIGNING_KEY": "k" * 31}, "ABR_SIGNING_KEY", id="signing-key-31-bytes"),
    pytest.param({"ABR_SIGNING_KEY": STRONG, "ABR_API_KEYS": f"{STRONG},short-key"}, "ABR_API_KEYS",
                 id="second-api-key-short"),
    pytest.param({"ABR_SIGNING_KEY": STRONG, "ABR_SIGNING_KEYS_PREVIOUS": f"old:{DEV_SIGNING_KEY}"},
                 "ABR_SIGNING_KEYS_PREVIOUS", id="previous-key-is-the-dev-key"),
    pytest.param({"ABR_SIGNING_KEY": STRONG, "ABR_METRICS_TOKEN": "change-me-metrics-token"}, "ABR_METRICS_TOKEN",
                 id="metrics-token-placeholder"),
])
def test_api_refuses_to_start_on_a_reachable_address_with_a_known_or_weak_secret(tmp_path, env, variable):
    port = free_port()
    done = _abr(["api", "--host", "0.0.0.0", "--port", str(port)], _clean_env(tmp_path, **env), timeout=30)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "refusing to start" in done.stderr and variable in done.stderr, done.stderr
    assert "secrets.token_urlsafe(32)" in done.stderr  # how to make one


def test_the_compose_values_as_once_shipped_are_all_named_at_once(tmp_path):
    done = _abr(["api", "--host", "0.0.0.0", "--port", str(free_port()), "--server", "uvicorn"],
                _clean_env(tmp_path, **COMPOSE_AS_SHIPPED), timeout=30)
    assert done.returncode != 0
    for variable in ("ABR_SIGNING_KEY", "ABR_API_KEYS", "ABR_INGEST_SECRET"):
        assert variable in done.stderr, done.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "video.example"])
def test_every_shipped_placeholder_is_refused_on_every_reachable_host(host):
    for value in sorted(KNOWN_PLACEHOLDERS):
        settings = Settings(host=host, signing_key=STRONG, api_keys=value, data_dir="/nonexistent")
        assert "ABR_API_KEYS is a placeholder" in (refusal(settings) or ""), value


def test_loopback_binds_keep_development_values_and_strong_values_bind_anywhere():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("example.org")
    dev = Settings(host="127.0.0.1", api_keys="change-me-api-key-0123456789abcdef", data_dir="/nonexistent")
    assert refusal(dev) is None  # the test suite and `abr dev` on a laptop
    assert refusal(Settings(host="0.0.0.0", signing_key=STRONG, api_keys="a" * 32, ingest_secret="i" * 32,
                            data_dir="/nonexistent")) is None
    # ABR_ENV=production refuses placeholders on loopback too (behind a local reverse proxy).
    prod = Settings(env="production", host="127.0.0.1", signing_key=STRONG,
                    api_keys="change-me-api-key-0123456789abcdef", data_dir="/nonexistent")
    assert "ABR_API_KEYS" in (refusal(prod) or "")


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_migrate_generates_strong_secrets_once_keeps_them_0600_and_every_later_run_uses_them(tmp_path):
    from core.db.engine import make_engine
    from core.services.keys import authenticate

    env = _clean_env(tmp_path)
    first = _abr(["migrate"], env)
    assert first.returncode == 0, first.stderr[-3000:]
    data = tmp_path / "data"
    files = {name: data / name for name in ("signing-key", "ingest-secret", "api-key")}
    values = {}
    for name, path in files.items():
        assert path.is_file(), f"{name} was not generated"
        assert _mode(path) == 0o600, f"{name} is {oct(_mode(path))}"
        values[name] = path.read_text().strip()
        assert len(values[name].encode()) >= 32 and "change-me" not in values[name]
        assert f"generated {path}" in first.stderr
    assert len(set(values.values())) == 3

    second = _abr(["migrate"], env)
    assert second.returncode == 0 and "generated" not in second.stderr, second.stderr
    assert {name: path.read_text().strip() for name, path in files.items()} == values

    settings = Settings(data_dir=data)  # what `abr api`, `abr worker` and `abr token` read
    assert settings.signing_key == values["signing-key"] and settings.ingest_secret == values["ingest-secret"]
    assert refusal(settings.model_copy(update={"host": "0.0.0.0"})) is None
    engine = make_engine(settings.resolved_database_url)
    with Session(engine) as session:
        assert authenticate(session, values["api-key"], static_keys=[]).allows("admin")
    engine.dispose()


def test_secrets_from_the_environment_are_used_and_not_generated(tmp_path):
    env = _clean_env(tmp_path, ABR_SIGNING_KEY=STRONG, ABR_API_KEYS="a" * 40)
    done = _abr(["migrate"], env)
    assert done.returncode == 0, done.stderr[-3000:]
    data = tmp_path / "data"
    assert not (data / "signing-key").exists() and not (data / "api-key").exists()
    assert _mode(data / "ingest-secret") == 0o600
    (data / "signing-key").write_text("from-a-file-" + "f" * 40)
    assert settings_from({"ABR_SIGNING_KEY": STRONG, "ABR_DATA_DIR": str(data)}).signing_key == STRONG  # env wins
