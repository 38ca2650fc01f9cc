"""Per-title on the chunked path: chunk 0 starts with the fixed table while the analysis runs beside it.

Source: 24 s 320x240 30 fps (moving test pattern, tone); segment 2 s, chunk 8 s -> 3 chunks; one rung (240p).
The asset names no ladder: per-title is the product's default on the chunked path
(ABR_AUTO_LADDER_CHUNKED, default true), where it costs no time to `playable`.
Ordering, not timing (as tests/pipeline/test_chunked_audio.py): the analysis is held until a video segment
of chunk 0 is in storage. Run beside chunk 0 it gets there; run before the encode (the single-worker
order) the hold would run out with no video uploaded. The other chunks are then encoded at the measured
capped CRF, and the fan-in accepts them: their init segments are byte-identical to chunk 0's.
"""

from __future__ import annotations

import json
import re
import threading

import pytest

from core.media.ffmpeg import find_ffmpeg
from core.media.model import Presentation
from core.services import quality, transcode
from core.services.chunked import ChunkPlan, ChunkPolicy
from core.services.transcode import AssetTranscode, ChunkRun, PipelineConfig
from tests.helpers import app_client, upload_asset

pytestmark = pytest.mark.timeout(300)
SEGMENT, CHUNK, SECONDS = 2, 8, 24
HOLD_S = 60.0


class Recording:
    """The API's storage, noting when chunk 0's first video segment is in and every plan written."""

    def __init__(self, inner, asset_id: str) -> None:
        self.inner, self.media = inner, f"media/{asset_id}/"
        self.video_uploaded = threading.Event()
        self.plans: list[ChunkPlan] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def put_file(self, key, path, *, move=False):
        self.inner.put_file(key, path, move=move)
        if re.fullmatch(rf"{self.media}h264-[^/]+/\d{{5}}\.m4s", key):
            self.video_uploaded.set()

    def put_bytes(self, key, data, *, content_type=None):
        self.inner.put_bytes(key, data, content_type=content_type)
        if key.endswith("/chunks/plan.json"):
            self.plans.append(ChunkPlan.from_json(data))


def test_chunk_0_does_not_wait_for_the_analysis_and_later_chunks_use_its_crf(tmp_path, clips, monkeypatch):
    source = clips("per-title-chunked", duration=SECONDS, width=320, height=240, fps=30)
    held: list[bool] = []
    real = quality.analysis.analyse

    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as client:
        created = upload_asset(client, source, {"segment_duration": SEGMENT})  # no ladder: the default
        ctx = client.app.state.ctx
        storage = Recording(ctx.storage, created["id"])

        def analyse_after_chunk_0(*args, **kwargs):
            held.append(storage.video_uploaded.wait(HOLD_S))
            assert kwargs["nice"] == transcode.ANALYSIS_NICE  # beside chunk 0, it yields the cores
            return real(*args, **kwargs)

        monkeypatch.setattr(quality.analysis, "analyse", analyse_after_chunk_0)
        sent: list[str] = []
        config = PipelineConfig(ffmpeg=find_ffmpeg(), work_dir=tmp_path / "work", auto_ladder_chunked=True,
                                chunking=ChunkPolicy(chunk_duration=CHUNK, min_source=2 * CHUNK,
                                                     send=lambda asset_id, piece: sent.append(piece)))
        AssetTranscode(ctx.engine, storage, config, created["id"]).run()
        assert held == [True], "chunk 0 uploaded no segment while the analysis was held"
        assert sent == ["f0c1", "f0c2"]
        first, prepared = storage.plans[0], storage.plans[-1]
        assert [r.crf for r in first.ladders[0].renditions] == [None]  # chunk 0: the fixed table
        (rung,) = prepared.ladders[0].renditions
        fixed = first.ladders[0].renditions[0]
        # Same rung, same cap; a CRF instead of the table's bitrate, expected to spend less.
        assert (rung.id, rung.width, rung.max_bitrate, rung.buffer_size) == (
            fixed.id, fixed.width, fixed.max_bitrate, fixed.buffer_size)
        assert rung.crf is not None and rung.bitrate <= fixed.bitrate, rung
        for piece in sent:  # they read the prepared plan; the fan-in checks every init against chunk 0's
            ChunkRun(ctx.engine, ctx.storage, config, created["id"], piece).run()

        asset = client.get(f"/v1/assets/{created['id']}").json()
        assert asset["status"] == "ready", asset["error"]
        (video,) = [r for r in asset["renditions"] if r["codec"] == "h264"]
        assert video["bitrate"] == rung.bitrate and video["quality"]["samples"] == 2
        presentation = Presentation.from_dict(json.loads(ctx.storage.get_bytes(
            f"media/{created['id']}/presentation.json")))
        (track,) = presentation.video_tracks
        assert track.complete and len(track.segments) == SECONDS // SEGMENT


def test_per_title_is_the_products_default_on_the_chunked_path_only(tmp_path):
    """The worker's config from default settings: chunked sources per-title, others the fixed table."""
    from types import SimpleNamespace

    from core.config import Settings
    from workers.config import pipeline_config

    config = pipeline_config(SimpleNamespace(ffmpeg="ffmpeg", settings=Settings(data_dir=tmp_path)))
    assert config.auto_ladder_chunked is True and config.auto_ladder_min_duration is None
    assert config.chunking is not None  # the default chunks long sources
    off = pipeline_config(SimpleNamespace(ffmpeg="ffmpeg", settings=Settings(data_dir=tmp_path,
                                                                             auto_ladder_chunked=False)))
    assert off.auto_ladder_chunked is False
    assert PipelineConfig(ffmpeg="ffmpeg", work_dir=tmp_path).auto_ladder_chunked is False  # a bare config: fixed
