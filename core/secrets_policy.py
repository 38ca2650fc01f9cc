"""No secret that ships with abr-origin ever guards anything reachable from another machine.

Two halves:

- `ensure_secret_files` (called by `abr dev` and `abr migrate`) generates a
  strong signing key and ingest secret on first run and keeps them in the data
  dir, readable by the owner only; `Settings` reads them back when the
  environment does not set `ABR_SIGNING_KEY` / `ABR_INGEST_SECRET`, so every
  later run (API, workers, `abr token`) uses the same ones.
- `unsafe_secrets` lists every configured secret that is a known placeholder,
  the development default, or shorter than 32 bytes. `abr api` refuses to
  start with any of them when it listens on anything but loopback (whatever
  `ABR_ENV` says) or when `ABR_ENV=production`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from pathlib import Path

MIN_SECRET_BYTES = 32
SIGNING_KEY_FILE = "signing-key"
INGEST_SECRET_FILE = "ingest-secret"
API_KEY_FILE = "api-key"
HOW_TO_MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

DEV_SIGNING_KEY = "dev-signing-key-change-me"
# Values that were ever written in this repository's files (compose, nginx config, docs).
KNOWN_PLACEHOLDERS = frozenset({
    DEV_SIGNING_KEY,
    "change-me-signing-key",
    "change-me-api-key-0123456789abcdef",
    "change-me-ingest-secret",
    "change-me-minio-secret",
    "change-me-metrics-token",
})
# ... and the words such values are made of, however they are spelt.
_PLACEHOLDER_WORDS = re.compile(r"(?i)change[-_ .]?me|replace[-_ .]?me|placeholder|dev-signing-key")


def generate_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters, 256 bits


def read_secret_file(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return value or None


def ensure_secret_file(path: Path) -> tuple[str, bool]:
    """The secret kept at `path`, made (0600) if missing; (value, created now)."""
    existing = read_secret_file(path)
    if existing is not None:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a copy made with looser permissions is tightened, not trusted as is
        return existing, False
    path.parent.mkdir(parents=True, exist_ok=True)
    value = generate_secret()
    try:
        # O_EXCL: two processes starting at once keep the first one's secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret_file(path) or value, False
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value, True


def ensure_secret_files(data_dir: Path, *, signing_key_set: bool, ingest_secret_set: bool) -> list[Path]:
    """Make the signing key / ingest secret files the environment does not replace; the paths made now."""
    made = []
    for name, given in ((SIGNING_KEY_FILE, signing_key_set), (INGEST_SECRET_FILE, ingest_secret_set)):
        if not given:
            _, created = ensure_secret_file(data_dir / name)
            if created:
                made.append(data_dir / name)
    return made


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def secret_problem(value: str) -> str | None:
    """Why `value` must not guard anything reachable from outside; None if it is fine."""
    if value in KNOWN_PLACEHOLDERS or _PLACEHOLDER_WORDS.search(value):
        return "is a placeholder shipped with abr-origin"
    if len(value.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


def _previous_secrets(previous: str) -> list[str]:
    out = []
    for entry in (e.strip() for e in previous.split(",")):
        if entry:
            kid, sep, secret = entry.partition(":")
            out.append(secret if sep and secret and kid.replace("-", "").replace("_", "").isalnum() else entry)
    return out


def unsafe_secrets(settings) -> list[str]:
    """One line per configured secret that a stranger could know or guess, naming its variable."""
    named: list[tuple[str, str]] = [("ABR_SIGNING_KEY", settings.signing_key)]
    named += [("ABR_SIGNING_KEYS_PREVIOUS", s) for s in _previous_secrets(settings.signing_keys_previous)]
    named += [("ABR_API_KEYS", k) for k in settings.static_api_keys]
    if settings.ingest_secret:  # unset: derived from the signing key, as strong as it
        named.append(("ABR_INGEST_SECRET", settings.ingest_secret))
    if settings.metrics_token:
        named.append(("ABR_METRICS_TOKEN", settings.metrics_token))
    problems = []
    for variable, value in named:
        why = secret_problem(value)
        if why:
            problems.append(f"{variable} {why}")
    return problems


def refusal(settings) -> str | None:
    """The message `abr api` stops with, or None when its secrets may be served where it listens."""
    exposed = not is_loopback(settings.host)
    if not exposed and settings.env != "production":
        return None  # a laptop: dev values are fine on loopback
    problems = unsafe_secrets(settings)
    if not problems:
        return None
    where = f"listens on {settings.host}" if exposed else "runs with ABR_ENV=production"
    lines = [f"refusing to start: the API {where}, and"] + [f"  - {p}" for p in problems]
    lines.append(f"Set each to a new random value, e.g. from: {HOW_TO_MAKE_ONE}")
    return "\n".join(lines)
