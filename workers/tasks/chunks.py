"""`assets.encode_chunk`: encode one piece of a chunked asset (core/services/chunked.py), on any transcode worker."""

from __future__ import annotations

from celery import shared_task

from core.queues import TASK_ENCODE_CHUNK
from core.services.transcode import ChunkRun
from workers.config import pipeline_config
from workers.context import get_worker_context


@shared_task(name=TASK_ENCODE_CHUNK, acks_late=True)
def encode_chunk(asset_id: str, piece: str) -> None:
    ctx = get_worker_context()
    ChunkRun(ctx.engine, ctx.storage, pipeline_config(ctx), asset_id, piece).run()
