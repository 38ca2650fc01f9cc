"""`assets.encode_chunk`: encode one piece of a chunked asset (core/services/chunked.py), on any transcode worker."""

from __future__ import annotations

from celery import current_app, shared_task

from core.queues import PRIORITY_CHUNK, QUEUE_TRANSCODE, TASK_ENCODE_CHUNK
from core.services.chunked import ChunkPolicy, ChunkRun
from workers.context import get_worker_context


def send_chunk(asset_id: str, piece: str) -> None:
    # Above new whole-asset jobs (PRIORITY_TRANSCODE): started assets finish first.
    current_app.send_task(TASK_ENCODE_CHUNK, args=[asset_id, piece], queue=QUEUE_TRANSCODE, priority=PRIORITY_CHUNK)


def chunk_policy(settings) -> ChunkPolicy:
    return ChunkPolicy(chunk_duration=settings.chunk_duration, min_source=settings.resolved_chunk_min_source,
                       send=send_chunk)


@shared_task(name=TASK_ENCODE_CHUNK, acks_late=True)
def encode_chunk(asset_id: str, piece: str) -> None:
    from workers.tasks.transcode import pipeline_config

    ctx = get_worker_context()
    ChunkRun(ctx.engine, ctx.storage, pipeline_config(ctx), asset_id, piece).run()
