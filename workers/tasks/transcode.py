"""`assets.transcode`: run the VOD pipeline for one asset id."""

from __future__ import annotations

from celery import shared_task

from core.queues import TASK_TRANSCODE
from core.services.assets import MediaLimits
from core.services.transcode import AssetTranscode, PipelineConfig
from workers.context import WorkerContext, get_worker_context
from workers.reconciler import job_policy


def pipeline_config(ctx: WorkerContext) -> PipelineConfig:
    from workers.tasks.chunks import chunk_policy

    s = ctx.settings
    return PipelineConfig(ffmpeg=ctx.ffmpeg, work_dir=s.data_dir / "work", ffmpeg_timeout=s.ffmpeg_timeout,
                          max_source_bytes=s.max_upload_bytes, import_timeout=s.import_timeout,
                          allow_private_urls=s.allow_private_urls, jobs=job_policy(s),
                          limits=MediaLimits.from_settings(s), chunking=chunk_policy(s))


@shared_task(name=TASK_TRANSCODE, acks_late=True)
def transcode(asset_id: str) -> None:
    ctx = get_worker_context()
    AssetTranscode(ctx.engine, ctx.storage, pipeline_config(ctx), asset_id).run()
