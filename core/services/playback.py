"""Playback ids (which asset, which policy) and the tokens that open signed ones.

Token format — a compact JWT (RFC 7519) signed with HMAC-SHA256, so any JWT
library can read it:

    base64url({"alg":"HS256","typ":"JWT","kid":"<key id>"})
    . base64url({"sub":"<playback id>","exp":<unix seconds>})
    . base64url(HMAC-SHA256(secret of kid, "<header>.<payload>"))

Only `HS256` is accepted (never `none`), the signature is checked before the
payload is read, and a token opens exactly one playback id until `exp`.

Key rotation without downtime: `ABR_SIGNING_KEY` is the current secret; new
tokens are signed with it. `ABR_SIGNING_KEYS_PREVIOUS` lists secrets that
are still *accepted*, comma-separated, each `kid:secret` or a bare secret.
A key's id (`kid`) is `ABR_SIGNING_KEY_ID` when set for the current key, the
explicit `kid:` prefix for a previous one, else the first 8 hex digits of
SHA-256 over `"abr-kid:" + secret` (so moving the old `ABR_SIGNING_KEY`
value verbatim into `ABR_SIGNING_KEYS_PREVIOUS` just works). To rotate: put
the old secret into the previous list, set the new one, restart; once the
longest-lived old token has expired, drop the old secret.
A token naming an unknown `kid` is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, select

from core.db.models import Asset, PlaybackId
from core.errors import Forbidden, NotFound, Unprocessable

MAX_EXPIRES_IN = 365 * 24 * 3600
MAX_TOKEN_CHARS = 2048
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# -- keys -----------------------------------------------------------------------


def derive_kid(secret: str) -> str:
    return hashlib.sha256(b"abr-kid:" + secret.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class SigningKeys:
    """The current signing key and every key still accepted, by key id."""

    current_kid: str
    secrets: dict[str, bytes]

    @classmethod
    def from_settings(cls, signing_key: str, previous: str = "", current_kid: str | None = None) -> SigningKeys:
        if not signing_key:
            raise ValueError("the signing key must not be empty")
        kid = current_kid or derive_kid(signing_key)
        secrets: dict[str, bytes] = {}
        for entry in (e.strip() for e in previous.split(",")):
            if not entry:
                continue
            name, sep, secret = entry.partition(":")
            if not sep or not _KID.match(name) or not secret:
                name, secret = derive_kid(entry), entry
            secrets[name] = secret.encode()
        secrets[kid] = signing_key.encode()  # the current key wins a kid clash
        return cls(current_kid=kid, secrets=secrets)


# -- tokens ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def sign_token(playback_id: str, *, keys: SigningKeys, expires_at: int) -> str:
    header = _b64(_json({"alg": "HS256", "kid": keys.current_kid, "typ": "JWT"}))
    payload = _b64(_json({"exp": int(expires_at), "sub": playback_id}))
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(keys.secrets[keys.current_kid], signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def verify_token(token: str | None, playback_id: str, *, keys: SigningKeys, now: float | None = None) -> int:
    """The token's `exp` if it opens `playback_id` now; Forbidden (with the reason) otherwise."""
    if not token:
        raise Forbidden("this playback id is signed: add ?token=<playback token>")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise Forbidden("malformed playback token")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        header = json.loads(_unb64(header_b64))
        signature = _unb64(signature_b64)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Forbidden("malformed playback token") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise Forbidden("malformed playback token: only HS256 is accepted")
    secret = keys.secrets.get(header.get("kid")) if isinstance(header.get("kid"), str) else None
    if secret is None:
        raise Forbidden("playback token signed with an unknown key")
    expected = hmac.new(secret, f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise Forbidden("playback token signature does not match")
    try:
        payload = json.loads(_unb64(payload_b64))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Forbidden("malformed playback token") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int) or payload.get("sub") is None:
        raise Forbidden("malformed playback token")
    if payload["sub"] != playback_id:
        raise Forbidden("playback token is for another playback id")
    if payload["exp"] <= (time.time() if now is None else now):
        raise Forbidden("playback token has expired")
    return payload["exp"]


# -- playback ids ---------------------------------------------------------------


@dataclass(frozen=True)
class PlaybackTarget:
    playback_id: str
    asset_id: str  # for a live playback id: the live stream's id (its media prefix)
    policy: str  # public | signed
    live: bool = False

    @property
    def signed(self) -> bool:
        return self.policy == "signed"


def find_playback(session: Session, playback_id: str) -> PlaybackTarget | None:
    """The asset and policy behind a playback id; None if unknown or its asset is gone."""
    row = session.exec(
        select(PlaybackId.asset_id, PlaybackId.policy)
        .join(Asset, Asset.id == PlaybackId.asset_id)
        .where(PlaybackId.id == playback_id)
    ).first()
    if row:
        return PlaybackTarget(playback_id, row[0], row[1])
    from core.db.models_live import LiveStream  # live playback ids: no asset, a live stream

    live = session.exec(
        select(LiveStream.id, PlaybackId.policy)
        .join(LiveStream, LiveStream.playback_id == PlaybackId.id)
        .where(PlaybackId.id == playback_id)
    ).first()
    return PlaybackTarget(playback_id, live[0], live[1], live=True) if live else None


def create_playback_token(session: Session, *, playback_id: str, expires_in: int, keys: SigningKeys,
                          now: float | None = None) -> tuple[str, datetime]:
    """A token for `playback_id` valid `expires_in` seconds; NotFound if the id is unknown."""
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise Unprocessable(f"expires_in must be between 1 and {MAX_EXPIRES_IN} seconds")
    if session.get(PlaybackId, playback_id) is None:
        raise NotFound(f"no playback id {playback_id}")
    expires_at = int(time.time() if now is None else now) + expires_in
    return sign_token(playback_id, keys=keys, expires_at=expires_at), datetime.fromtimestamp(expires_at, UTC)


class PlaybackCache:
    """playback id → PlaybackTarget (or None) for `ttl` seconds, at most `max_entries`.

    Unknown ids are remembered too (so a flood of made-up ids costs one query
    each per TTL); a deleted asset stops playing within `ttl`.
    """

    def __init__(self, *, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, PlaybackTarget | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, playback_id: str) -> tuple[bool, PlaybackTarget | None]:
        """(hit, value): a miss is (False, None)."""
        entry = self._entries.get(playback_id)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def entry(self, playback_id: str) -> tuple[float, PlaybackTarget | None] | None:
        """(expiry on the monotonic clock, value) as stored, expired or not; None if absent."""
        return self._entries.get(playback_id)

    def put(self, playback_id: str, target: PlaybackTarget | None) -> None:
        with self._lock:
            self._entries[playback_id] = (time.monotonic() + self.ttl, target)
            self._entries.move_to_end(playback_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
