"""`assets.transcode`: run the VOD pipeline for one asset id."""

from __future__ import annotations

from celery import shared_task

from core.queues import TASK_TRANSCODE
from core.services.transcode import AssetTranscode
from workers.config import pipeline_config
from workers.context import get_worker_context


@shared_task(name=TASK_TRANSCODE, acks_late=True)
def transcode(asset_id: str) -> None:
    ctx = get_worker_context()
    AssetTranscode(ctx.engine, ctx.storage, pipeline_config(ctx), asset_id).run()
