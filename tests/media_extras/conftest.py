"""One real asset for the module: API upload → real worker → ready, with the MP4 download on.

6 s of 640x360 testsrc2 at 30 fps with a sine, 2 s segments (a 360p and a
240p H.264 rung + AAC): small enough to encode in a few seconds, long enough
that frames at different times differ and the storyboard has several tiles.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlmodel import Session

from core.db.models import PlaybackId, new_id
from core.media.model import Presentation
from tests.helpers import app_client
from tests.media_fixtures import make_clip
from tests.pipeline.conftest import Pipeline
from tests.workers.worker_proc import running_worker


@dataclass
class ReadyAsset:
    pipeline: Pipeline
    asset: dict
    public_id: str
    signed_id: str

    @property
    def id(self) -> str:
        return self.asset["id"]

    @property
    def client(self):
        return self.pipeline.client

    def presentation(self) -> Presentation:
        return self.pipeline.presentation(self.id)


@pytest.fixture(scope="package")
def ready(tmp_path_factory) -> Iterator[ReadyAsset]:
    root = tmp_path_factory.mktemp("media-extras")
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(root / "data")}
    clip = make_clip(root / "clip.mp4", duration=6, width=640, height=360, fps=30)
    log = root / "worker.log"
    with app_client(env) as client, running_worker(env, log_path=log):
        ctx = client.app.state.ctx
        pipeline = Pipeline(client=client, storage=ctx.storage, log=log)
        created = pipeline.upload(clip, {"segment_duration": 2, "mp4_support": True})
        asset = pipeline.wait(created["id"], timeout=120)
        assert asset["status"] == "ready", asset["error"]
        with Session(ctx.engine) as session:  # a second, signed playback id on the same asset
            signed = PlaybackId(id=new_id("", 24), asset_id=asset["id"], policy="signed")
            session.add(signed)
            session.commit()
            signed_id = signed.id
        yield ReadyAsset(pipeline, asset, asset["playback_ids"][0]["id"], signed_id)
