"""An audio-only asset's images: a 404 that says it has no video, not "not ready yet" (it never will be)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.media.model import Presentation
from tests.core.media.manifests.conftest import build_presentation
from tests.helpers import app_client
from tests.origin.fabricate import fabricate


def _audio_only(*, complete: bool) -> Presentation:
    audio = next(t for t in build_presentation().tracks if t.rendition.is_audio)
    return Presentation(segment_duration=4.0, complete=complete, tracks=[replace(audio, complete=complete)])


@pytest.mark.parametrize("path", ["thumbnail.jpg", "thumbnail.webp", "storyboard.vtt", "animated.webp"])
def test_audio_only_asset_says_it_has_no_video(tmp_path, path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path)}) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage, presentation=_audio_only(complete=True))
        r = client.get(f"/play/{made.public_id}/{path}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "no_video"
    assert "no video" in r.json()["error"]["message"] and "not ready" not in r.json()["error"]["message"]


def test_audio_still_encoding_is_not_ready_yet(tmp_path):
    # Tracks appear as their first segments land: with the audio unfinished, video may still come.
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path)}) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage, presentation=_audio_only(complete=False))
        r = client.get(f"/play/{made.public_id}/thumbnail.jpg")
    assert r.status_code == 404 and "not ready yet" in r.json()["error"]["message"]
