from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from core.errors import Forbidden
from core.services.playback import SigningKeys, derive_kid, sign_token, verify_token

NOW = 1_700_000_000
KEYS = SigningKeys.from_settings("current-secret")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict, payload: dict, secret: bytes) -> str:
    h, p = b64(json.dumps(header).encode()), b64(json.dumps(payload).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


def test_token_is_a_standard_hs256_jwt():
    token = sign_token("pid1", keys=KEYS, expires_at=NOW + 60)
    header, payload, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {
        "alg": "HS256", "kid": derive_kid("current-secret"), "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {"exp": NOW + 60, "sub": "pid1"}
    assert signature == b64(hmac.new(b"current-secret", f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert verify_token(token, "pid1", keys=KEYS, now=NOW) == NOW + 60


def test_kids():
    assert derive_kid("current-secret") == hashlib.sha256(b"abr-kid:current-secret").hexdigest()[:8]
    keys = SigningKeys.from_settings("new", "k1:old1, old2 ,", current_kid="k2")
    assert keys.current_kid == "k2"
    assert keys.secrets == {"k1": b"old1", derive_kid("old2"): b"old2", "k2": b"new"}


@pytest.mark.parametrize(("make", "reason"), [
    pytest.param(lambda: sign_token("pid1", keys=KEYS, expires_at=NOW), "expired", id="expired-now"),
    pytest.param(lambda: sign_token("pid1", keys=KEYS, expires_at=NOW - 1), "expired", id="expired"),
    pytest.param(lambda: sign_token("pid2", keys=KEYS, expires_at=NOW + 60), "another playback id",
                 id="other-playback-id"),
    pytest.param(lambda: sign_token("pid1", keys=KEYS, expires_at=NOW + 60)[:-2] + "AA", "signature",
                 id="tampered-signature"),
    pytest.param(lambda: forged({"alg": "HS256", "kid": KEYS.current_kid}, {"exp": NOW + 10**6, "sub": "pid1"},
                                b"guessed"), "signature", id="wrong-secret"),
    pytest.param(lambda: sign_token("pid1", keys=SigningKeys.from_settings("other"), expires_at=NOW + 60),
                 "unknown key", id="unknown-kid"),
    pytest.param(lambda: forged({"alg": "none", "kid": KEYS.current_kid}, {"exp": NOW + 60, "sub": "pid1"},
                                b"current-secret"), "HS256", id="alg-none"),
    pytest.param(lambda: forged({"alg": "HS256", "kid": KEYS.current_kid}, {"sub": "pid1"},
                                b"current-secret"), "malformed", id="no-exp"),
    pytest.param(lambda: "", "signed", id="missing"),
    pytest.param(lambda: "abc", "malformed", id="not-three-parts"),
    pytest.param(lambda: "a.b.c.d", "malformed", id="four-parts"),
    pytest.param(lambda: "!!.??.**", "malformed", id="not-base64"),
    pytest.param(lambda: b64(b"[1]") + ".e30.AA", "HS256", id="header-not-object"),
    pytest.param(lambda: "x" * 3000, "malformed", id="overlong"),
])
def test_refused_tokens(make, reason):
    with pytest.raises(Forbidden, match=reason):
        verify_token(make(), "pid1", keys=KEYS, now=NOW)


def test_rotation_accepts_previous_key_and_signs_with_the_new_one():
    old_token = sign_token("pid1", keys=KEYS, expires_at=NOW + 60)
    rotated = SigningKeys.from_settings("next-secret", "current-secret")
    assert verify_token(old_token, "pid1", keys=rotated, now=NOW) == NOW + 60
    new_token = sign_token("pid1", keys=rotated, expires_at=NOW + 60)
    with pytest.raises(Forbidden, match="unknown key"):
        verify_token(new_token, "pid1", keys=KEYS, now=NOW)
    # once the old key is dropped, its tokens stop working
    with pytest.raises(Forbidden, match="unknown key"):
        verify_token(old_token, "pid1", keys=SigningKeys.from_settings("next-secret"), now=NOW)


def test_a_remembered_token_is_still_checked_for_expiry_playback_id_and_key():
    token = sign_token("pid1", keys=KEYS, expires_at=NOW + 60)
    assert verify_token(token, "pid1", keys=KEYS, now=NOW) == NOW + 60
    assert verify_token(token, "pid1", keys=KEYS, now=NOW + 59) == NOW + 60  # from memory
    with pytest.raises(Forbidden, match="expired"):
        verify_token(token, "pid1", keys=KEYS, now=NOW + 60)
    with pytest.raises(Forbidden, match="another playback id"):
        verify_token(token, "pid2", keys=KEYS, now=NOW)
    same_kid_other_secret = SigningKeys(current_kid=KEYS.current_kid, secrets={KEYS.current_kid: b"other"})
    with pytest.raises(Forbidden, match="signature"):
        verify_token(token, "pid1", keys=same_kid_other_secret, now=NOW)
