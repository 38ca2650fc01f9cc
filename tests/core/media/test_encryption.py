"""Content keys: wrapping at rest, the ClearKey licence, the encode argv and the log redaction."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from core.errors import BadRequest
from core.media.encode import EncodeJob, build_encode_argv
from core.media.encryption import ContentKey, b64url, clearkey_license, parse_master_key, unwrap, wrap
from core.media.model import Ladder, Rendition
from core.media.runner import loggable_argv

KEY = ContentKey(kid=bytes.fromhex("0123456789abcdef0123456789abcdef"), key=bytes.fromhex("00112233445566778899aabbccddeeff"))
MASTER = bytes(range(32))


def test_the_key_never_shows_in_repr_or_str():
    assert "00112233" not in repr(KEY) and "\\x00\\x11" not in repr(KEY) and "00112233" not in str(KEY)
    assert repr(KEY) == "ContentKey(kid=01234567-89ab-cdef-0123-456789abcdef)"
    assert str(KEY) == "ContentKey(kid=01234567-89ab-cdef-0123-456789abcdef)"


def test_wrap_round_trip_binds_the_asset():
    stored = wrap(KEY, MASTER, "asset1")
    assert KEY.key.hex() not in stored.decode() and json.loads(stored)["kid"] == KEY.kid.hex()
    assert unwrap(stored, MASTER, "asset1") == KEY
    with pytest.raises(InvalidTag):
        unwrap(stored, MASTER, "asset2")  # copied to another asset
    with pytest.raises(InvalidTag):
        unwrap(stored, bytes(32), "asset1")  # another master


def test_master_key_forms():
    assert parse_master_key(MASTER.hex()) == MASTER
    assert parse_master_key(b64url(MASTER)) == MASTER
    for bad in ("", "abc", "00" * 16):
        with pytest.raises(ValueError, match="32 bytes"):
            parse_master_key(bad)


def test_clearkey_license():
    request = json.dumps({"kids": [b64url(KEY.kid)], "type": "temporary"}).encode()
    assert clearkey_license(request, KEY) == {"keys": [{"kty": "oct", "kid": "ASNFZ4mrze8BI0VniavN7w",
                                                        "k": "ABEiM0RVZneImaq7zN3u_w"}], "type": "temporary"}
    with pytest.raises(BadRequest, match="no key of this asset"):
        clearkey_license(json.dumps({"kids": [b64url(bytes(16))]}).encode(), KEY)
    with pytest.raises(BadRequest):
        clearkey_license(b"not json", KEY)


def test_encode_argv_encrypts_with_cenc_and_the_log_line_hides_the_key():
    audio = Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000)
    job = EncodeJob(Path("/in/src.mp4"), Path("/out"), None, audio, 4.0, None, content_key=KEY)
    argv = build_encode_argv("ffmpeg", job)
    at = argv.index("-format_options")
    assert argv[at + 1] == ("encryption_scheme=cenc-aes-ctr:encryption_key=00112233445566778899aabbccddeeff:"
                            "encryption_kid=0123456789abcdef0123456789abcdef")
    assert argv[at + 2:at + 4] == ["-f", "dash"]  # right before the muxer, as the chunk offset's
    # No bitexact: under it the mp4 muxer starts every track's IVs at 0 (one keystream for all).
    assert "+bitexact" not in argv and "+bitexact" in build_encode_argv("ffmpeg", replace(job, content_key=None))
    logged = " ".join(loggable_argv(argv))
    assert "00112233445566778899aabbccddeeff" not in logged and "encryption_key=<redacted>" in logged
    assert "encryption_kid=0123456789abcdef0123456789abcdef" in logged  # the KID is public


def test_chunk_offset_and_encryption_share_one_format_options():
    audio = Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000)
    ladder = Ladder("h264", (Rendition("h264-360p", "h264", 640, 360, 800_000, 1_200_000, 1_600_000),))
    from fractions import Fraction
    job = EncodeJob(Path("/in/src.mp4"), Path("/out"), ladder, None, 4.0, Fraction(30), start=8, length=8,
                    output_ts_offset=8, content_key=KEY)
    argv = build_encode_argv("ffmpeg", job)
    assert argv.count("-format_options") == 1
    assert argv[argv.index("-format_options") + 1].startswith("movflags=+frag_discont:encryption_scheme=cenc-aes-ctr:")
    with pytest.raises(ValueError, match="VP8"):
        build_encode_argv("ffmpeg", EncodeJob(Path("/i"), Path("/o"), Ladder("vp8", ladder.renditions), None, 4.0,
                                              Fraction(30), content_key=KEY))


def test_runner_logs_the_redacted_argv(caplog, tmp_path):
    from core.errors import FFmpegError
    from core.media.runner import run_ffmpeg

    caplog.set_level(logging.DEBUG)
    with pytest.raises(FFmpegError):
        run_ffmpeg(["false", "-format_options", "encryption_key=00112233445566778899aabbccddeeff"],
                   duration=None, on_progress=None)
    assert "encryption_key=<redacted>" in caplog.text and "00112233445566778899aabbccddeeff" not in caplog.text


def test_live_argv_joins_movflags_to_the_cenc_options():
    """The live tail's movflags go into the one -format_options (a second would replace the CENC options)."""
    from fractions import Fraction

    from core.live.encode import build_live_argv
    ladder = Ladder("h264", (Rendition("h264-360p", "h264", 640, 360, 800_000, 1_200_000, 1_600_000),))
    audio = Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000)
    job = EncodeJob(Path("live"), Path("/out"), ladder, audio, 2.0, Fraction(25), content_key=KEY)
    argv = build_live_argv("ffmpeg", job, source_url="pipe:0", offset=0.1, input_options=["-i", "pipe:0"],
                           part_target=0.25)
    assert argv.count("-format_options") == 1
    assert argv[argv.index("-format_options") + 1] == (
        "encryption_scheme=cenc-aes-ctr:encryption_key=00112233445566778899aabbccddeeff:"
        "encryption_kid=0123456789abcdef0123456789abcdef:movflags=+frag_discont")
    assert "+bitexact" not in argv
    clear = build_live_argv("ffmpeg", replace(job, content_key=None), source_url="pipe:0", offset=0.1,
                            input_options=["-i", "pipe:0"])
    assert clear[clear.index("-format_options") + 1] == "movflags=+frag_discont"
