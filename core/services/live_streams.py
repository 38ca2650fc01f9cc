"""Live streams: create, read, list, stop, delete, and the RTMP ingest callbacks. Stateless; `session` first."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import Session, func, select

from core import layout
from core.db.models import PlaybackId, utcnow
from core.db.models_live import LiveStream
from core.errors import Conflict, Forbidden, NotFound, Unprocessable
from core.live import state
from core.live.encode import SCHEMES
from core.live.pull_guard import PullPolicy, check_source
from core.services.assets import FramePluginSpec, LadderRung, check_frame_plugins
from core.storage import Storage

log = logging.getLogger(__name__)
STALE_WORKER = timedelta(seconds=20)


class LiveStreamCreate(BaseModel):
    """The body of POST /v1/live-streams (see API.md)."""

    model_config = ConfigDict(extra="forbid")
    source_url: str | None = Field(default=None, max_length=2000)
    codecs: list[Literal["h264", "h265", "vp8"]] = Field(default_factory=lambda: ["h264"], min_length=1, max_length=1)
    ladder: list[LadderRung] | None = Field(default=None, min_length=1, max_length=6)
    segment_duration: float = Field(default=2.0, ge=1.0, le=6.0)
    dvr_window: float | None = Field(default=None, ge=6, le=86400)
    record: bool = True
    # encrypted: signed, and the CMAF segments CENC-encrypted under the stream's one key (as for assets)
    playback_policy: Literal["public", "signed", "encrypted"] = "public"
    passthrough: str | None = Field(default=None, max_length=2000)
    # SRT push only: the encoder must use this passphrase (AES; SRT takes 10 to 79 characters).
    srt_passphrase: str | None = Field(default=None, min_length=10, max_length=79)
    frame_plugins: list[FramePluginSpec] = Field(default_factory=list, max_length=8)
    # "low": LL-HLS / LL-DASH from parts of `part_target` seconds inside 1-2 s segments (README, Live).
    latency_mode: Literal["standard", "low"] = "standard"
    part_target: float = Field(default=0.25, ge=0.2, le=0.5)

    @field_validator("frame_plugins")
    @classmethod
    def _plugins(cls, v: list[FramePluginSpec]) -> list[FramePluginSpec]:
        return check_frame_plugins(v)

    @model_validator(mode="after")
    def _encryptable(self) -> LiveStreamCreate:
        if self.playback_policy == "encrypted" and self.codecs[0] == "vp8":
            raise ValueError("playback_policy encrypted needs a CMAF codec (h264, h265): VP8 is WebM")
        return self

    @model_validator(mode="after")
    def _low_latency(self) -> LiveStreamCreate:
        if self.latency_mode == "low":
            if self.segment_duration > 2.0:
                raise ValueError("latency_mode low needs segment_duration of 1 to 2 seconds")
            if self.codecs[0] == "vp8":
                raise ValueError("latency_mode low needs an fMP4 codec (h264 or h265), not vp8")
            if self.segment_duration < 3 * self.part_target:
                raise ValueError("latency_mode low needs segment_duration of at least 3 part_target")
        return self

    @field_validator("source_url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme.lower() not in SCHEMES or not parts.hostname:
            raise ValueError(f"source_url must be an rtsp://, rtmp://, srt:// or http(s):// (HLS) URL, got {v!r}")
        return v


def new_stream_key() -> str:
    return "sk_" + secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")


def create_live_stream(session: Session, body: LiveStreamCreate, *, default_dvr_window: float,
                       pull_policy: PullPolicy | None = None,
                       make_key: Callable[[str], object] | None = None) -> LiveStream:
    """A push stream starts `idle` (waiting for a publisher); a pull stream `connecting` (enqueue it after commit).

    A pull source's host is checked now (403 `address_not_allowed`, 422 when it
    does not resolve) and again by the worker before every open. An encrypted
    stream's content key is made here, before the row is committed, by
    `make_key(stream id)` (core/services/content_keys.py): every worker run of
    the stream, a takeover's included, only ever loads it, so one key covers the
    whole stream and its recording.
    """
    if body.source_url:
        check_source(body.source_url, pull_policy or PullPolicy())
    playback = PlaybackId(asset_id=None, policy=body.playback_policy)
    session.add(playback)
    settings = body.model_dump(exclude={"source_url", "passthrough", "playback_policy"})
    settings["dvr_window"] = body.dvr_window or default_dvr_window
    if body.ladder:
        settings["ladder"] = [r.model_dump() for r in body.ladder]
    stream = LiveStream(stream_key=new_stream_key(), source_url=body.source_url, settings=settings,
                        status=state.CONNECTING if body.source_url else state.IDLE,
                        playback_id=playback.id, passthrough=body.passthrough)
    if body.playback_policy == "encrypted":
        if make_key is None:
            raise Unprocessable("encrypted playback is not configured on this server (no key master)")
        make_key(stream.id)
    session.add(stream)
    session.commit()
    session.refresh(stream)
    return stream


def get_live_stream(session: Session, stream_id: str) -> LiveStream:
    stream = session.get(LiveStream, stream_id)
    if stream is None:
        raise NotFound(f"no live stream {stream_id}")
    return stream


def list_live_streams(session: Session, *, limit: int, offset: int) -> tuple[list[LiveStream], int]:
    rows = session.exec(select(LiveStream).order_by(LiveStream.created_at.desc(), LiveStream.id)
                        .offset(offset).limit(limit)).all()
    return list(rows), int(session.exec(select(func.count()).select_from(LiveStream)).one())


def playback_ids_of(session: Session, stream: LiveStream) -> list[PlaybackId]:
    if not stream.playback_id:
        return []
    row = session.get(PlaybackId, stream.playback_id)
    return [row] if row else []


def stop_live_stream(session: Session, stream_id: str) -> LiveStream:
    """End the stream: at once when no worker runs it, else ask the worker (it finishes and records)."""
    stream = get_live_stream(session, stream_id)
    if stream.status in state.TERMINAL:
        return stream
    if stream.status == state.IDLE or not _worker_alive(stream):
        stream.status, stream.ended_at = state.ENDED, utcnow()
    else:
        stream.stop_requested = True
    stream.updated_at = utcnow()
    session.add(stream)
    session.commit()
    session.refresh(stream)
    return stream


def delete_live_stream(session: Session, storage: Storage, stream_id: str) -> None:
    """Remove the row (a running worker sees it gone and stops), its playback id and its media.

    The recording, if any, is an asset of its own and stays.
    """
    stream = get_live_stream(session, stream_id)
    playback_id = stream.playback_id
    session.delete(stream)
    if playback_id and (row := session.get(PlaybackId, playback_id)) is not None:
        session.delete(row)
    session.commit()
    storage.delete_prefix(layout.media_prefix(stream_id))
    storage.delete_prefix(layout.keys_prefix(stream_id))  # an encrypted stream's key (its recording has its own)


def _worker_alive(stream: LiveStream) -> bool:
    beat = stream.heartbeat_at
    if beat is None or not stream.worker_id:
        return stream.status == state.CONNECTING and utcnow() - _aware(stream.updated_at) < STALE_WORKER
    return utcnow() - _aware(beat) < STALE_WORKER


def _aware(value):
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- RTMP ingest callbacks (nginx on_publish / on_publish_done) -------------------------------


def check_publish(session: Session, *, app: str, stream_key: str) -> LiveStream:
    """The stream a publisher may push to, or NotFound/Forbidden/Conflict; changes nothing.

    The SRT handshake asks this first: its encryption is settled after our
    callback, so a caller with a wrong passphrase must not start anything.
    """
    if app != "live":
        raise NotFound(f"no RTMP application {app!r}; publish to rtmp://host/live/<stream_key>")
    stream = session.exec(select(LiveStream).where(LiveStream.stream_key == stream_key)).first()
    if stream is None:
        raise NotFound("unknown stream key")
    if stream.source_url:
        raise Forbidden("this live stream pulls its source; it takes no publisher")
    if stream.status in state.TERMINAL:
        raise Forbidden(f"this live stream has {stream.status}; create a new one")
    if stream.stop_requested:
        raise Forbidden("this live stream is being stopped")
    if stream.status == state.ACTIVE and _worker_alive(stream):
        raise Conflict("this stream key is already publishing")
    return stream


def on_publish(session: Session, *, app: str, stream_key: str, addr: str,
               protocol: str = "rtmp") -> tuple[LiveStream, bool]:
    """Let a publisher in (return (stream, whether to enqueue a worker)) or refuse it (NotFound, Forbidden, Conflict)."""
    stream = check_publish(session, app=app, stream_key=stream_key)
    enqueue = False
    if stream.status == state.IDLE:
        stream.status, enqueue = state.CONNECTING, True
    elif not _worker_alive(stream):
        enqueue = True  # reconnecting/connecting, but the worker that owned it is gone
    stream.updated_at = utcnow()
    session.add(stream)
    session.commit()
    session.refresh(stream)
    log.info("%s publish to live %s from %s (%s)", protocol, stream.id, addr, "new worker" if enqueue else "continues")
    return stream, enqueue


def publisher_may_continue(session: Session, *, stream_key: str) -> bool:
    """nginx-rtmp's `on_update` for a publisher: False once its stream is stopping, over or deleted.

    nginx then disconnects it, so `stop` (and delete) also ends the push at
    the source instead of leaving an encoder sending into a refused stream.
    """
    stream = session.exec(select(LiveStream).where(LiveStream.stream_key == stream_key)).first()
    return stream is not None and not stream.stop_requested and stream.status not in state.TERMINAL


def on_publish_done(session: Session, *, stream_key: str, addr: str) -> None:
    """The publisher left; the worker sees its input end and reconnects or ends (nothing to change here)."""
    stream = session.exec(select(LiveStream).where(LiveStream.stream_key == stream_key)).first()
    if stream is not None:
        log.info("rtmp publisher of live %s (%s) left", stream.id, addr)
