"""Column helpers every table module shares: ids and timestamps.

Kept apart from the tables so that a table module imports only what it uses
(these helpers, and the tables its foreign keys point at), never the registry.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str = "", length: int = 20) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def utcnow() -> datetime:
    return datetime.now(UTC)
