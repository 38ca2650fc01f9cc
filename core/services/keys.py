"""API keys: random secrets shown once, stored as SHA-256 digests.

The keys are 256-bit random tokens, so a fast digest is enough (there is no
low-entropy password to stretch); comparing digests also keeps the lookup an
indexed equality query.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlmodel import Session, select

from core.config import generate_api_key
from core.db.models import ApiKey, utcnow
from core.errors import NotFound, Unauthorized

SCOPES = ("read", "write", "admin")


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        # admin implies write implies read
        order = {"read": 0, "write": 1, "admin": 2}
        return any(order[s] >= order[scope] for s in self.scopes if s in order)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, name: str = "", scopes: str = "admin") -> tuple[ApiKey, str]:
    wanted = scopes.split()
    if not wanted or any(s not in SCOPES for s in wanted):
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
    plaintext = generate_api_key()
    row = ApiKey(name=name, key_hash=hash_key(plaintext), prefix=plaintext[:8], scopes=" ".join(wanted))
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, plaintext


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(ApiKey.created_at)).all())


def revoke_key(session: Session, key_id: str) -> None:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}")
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()


def authenticate(session: Session, presented: str | None, *, static_keys: list[str]) -> Principal:
    if not presented:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    digest = hash_key(presented)
    for static in static_keys:
        if hmac.compare_digest(digest, hash_key(static)):
            return Principal(key_id="env", scopes=frozenset({"admin"}))
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked API key")
    return Principal(key_id=row.id, scopes=frozenset(row.scopes.split()))
