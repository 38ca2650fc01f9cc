"""Playback ids (which asset, which policy) and the tokens that open signed ones.

Token format — a compact JWT (RFC 7519) signed with HMAC-SHA256, made and
checked with PyJWT, so any JWT library can read it:

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

import functools
import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from sqlalchemy import bindparam
from sqlmodel import Session, select

from core.db.models import Asset, PlaybackId
from core.errors import Forbidden, NotFound, Unprocessable

MAX_EXPIRES_IN = 365 * 24 * 3600
MAX_TOKEN_CHARS = 2048
ALGORITHM = "HS256"  # the only one accepted: never `none`, never an asymmetric one (key confusion)
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


def sign_token(playback_id: str, *, keys: SigningKeys, expires_at: int) -> str:
    return jwt.encode({"exp": int(expires_at), "sub": playback_id}, keys.secrets[keys.current_kid],
                      algorithm=ALGORITHM, headers={"kid": keys.current_kid})


def verify_token(token: str | None, playback_id: str, *, keys: SigningKeys, now: float | None = None) -> int:
    """The token's `exp` if it opens `playback_id` now; Forbidden (with the reason) otherwise."""
    if not token:
        raise Forbidden("this playback id is signed: add ?token=<playback token>")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise Forbidden("malformed playback token")
    claims = _verified_claims(token, keys)
    if claims["sub"] != playback_id:
        raise Forbidden("playback token is for another playback id")
    if claims["exp"] <= (time.time() if now is None else now):
        raise Forbidden("playback token has expired")
    return claims["exp"]


# A player sends the same token with every segment request: the claims of tokens whose
# signature checked out are remembered (by token, with the secret that checked it), so
# PyJWT's ~50 µs of parsing runs once per token rather than once per request.
_VERIFIED_MAX = 4096
_verified: OrderedDict[str, tuple[str, bytes, dict]] = OrderedDict()
_verified_lock = threading.Lock()


def _verified_claims(token: str, keys: SigningKeys) -> dict:
    """The claims of a token signed by one of `keys` (`exp` an int, `sub` present); Forbidden otherwise."""
    hit = _verified.get(token)
    if hit is not None and keys.secrets.get(hit[0]) == hit[1]:
        return hit[2]
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Forbidden("malformed playback token: expected an HS256 JWT") from None
    if header.get("alg") != ALGORITHM:
        raise Forbidden("malformed playback token: only HS256 is accepted")
    kid = header.get("kid")
    secret = keys.secrets.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise Forbidden("playback token signed with an unknown key")
    try:
        # The signature is checked before any claim is read; `exp` is checked by the caller, against `now`.
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"verify_exp": False, "require": ["exp", "sub"]})
    except jwt.InvalidSignatureError:
        raise Forbidden("playback token signature does not match") from None
    except jwt.InvalidTokenError:
        raise Forbidden("malformed playback token") from None
    if not isinstance(claims.get("exp"), int) or isinstance(claims["exp"], bool):
        raise Forbidden("malformed playback token")
    with _verified_lock:
        _verified[token] = (kid, secret, claims)
        while len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return claims


# -- playback ids ---------------------------------------------------------------


@dataclass(frozen=True)
class PlaybackTarget:
    playback_id: str
    asset_id: str  # for a live playback id: the live stream's id (its media prefix)
    policy: str  # public | signed
    live: bool = False

    @property
    def signed(self) -> bool:
        return self.policy in ("signed", "encrypted")  # encrypted: signed, and its key behind the token


def find_playback(session: Session, playback_id: str) -> PlaybackTarget | None:
    """The asset and policy behind a playback id; None if unknown or its asset is gone.

    One query (an id that does not exist — players of a deleted asset, probes — costs one
    round trip, not two): the id with its asset if that still exists, else its live stream.
    """
    row = session.connection().execute(find_playback_statement(), {"playback_id": playback_id}).first()
    return playback_from_row(playback_id, row)


def playback_from_row(playback_id: str, row) -> PlaybackTarget | None:
    """`find_playback`'s answer from its statement's row (None: no such id)."""
    if row is None:
        return None
    policy, asset_id, live_id = row
    if asset_id is not None:
        return PlaybackTarget(playback_id, asset_id, policy)
    return PlaybackTarget(playback_id, live_id, policy, live=True) if live_id is not None else None


@functools.cache
def find_playback_statement():
    """`find_playback`'s query (one parameter, the id), built once and run on the session's connection:
    built anew and run through the ORM, an unknown id's lookup took ~225 µs on SQLite, now ~75 µs (a
    probe with a made-up id costs the origin one lookup per request); the origin also runs it on
    SQLite without a session (core/db/inline.py, ~7 µs)."""
    from core.db.models_live import LiveStream  # live playback ids: no asset, a live stream

    return (select(PlaybackId.policy, Asset.id, LiveStream.id)
            .outerjoin(Asset, Asset.id == PlaybackId.asset_id)
            .outerjoin(LiveStream, LiveStream.playback_id == PlaybackId.id)
            .where(PlaybackId.id == bindparam("playback_id")))


def find_vod_playbacks(session: Session, playback_ids: list[str]) -> dict[str, PlaybackTarget]:
    """`find_playback` for many ids of assets at once (one query per 500): the ids still found."""
    found: dict[str, PlaybackTarget] = {}
    for start in range(0, len(playback_ids), 500):
        chunk = playback_ids[start : start + 500]
        rows = session.exec(
            select(PlaybackId.id, PlaybackId.asset_id, PlaybackId.policy)
            .join(Asset, Asset.id == PlaybackId.asset_id)
            .where(PlaybackId.id.in_(chunk))  # type: ignore[union-attr]
        ).all()
        found.update((pid, PlaybackTarget(pid, asset_id, policy)) for pid, asset_id, policy in rows)
    return found


def recent_vod_playbacks(session: Session, limit: int) -> dict[str, PlaybackTarget]:
    """Up to `limit` playback ids of the newest playable assets (one query): what a starting front links first."""
    if limit <= 0:
        return {}
    rows = session.exec(
        select(PlaybackId.id, PlaybackId.asset_id, PlaybackId.policy)
        .join(Asset, Asset.id == PlaybackId.asset_id)
        .where(Asset.playable == True)  # noqa: E712 - SQL, not Python truth
        .order_by(Asset.created_at.desc(), PlaybackId.id)  # type: ignore[union-attr]
        .limit(limit)
    ).all()
    return {pid: PlaybackTarget(pid, asset_id, policy) for pid, asset_id, policy in rows}


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
