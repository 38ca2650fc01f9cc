"""What the tasks and the reconciler build from settings: the pipeline's config and its policies."""

from __future__ import annotations

import functools

from celery import current_app

from core.live.takeover import LeasePolicy
from core.queues import PRIORITY_CHUNK, QUEUE_TRANSCODE, TASK_ENCODE_CHUNK
from core.services.assets import MediaLimits
from core.services.chunked import ChunkPolicy
from core.services.content_keys import key_master
from core.services.jobs import JobPolicy
from core.services.transcode import PipelineConfig
from workers.context import WorkerContext


def job_policy(settings) -> JobPolicy:
    return JobPolicy(stale_after=settings.job_stale_after, max_attempts=settings.job_max_attempts,
                     resend_queued_after=settings.job_resend_after,
                     heartbeat_interval=max(1.0, min(10.0, settings.job_stale_after / 4)))


def send_chunk(asset_id: str, piece: str) -> None:
    # Above new whole-asset jobs (PRIORITY_TRANSCODE): started assets finish first.
    current_app.send_task(TASK_ENCODE_CHUNK, args=[asset_id, piece], queue=QUEUE_TRANSCODE, priority=PRIORITY_CHUNK)


def chunk_policy(settings) -> ChunkPolicy:
    return ChunkPolicy(chunk_duration=settings.chunk_duration, min_source=settings.resolved_chunk_min_source,
                       send=send_chunk)


def pipeline_config(ctx: WorkerContext) -> PipelineConfig:
    s = ctx.settings
    return PipelineConfig(ffmpeg=ctx.ffmpeg, work_dir=s.data_dir / "work", ffmpeg_timeout=s.ffmpeg_timeout,
                          max_source_bytes=s.max_upload_bytes, import_timeout=s.import_timeout,
                          allow_private_urls=s.allow_private_urls, jobs=job_policy(s),
                          limits=MediaLimits.from_settings(s), chunking=chunk_policy(s),
                          key_master=functools.partial(key_master, s),
                          auto_ladder_min_duration=s.auto_ladder_min_duration,
                          auto_ladder_chunked=s.auto_ladder_chunked,
                          first_segment_duration=s.first_segment_duration or None)


def lease_policy(settings) -> LeasePolicy:
    """How live streams are owned and taken over when their worker dies (core/live/takeover.py)."""
    return LeasePolicy(heartbeat_interval=settings.live_heartbeat_interval,
                       takeover_after=max(settings.live_takeover_after, 2 * settings.live_heartbeat_interval),
                       max_takeovers=settings.live_max_takeovers, takeover_window=settings.live_takeover_window)
