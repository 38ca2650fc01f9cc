"""Secrets out of text meant for logs: one function, used by every log path.

Playback tokens travel in `?token=`, nginx's ingest callbacks in `?secret=`,
camera credentials in `rtsp://user:pass@host`, presigned S3 URLs in
`X-Amz-Signature=`; access logs, ffmpeg argv and ffmpeg's own error lines
print them verbatim. `redact` keeps the shape (which parameter, which user)
and replaces only the secret part, so a log line still says what happened.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# Query or form parameters whose values are secrets (matched case-insensitively).
SECRET_PARAMS = ("token", "secret", "password", "passwd", "api_key", "apikey", "access_token",
                 "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token")

_PARAM = re.compile(r"(?i)(?<![A-Za-z0-9_])(" + "|".join(re.escape(p) for p in SECRET_PARAMS)
                    + r")=([^&\s\"'#;,]+)")
# scheme://user:password@host: the password goes; the user name stays (it helps debugging).
# The password runs to the authority's last @ (a camera password may itself contain @).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@\"']*):([^/\s\"']*)@")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]+")
# CENC content keys in an ffmpeg argv: `-format_options …:encryption_key=HEX:…` or `-decryption_key HEX`
# (only the hex digits go: the key id after them is public).
_KEY_OPTION = re.compile(r"(?i)((?:en|de)cryption_key(?:=|\s+))[0-9a-f]+")


def redact(text: str) -> str:
    """`text` with secret query values, URL passwords and bearer tokens replaced by `[redacted]`."""
    if not text:
        return text
    text = _PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    text = _KEY_OPTION.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
