"""Audio tracks added to a ready asset after the fact (a dub): `POST /v1/assets/{id}/audio-tracks`.

The API probes and stores the file and records the rendition (`add_audio_track`);
a worker encodes it as one more AAC track on the asset's timeline and appends it
to `presentation.json` (`encode_added_audio`). The existing segments are never
touched, so every URL a CDN holds stays valid; only the manifests change.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, replace
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import layout
from core.db.models import Asset, Rendition
from core.errors import Conflict, FFmpegError, NotFound, Unprocessable
from core.media.audio_tracks import bcp47
from core.media.encode import EncodeJob
from core.media.family import encode_family
from core.media.ladder import plan_audio
from core.media.model import AUDIO_ROLES, Presentation, audio_rendition_id, is_audio_rendition_id
from core.media.model import Rendition as PlannedRendition
from core.media.probe import MediaInfo
from core.services.content_keys import load_content_key
from core.storage import Storage

log = logging.getLogger(__name__)
MAX_AUDIO_TRACKS = 16


def add_audio_track(session: Session, storage: Storage, *, asset_id: str, source: Path, info: MediaInfo,
                    language: str, name: str | None, role: str | None) -> tuple[Rendition, dict]:
    """Record the track and store its file; returns the row and the plan the worker task is sent."""
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound(f"no asset {asset_id}")
    if asset.status != "ready":
        raise Conflict(f"the asset is {asset.status}; add audio tracks once it is ready")
    if info.audio is None:
        raise Unprocessable("the file has no audio stream")
    tag = bcp47(language)
    if not tag:
        raise Unprocessable(f"language must be a BCP 47 tag such as en or pt-BR, got {language[:20]!r}")
    role = role or "dub"
    if role not in AUDIO_ROLES:
        raise Unprocessable(f"role must be one of {', '.join(AUDIO_ROLES)}")
    rows = session.exec(select(Rendition).where(Rendition.asset_id == asset_id)).all()
    audio_ids = {r.name for r in rows if is_audio_rendition_id(r.name)}
    if not any(not is_audio_rendition_id(r.name) for r in rows) and not audio_ids:
        raise Unprocessable("the asset has no media to add audio to")
    if len(audio_ids) >= MAX_AUDIO_TRACKS:
        raise Conflict(f"the asset already has {len(audio_ids)} audio tracks (the limit)")
    position = next(i for i in range(MAX_AUDIO_TRACKS + 1) if audio_rendition_id(i) not in audio_ids)
    planned = replace(plan_audio(info.audio.channels, info.audio.sample_rate), id=audio_rendition_id(position),
                      language=tag, name=(name or "").strip()[:100], role=role, source_stream=info.audio.position)
    row = Rendition(asset_id=asset_id, name=planned.id, codec=planned.codec, bitrate=planned.bitrate,
                    status="pending")
    storage.put_file(layout.added_audio_source_key(asset_id, planned.id), source, move=True)
    session.add(row)
    session.commit()
    session.refresh(row)
    plan = asdict(planned)
    plan.pop("frame_rate")
    return row, plan


def encode_added_audio(engine: Engine, storage: Storage, *, ffmpeg: str, work_dir: Path, asset_id: str,
                       plan: dict, timeout: float | None = None,
                       key_master: Callable[[], bytes] | None = None) -> None:
    """The worker side: encode the stored file as the planned track and publish it.

    An encrypted asset's new track is encrypted under the asset's key (`key_master` unwraps it):
    its manifests name that key for every track, so a clear track would not play.
    """
    planned = PlannedRendition(**plan)
    with Session(engine) as s:
        asset = s.get(Asset, asset_id)
        row = s.exec(select(Rendition).where(Rendition.asset_id == asset_id,
                                             Rendition.name == planned.id)).first()
        if asset is None or row is None:
            log.info("asset %s: audio track %s no longer wanted", asset_id, planned.id)
            return
        row.status = "encoding"
        s.add(row)
        s.commit()
    work = work_dir / f"{asset_id}.{planned.id}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    status = "errored"
    try:
        source = work / "source"
        storage.download_to(layout.added_audio_source_key(asset_id, planned.id), source)
        presentation = _presentation(storage, asset_id)
        if any(t.id == planned.id for t in presentation.tracks):
            status = "ready"  # an earlier attempt published it
            return
        duration = presentation.duration
        out = work / "out"
        content_key = None
        if presentation.protection is not None:
            if key_master is None:
                raise Unprocessable("this asset is encrypted and this worker has no key master")
            content_key = load_content_key(storage, key_master(), asset_id)
        job = EncodeJob(source=source, out_dir=out, ladder=None, audio=planned,
                        segment_duration=presentation.segment_duration, frame_rate=None, pad_audio_to=duration,
                        content_key=content_key)
        prefix = layout.media_prefix(asset_id)

        def on_segment(track, init_path, segment_path) -> None:
            # Under its own new directory: nothing refers to it until presentation.json does.
            if init_path is not None:
                storage.put_file(f"{prefix}/{track.init_uri}", init_path)
            storage.put_file(f"{prefix}/{track.segment_uri(track.segments[-1].number)}", segment_path, move=True)

        (track,) = encode_family(ffmpeg, job, duration=duration, on_progress=None, on_segment=on_segment,
                                 timeout=timeout)
        presentation = _presentation(storage, asset_id)  # re-read: text tracks may have changed meanwhile
        presentation.tracks.append(track)
        storage.put_bytes(layout.presentation_key(asset_id),
                          json.dumps(presentation.to_dict(), separators=(",", ":")).encode(),
                          content_type="application/json")
        status = "ready"
        log.info("asset %s: audio track %s (%s) published", asset_id, planned.id, planned.language)
    except FFmpegError as exc:
        log.warning("asset %s: audio track %s failed: %s", asset_id, planned.id, exc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with Session(engine) as s:
            row = s.exec(select(Rendition).where(Rendition.asset_id == asset_id,
                                                 Rendition.name == planned.id)).first()
            if row is not None:
                row.status = status
                s.add(row)
                s.commit()


def _presentation(storage: Storage, asset_id: str) -> Presentation:
    key = layout.presentation_key(asset_id)
    if not storage.exists(key):
        raise NotFound(f"asset {asset_id} has no published media")
    return Presentation.from_dict(json.loads(storage.get_bytes(key)))
