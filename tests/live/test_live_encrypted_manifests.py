"""An encrypted live stream's manifests: the VOD key tags in every live media playlist (LL and delta
updates included) and ContentProtection in the live MPD, from the key id in live.json only."""

from __future__ import annotations

import base64
import json

from core.media.live_model import LivePresentation
from core.media.manifests.live import render_live_media_playlist, render_live_mpd
from core.media.model import Protection
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.live.test_ll_hls_manifest import _live

KID = "0123456789abcdef0123456789abcdef"
KID_UUID = "01234567-89ab-cdef-0123-456789abcdef"
KEY_TAGS = (
    '#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="data:text/plain;base64,'
    + base64.b64encode(bytes.fromhex(KID)).decode() + '",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"\n'
    '#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI="../keys/identity?token=abc",KEYFORMAT="identity",KEYFORMATVERSIONS="1"\n'
)


def _encrypted(**kw) -> LivePresentation:
    live = _live(**kw)
    live.presentation.protection = Protection(default_kid=KID_UUID)
    return LivePresentation.from_dict(json.loads(json.dumps(live.to_dict())))  # what live.json keeps


def test_ll_playlist_and_delta_update_carry_the_key_tags():
    live = _encrypted(segments=8)
    full = render_live_media_playlist(live, "360p", query="token=abc")
    assert '#EXT-X-INDEPENDENT-SEGMENTS\n' + KEY_TAGS + '#EXT-X-MAP:URI="init.mp4?token=abc"\n' in full
    assert "#EXT-X-PART:" in full and "#EXT-X-PRELOAD-HINT" in full
    delta = render_live_media_playlist(live, "360p", query="token=abc", skip=True)
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=" in delta and delta.index(KEY_TAGS) < delta.index("#EXT-X-SKIP")
    ended = render_live_media_playlist(_encrypted(ended=True), "360p", query="token=abc")
    assert KEY_TAGS in ended and ended.endswith("#EXT-X-ENDLIST\n")
    # A clear stream has none.
    assert "#EXT-X-KEY" not in render_live_media_playlist(_live(), "360p", query="token=abc")


def test_live_mpd_carries_content_protection():
    mpd = render_live_mpd(_encrypted(), query="token=abc", time_url="https://o.example/play/time")
    validate_mpd(mpd)
    assert 'xmlns:cenc="urn:mpeg:cenc:2013"' in mpd
    assert mpd.count(f'cenc:default_KID="{KID_UUID}"') == 1  # one video set (two rungs), no audio here
    assert 'schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"' in mpd
    assert "<dashif:Laurl>keys/clearkey?token=abc</dashif:Laurl>" in mpd
    rooted = render_live_mpd(_encrypted(), query="token=abc", playback_root="https://o.example/play/pid")
    assert "<dashif:Laurl>https://o.example/play/pid/keys/clearkey?token=abc</dashif:Laurl>" in rooted
    assert "ContentProtection" not in render_live_mpd(_live(), query="token=abc")


def test_an_encrypted_stream_gets_its_key_before_its_row_or_not_at_all(engine):
    """The key is made with the stream (every worker run only loads it); VP8 or no key master: 422, no row."""
    import pytest
    from pydantic import ValidationError
    from sqlmodel import Session, select

    from core.db.models_live import LiveStream
    from core.errors import Unprocessable
    from core.services.live_streams import LiveStreamCreate, create_live_stream

    with pytest.raises(ValidationError, match="VP8 is WebM"):
        LiveStreamCreate(playback_policy="encrypted", codecs=["vp8"])
    made: list[str] = []
    with Session(engine) as s:
        before = len(s.exec(select(LiveStream)).all())
        with pytest.raises(Unprocessable, match="no key master"):
            create_live_stream(s, LiveStreamCreate(playback_policy="encrypted"), default_dvr_window=60)
        s.rollback()
        assert len(s.exec(select(LiveStream)).all()) == before
        stream = create_live_stream(s, LiveStreamCreate(playback_policy="encrypted"), default_dvr_window=60,
                                    make_key=made.append)
        assert made == [stream.id]
        clear = create_live_stream(s, LiveStreamCreate(), default_dvr_window=60, make_key=made.append)
        assert made == [stream.id] and clear.id != stream.id  # a clear stream makes no key
