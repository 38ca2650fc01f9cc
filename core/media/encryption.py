"""Content keys for encrypted playback: one AES-128 key per asset, CENC (`cenc`, AES-CTR) in the CMAF segments.

- A `ContentKey` is a key id (KID, public: it goes into the MPD and the init
  segments' `tenc`) and the key (secret: only the key endpoint ever returns
  it). Its repr never shows the key, so a stray log line cannot leak it.
- At rest the key is wrapped with AES-256-GCM under the master key from
  settings (`ABR_KEY_MASTER`); the asset id is the associated data, so a
  wrapped key copied to another asset does not unwrap.
- `clearkey_license` answers a W3C ClearKey license request (EME §9.1.4):
  `{"kids": [b64url…], "type": "temporary"}` → `{"keys": [{"kty": "oct", "kid", "k"}]}`.
- `KeySystem` is the seam for Widevine/PlayReady/FairPlay: each names its
  DRM system id and the `ContentProtection` it adds to the MPD; only
  ClearKey is implemented (its licence is the key itself, served by us).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import BadRequest

KEY_BYTES = 16  # AES-128: what CENC uses
WRAP_VERSION = 1
CLEARKEY_SYSTEM_ID = "e2719d58-a985-b3c9-781a-b030af78d30e"  # DASH-IF's ClearKey DRM system id
MP4_PROTECTION_SCHEME = "urn:mpeg:dash:mp4protection:2011"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, repr=False)
class ContentKey:
    kid: bytes
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.kid) != KEY_BYTES or len(self.key) != KEY_BYTES:
            raise ValueError("a content key and its id are 16 bytes each")

    @classmethod
    def generate(cls) -> ContentKey:
        return cls(kid=os.urandom(KEY_BYTES), key=os.urandom(KEY_BYTES))

    @property
    def kid_uuid(self) -> str:
        """`cenc:default_KID`'s form: the 16 bytes as a UUID string."""
        return str(uuid.UUID(bytes=self.kid))

    def __repr__(self) -> str:  # never the key
        return f"ContentKey(kid={self.kid_uuid})"

    __str__ = __repr__


def parse_master_key(text: str) -> bytes:
    """`ABR_KEY_MASTER`: 32 bytes as 64 hex digits or base64/base64url."""
    raw = text.strip()
    try:
        value = bytes.fromhex(raw) if len(raw) == 64 else base64.urlsafe_b64decode(
            raw.replace("+", "-").replace("/", "_") + "=" * (-len(raw) % 4))
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ValueError("the key master must be 32 bytes: 64 hex digits or base64 of 32 bytes")
    return value


def wrap(key: ContentKey, master: bytes, asset_id: str) -> bytes:
    """The key as stored: JSON with the KID in clear and the key sealed under `master`."""
    nonce = os.urandom(12)
    sealed = AESGCM(master).encrypt(nonce, key.key, asset_id.encode())
    return json.dumps({"v": WRAP_VERSION, "kid": key.kid.hex(), "nonce": nonce.hex(), "sealed": sealed.hex()},
                      separators=(",", ":")).encode()


def unwrap(data: bytes, master: bytes, asset_id: str) -> ContentKey:
    doc = json.loads(data)
    if doc.get("v") != WRAP_VERSION:
        raise ValueError(f"unknown wrapped-key version {doc.get('v')!r}")
    key = AESGCM(master).decrypt(bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["sealed"]), asset_id.encode())
    return ContentKey(kid=bytes.fromhex(doc["kid"]), key=key)


def clearkey_license(request_body: bytes, key: ContentKey) -> dict:
    """The ClearKey license for `key`, if the request asks for its KID; BadRequest otherwise."""
    try:
        doc = json.loads(request_body or b"{}")
        kids = [from_b64url(k) for k in doc.get("kids", [])]
    except (ValueError, TypeError, AttributeError):
        raise BadRequest("a ClearKey license request is JSON: {\"kids\": [base64url key ids]}") from None
    if kids and key.kid not in kids:
        raise BadRequest("the license request names no key of this asset")
    return {"keys": [{"kty": "oct", "kid": b64url(key.kid), "k": b64url(key.key)}], "type": "temporary"}


@dataclass(frozen=True)
class KeySystem:
    """A DRM system the MPD can name: `ContentProtection schemeIdUri="urn:uuid:{system_id}"`.

    `license_path` is relative to the playback root (the token is appended like
    any other URI). Widevine/PlayReady/FairPlay would add their system ids and
    a license proxy here; their licensing is not implemented.
    """

    name: str
    system_id: str
    license_path: str


CLEARKEY = KeySystem("clearkey", CLEARKEY_SYSTEM_ID, "keys/clearkey")
KEY_SYSTEMS: dict[str, KeySystem] = {CLEARKEY.name: CLEARKEY}


# HLS (SAMPLE-AES-CTR over the same CENC segments) names a key per KEYFORMAT, one EXT-X-KEY each:
# - "org.w3.clearkey" (hls.js with EME): the URI is a data URI carrying the KID only, which hls.js
#   puts in the EME request; the licence itself comes from the player's configured ClearKey
#   licence URL (our `keys/clearkey`), as HLS has no tag for a licence server.
# - "identity" (Shaka): the URI answers the raw 16-byte key (`keys/identity`, token required);
#   Shaka reads the KID from the init segment's `tenc` and hands both to its ClearKey CDM.
# Each player ignores the tag of the format it does not handle (measured: hls.js 1.7.4, Shaka 4.x).
HLS_CLEARKEY_FORMAT = "org.w3.clearkey"
HLS_IDENTITY_FORMAT = "identity"
HLS_KEY_FORMATS = (HLS_CLEARKEY_FORMAT, HLS_IDENTITY_FORMAT)
IDENTITY_KEY_PATH = "keys/identity"


def hls_key_uri(key_format: str, default_kid: str) -> str:
    """The EXT-X-KEY URI of `key_format`: a data URI (KID only, public) or a path from the playback root."""
    if key_format == HLS_CLEARKEY_FORMAT:
        kid = uuid.UUID(default_kid).bytes
        return "data:text/plain;base64," + base64.b64encode(kid).decode()
    if key_format == HLS_IDENTITY_FORMAT:
        return IDENTITY_KEY_PATH
    raise ValueError(f"no HLS key format {key_format!r}")
