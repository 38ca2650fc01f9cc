"""The finished live stream as a VOD asset, without re-encoding.

The recorded segments are copied under the new asset's media prefix (the
origin serves an asset only from its own prefix, and deleting the live
stream must not take the recording with it) and described by a complete
`presentation.json`: the recording plays like any upload. The media timeline
is continuous across reconnects (core/live/encode.py), so one period holds
the whole session.

An encrypted stream's recording is an encrypted asset with the same key (the
segments are copied, not re-encrypted): `store_key(asset id)` stores the
stream's key for the new asset before it is ready, its playback id keeps the
`encrypted` policy, and its presentation the key id.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.engine import Engine
from sqlmodel import Session

from collections.abc import Callable

from core import layout
from core.db.models import Asset, PlaybackId, Rendition, utcnow
from core.db.models_live import LiveStream
from core.live.publisher import LivePublisher
from core.storage import Storage

log = logging.getLogger(__name__)


def create_recording(engine: Engine, storage: Storage, stream_id: str, publisher: LivePublisher, *,
                     store_key: Callable[[str], None] | None = None) -> str:
    presentation = publisher.recorded_presentation()
    with Session(engine, expire_on_commit=False) as s:
        stream = s.get(LiveStream, stream_id)
        policy = "public"
        if stream is not None and stream.playback_id:
            pid = s.get(PlaybackId, stream.playback_id)
            policy = pid.policy if pid else policy
        settings = dict(stream.settings) if stream else {}
        asset = Asset(status="processing", duration=presentation.duration, source={"live_stream_id": stream_id},
                      settings={"codecs": settings.get("codecs", ["h264"]),
                                "segment_duration": presentation.segment_duration,
                                "live_stream_id": stream_id,
                                **({"playback_policy": "encrypted"} if presentation.protection else {})},
                      passthrough=stream.passthrough if stream else None)
        s.add(asset)
        s.commit()
    if presentation.protection is not None:
        if store_key is None:
            raise ValueError("an encrypted stream's recording needs its key stored for the new asset")
        store_key(asset.id)
    src, dst = layout.media_prefix(stream_id), layout.media_prefix(asset.id)
    for track in presentation.tracks:
        _copy(storage, f"{src}/{track.init_uri}", f"{dst}/{track.init_uri}")
        for segment in track.segments:
            uri = track.segment_uri(segment.number)
            _copy(storage, f"{src}/{uri}", f"{dst}/{uri}")
    data = json.dumps(presentation.to_dict(), separators=(",", ":")).encode()
    storage.put_bytes(layout.presentation_key(asset.id), data, content_type="application/json")
    with Session(engine) as s:
        row = s.get(Asset, asset.id)
        row.status, row.playable, row.progress, row.updated_at = "ready", True, 100.0, utcnow()
        s.add(row)
        for track in presentation.tracks:
            r = track.rendition
            s.add(Rendition(asset_id=asset.id, name=r.id, codec=r.codec, width=r.width, height=r.height,
                            bitrate=r.bitrate, frame_rate=float(r.frame_rate) if r.frame_rate else None,
                            status="ready"))
        s.add(PlaybackId(asset_id=asset.id, policy=policy))
        s.commit()
    log.info("live %s recorded as asset %s (%.1f s)", stream_id, asset.id, presentation.duration)
    return asset.id


def _copy(storage: Storage, src: str, dst: str) -> None:
    local = storage.local_path(src)
    if local is not None:
        storage.put_file(dst, local)  # copies; the live stream keeps its own files
    else:
        storage.put_bytes(dst, storage.get_bytes(src))
