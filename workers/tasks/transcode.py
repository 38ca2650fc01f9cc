"""`assets.transcode`: run the VOD pipeline for one asset id."""

from __future__ import annotations

from celery import shared_task

from core.queues import TASK_TRANSCODE
from core.services.transcode import AssetTranscode, PipelineConfig
from workers.context import get_worker_context


@shared_task(name=TASK_TRANSCODE, acks_late=True)
def transcode(asset_id: str) -> None:
    ctx = get_worker_context()
    s = ctx.settings
    config = PipelineConfig(ffmpeg=ctx.ffmpeg, work_dir=s.data_dir / "work", ffmpeg_timeout=s.ffmpeg_timeout,
                            max_source_bytes=s.max_upload_bytes, import_timeout=s.import_timeout,
                            allow_private_urls=s.allow_private_urls)
    AssetTranscode(ctx.engine, ctx.storage, config, asset_id).run()
