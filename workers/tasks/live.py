"""`live_streams.run`: the long-running job of one live stream (core/live/session.py)."""

from __future__ import annotations

from celery import shared_task

from core import events
from core.live.pull_guard import PullPolicy
from core.live.session import LiveConfig, LiveRun
from core.queues import TASK_LIVE
from core.services.content_keys import key_master, load_content_key, store_content_key
from core.services.images import storyboard_of_recording
from core.services.overlays import resolver
from workers.config import lease_policy
from workers.context import get_worker_context


@shared_task(name=TASK_LIVE, acks_late=True)
def run_live_stream(stream_id: str) -> None:
    ctx = get_worker_context()
    s = ctx.settings
    config = LiveConfig(ffmpeg=ctx.ffmpeg, work_dir=s.data_dir / "work",
                        rtmp_pull_base=s.rtmp_pull_url or f"rtmp://127.0.0.1:{s.rtmp_port}/live",
                        srt_pull_base=(s.srt_pull_url or f"http://127.0.0.1:{s.srt_relay_port}") if s.srt_port else None,
                        reconnect_grace=s.live_reconnect_grace,
                        after_recording=lambda asset_id: storyboard_of_recording(
                            ctx.storage, ffmpeg=ctx.ffmpeg, work_dir=s.data_dir / "work", asset_id=asset_id,
                            content_key=lambda: load_content_key(ctx.storage, key_master(s), asset_id)),
                        pull_policy=PullPolicy.from_setting(s.live_pull_allow_networks),
                        resolver=lambda work: resolver(ctx.storage, work, allow_private=s.allow_private_urls),
                        lease=lease_policy(s),
                        content_key=lambda sid: load_content_key(ctx.storage, key_master(s), sid),
                        store_key=lambda owner, key: store_content_key(ctx.storage, key_master(s), owner, key))
    LiveRun(ctx.engine, ctx.storage, config, stream_id, events=events.emit).run()
