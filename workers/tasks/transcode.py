"""`assets.transcode`: run the VOD pipeline for one asset id; `assets.add_audio_track`: add a dub."""

from __future__ import annotations

from celery import shared_task

from core.queues import TASK_ADD_AUDIO, TASK_TRANSCODE
from core.services.audio_tracks import encode_added_audio
from core.services.transcode import AssetTranscode
from workers.config import pipeline_config
from workers.context import get_worker_context


@shared_task(name=TASK_TRANSCODE, acks_late=True)
def transcode(asset_id: str) -> None:
    ctx = get_worker_context()
    AssetTranscode(ctx.engine, ctx.storage, pipeline_config(ctx), asset_id).run()


@shared_task(name=TASK_ADD_AUDIO, acks_late=True)
def add_audio_track(asset_id: str, plan: dict) -> None:
    """Encode an audio track added to a ready asset (a dub) and publish it."""
    ctx = get_worker_context()
    config = pipeline_config(ctx)
    encode_added_audio(ctx.engine, ctx.storage, ffmpeg=config.ffmpeg, work_dir=config.work_dir, asset_id=asset_id,
                       plan=plan, timeout=config.ffmpeg_timeout, key_master=config.key_master)
