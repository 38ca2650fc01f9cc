"""The VOD pipeline for one asset: source → probe → plan → one ffmpeg per codec family → publish.

This module orchestrates; long sources are split by `core.services.chunked` (the
chunk planner and the fan-out/fan-in it calls), and a chunk task runs `ChunkRun`.

Publishing rules (what makes progressive playback safe):
- A segment is uploaded only once ffmpeg has closed it, and `presentation.json`
  (the model every manifest is rendered from) is rewritten only after the
  segment it mentions is in storage. The presentation is the commit point.
- The first family is published progressively, segment by segment, straight
  into the media prefix: the asset becomes `playable` as soon as every track of
  that family has its first segment, and no presentation is written before
  then (a master playlist of fewer tracks would be loaded once and never
  reloaded by a player). With a short first segment (H.264/H.265,
  `PipelineConfig.first_segment_duration`) that is after ~1 s of media.
- Later families are encoded into a staging prefix and published at once when
  complete, then added to the presentation.
- A run finds the presentation of an earlier, interrupted run and skips
  families that were already complete, so running the task twice is safe.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, select

from core import events, layout, metrics
from core.db.models import Asset, Job, Rendition, utcnow
from core.errors import AbrError, Cancelled, NotFound, Unprocessable
from core.media.encode import EncodeJob
from core.media.family import encode_family
from core.media.encryption import ContentKey
from core.media.ladder import STITCHABLE_CRF_CODECS
from core.media.images import StoryboardTap, codec_rank
from core.media.model import Ladder, Presentation, Protection, Track
from core.media.model import Rendition as PlannedRendition
from core.media.probe import probe
from core.media.runner import Progress
from core.services.assets import AssetSettings, MediaLimits, check_limits, plan_asset, plan_audio_renditions
from core.services.chunked import ChunkPlan, ChunkPolicy, Chunked, plan_chunked
from core.services.content_keys import ensure_content_key
from core.services.images import finish_extras, publish_storyboard
from core.services.overlays import resolver
from core.services.quality import analyse_families, full_report, record_ladders
from core.services.jobs import Heartbeat, JobPolicy, claim, latest_job
from core.services.url_import import fetch
from core.storage import Storage

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 1.0
CANCEL_POLL_S = 1.0
# The per-title analysis beside chunk 0 (chunked path): CFS weight 110 against 1024 for chunk 0's encoders,
# so the first segments (what `playable` waits for) keep the cores and the analysis takes what is left.
ANALYSIS_NICE = 10
DB_RETRY_S = 30.0  # how long a running job rides out a database restart before giving the attempt up


def _transient(exc: BaseException) -> bool:
    """A lost or refused database connection (restart, failover, a locked SQLite file): worth retrying."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def _db_retry(method):
    """Retry a short database step through a restart of the database.

    An encode that has run for an hour must not be thrown away (or marked
    errored) because PostgreSQL restarted for a few seconds. Each step is an
    idempotent write or a read, so doing it again is safe.
    """
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        deadline, delay = time.monotonic() + DB_RETRY_S, 0.2
        while True:
            try:
                return method(*args, **kwargs)
            except DBAPIError as exc:
                if not _transient(exc) or time.monotonic() >= deadline:
                    raise
                log.warning("database unavailable (%s); retrying in %.1f s", exc.__class__.__name__, delay)
                time.sleep(delay)
                delay = min(2.0, delay * 2)

    return wrapper


@dataclass(frozen=True)
class PipelineConfig:
    ffmpeg: str
    work_dir: Path
    ffmpeg_timeout: float = 6 * 3600
    max_source_bytes: int = 20 * 1024**3
    import_timeout: float = 3600
    allow_private_urls: bool = False
    jobs: JobPolicy = JobPolicy()
    limits: MediaLimits = MediaLimits()
    chunking: ChunkPolicy | None = None  # None: never split (core/services/chunked.py)
    key_master: Callable[[], bytes] | None = None  # encrypted playback: the master that wraps content keys
    auto_ladder_min_duration: float | None = None  # longer sources get a per-title ladder unless settings say otherwise
    # Sources on the chunked path get a per-title ladder unless settings name one (ABR_AUTO_LADDER_CHUNKED:
    # the product's default is True, passed by workers/config.py; False here keeps a bare config fixed).
    auto_ladder_chunked: bool = False
    # A shorter first segment (H.264/H.265, core/media/encode.py); None: every segment equal (the product's
    # default is ABR_FIRST_SEGMENT_DURATION's, passed by workers/config.py).
    first_segment_duration: float | None = None


@dataclass(frozen=True)
class Family:
    ladder: Ladder | None
    audio: PlannedRendition | None
    more_audio: tuple[PlannedRendition, ...] = ()  # the other audio tracks (languages, description)

    @property
    def rendition_ids(self) -> list[str]:
        ids = [r.id for r in self.ladder.renditions] if self.ladder else []
        return ids + ([self.audio.id] if self.audio else []) + [r.id for r in self.more_audio]


def add_in_family_order(tracks: list[Track], track: Track, order: list[str]) -> None:
    """Add `track` to a presentation's `tracks` where its family's rendition order puts it (in place).

    A progressive encode adds each track when its first segment is published, and the rungs' first
    segments come out in no set order (a rung with B-frames, or a slower preset, is later), so
    presentation.json would list the tracks differently from one encode to the next. The manifests sort
    on their own; this keeps the stored order the ladder's, as a finished family's is.
    """
    rank = {rid: i for i, rid in enumerate(order)}
    mine = rank.get(track.id, len(order))
    later = [i for i, t in enumerate(tracks) if rank.get(t.id, -1) > mine]
    if later:
        tracks.insert(later[0], track)
    else:
        tracks.append(track)


def families_for(ladders: list[Ladder], audio: PlannedRendition | None,
                 more_audio: tuple[PlannedRendition, ...] = ()) -> list[Family]:
    """Audio (every track of it) is encoded once, by the first family's process."""
    if not ladders:
        return [Family(None, audio, more_audio)]
    return [Family(ladder, audio, more_audio) if i == 0 else Family(ladder, None) for i, ladder in enumerate(ladders)]


class AssetTranscode:
    """One run of the pipeline for one asset (one Celery task execution)."""

    def __init__(self, engine: Engine, storage: Storage, config: PipelineConfig, asset_id: str) -> None:
        self.engine, self.storage, self.config, self.asset_id = engine, storage, config, asset_id
        self.work = config.work_dir / asset_id
        self._last_progress = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False
        self._started = time.monotonic()
        self._plugins: list[dict] = []

    # -- database helpers (short sessions: a job can run for hours) --------------------------------
    @_db_retry
    def _update(self, **fields) -> Asset | None:
        with Session(self.engine, expire_on_commit=False) as s:
            asset = s.get(Asset, self.asset_id)
            if asset is None:
                return None
            for k, v in fields.items():
                setattr(asset, k, v)
            asset.updated_at = utcnow()
            s.add(asset)
            s.commit()
            return asset

    def _job(self, s: Session) -> Job | None:
        return latest_job(s, self.asset_id)

    @_db_retry
    def _set_renditions(self, names: list[str], status: str) -> None:
        with Session(self.engine) as s:
            for row in s.exec(select(Rendition).where(Rendition.asset_id == self.asset_id)).all():
                if row.name in names:
                    row.status = status
                    s.add(row)
            s.commit()

    @_db_retry
    def _finish_job(self, status: str, error: str | None = None) -> None:
        if status == "succeeded":
            # Every attempt at this asset is over (a new one starts only once the last went
            # silent): temp files left by a worker killed mid-write are garbage now.
            if removed := self.storage.remove_partial_writes(layout.media_prefix(self.asset_id)):
                log.info("asset %s: removed %d partial writes of earlier attempts", self.asset_id, removed)
        with Session(self.engine) as s:
            job = self._job(s)
            if job is not None:
                job.status, job.error, job.finished_at = status, error, utcnow()
                s.add(job)
                s.commit()

    def cancelled(self) -> bool:
        """True once the asset row is gone (DELETE while processing); checked about once a second."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= CANCEL_POLL_S:
            self._last_cancel_check = now
            self._cancelled = not self._asset_exists()
        return self._cancelled

    @_db_retry
    def _asset_exists(self) -> bool:
        with Session(self.engine) as s:
            return s.get(Asset, self.asset_id) is not None

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> None:
        job = claim(self.engine, self.asset_id, self.config.jobs)
        if job is None:
            log.info("asset %s: no job to run here (finished, gone, or running elsewhere)", self.asset_id)
            return
        asset = self._start_processing()
        if asset is None:
            return
        with Heartbeat(self.engine, job.id, self.config.jobs.heartbeat_interval):
            self._run_claimed(asset)

    @_db_retry
    def _start_processing(self) -> Asset | None:
        """Mark the claimed asset processing; None if there is nothing left to do."""
        with Session(self.engine, expire_on_commit=False) as s:
            asset = s.get(Asset, self.asset_id)
            if asset is None:
                return None  # deleted: its job went with it
            if asset.status == "ready":
                # An earlier attempt died between publishing and closing its job: close it now,
                # or the reconciler would keep resending a finished job until it "gives up".
                self._finish_job("succeeded")
                return None
            asset.status, asset.error_code, asset.error_message, asset.updated_at = "processing", None, None, utcnow()
            s.add(asset)
            s.commit()
            return asset

    def _run_claimed(self, asset: Asset) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        try:
            self._pipeline(asset)
        except Cancelled:
            log.info("asset %s deleted while processing; stopped", self.asset_id)
            for prefix in layout.asset_prefixes(self.asset_id):
                self.storage.delete_prefix(prefix)  # segments uploaded after DELETE removed its files
        except AbrError as exc:
            log.warning("asset %s errored: %s", self.asset_id, exc.message)
            self._update(status="errored", error_code=exc.code, error_message=exc.message, progress_detail=None)
            events.emit(self.engine, events.ASSET_ERRORED, asset_id=self.asset_id)
            self._finish_job("failed", exc.message)
        except Exception as exc:
            if _transient(exc):
                # The database stayed away longer than DB_RETRY_S: leave the job running; its
                # heartbeat goes stale and the reconciler hands it to a worker again.
                log.warning("asset %s: database unavailable; this attempt stops and will be retried", self.asset_id)
                raise
            log.exception("asset %s: unexpected failure", self.asset_id)
            self._update(status="errored", error_code="internal",
                         error_message="an internal error stopped processing; it has been logged")
            events.emit(self.engine, events.ASSET_ERRORED, asset_id=self.asset_id)
            self._finish_job("failed", "internal error")
            raise
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def _pipeline(self, asset: Asset) -> None:
        settings = dict(asset.settings)
        input_url = settings.pop("input_url", None)
        source = self._source(asset, input_url)
        # Uploads were checked by the API before queueing; imports are checked here, from the headers first.
        info = probe(source, self.config.limits if input_url else None)
        if input_url:
            check_limits(info, self.config.limits)
        try:
            asset_settings = AssetSettings(**settings)
        except ValidationError as exc:  # e.g. a frame plugin the API host has but this worker lacks
            raise Unprocessable(f"the asset's settings cannot be used on this worker: {exc.errors()[0]['msg']}") from exc
        self._plugins = [p.model_dump() for p in asset_settings.frame_plugins]
        ladders, audio = plan_asset(info, asset_settings)
        auto = bool(ladders) and asset_settings.ladder_mode(info.duration, self.config.auto_ladder_min_duration) == "auto"
        more_audio = tuple(plan_audio_renditions(info, asset_settings)[1:])
        if input_url:
            self._record_import(info, ladders, [audio, *more_audio] if audio else [], source)
        families = families_for(ladders, audio, more_audio)
        content_key = self._content_key() if asset_settings.playback_policy == "encrypted" else None
        # Long CFR sources: chunks encoded by any worker in parallel. Not with frame plugins: a
        # plugin sees one continuous run of frames (tracking, timecodes), which chunks would cut.
        # Nor with several audio tracks or a content key: the chunk plan carries one track, no key.
        if self.config.chunking is not None and not self._plugins and not more_audio and content_key is None:
            chunked = Chunked(self)
            plan = chunked.load_plan() or plan_chunked(self.config.chunking, info, ladders, audio,
                                                       asset_settings.segment_duration, asset_settings.mp4_support,
                                                       self.config.first_segment_duration)
            if plan is not None:
                # Per-title: chunk 0 starts at once with the fixed table; the analysis runs beside it
                # (niced) and the other chunks are sent with its CRFs for the same rungs. Off the path
                # to `playable` here, so the default for chunked sources (auto_ladder_chunked).
                auto = bool(ladders) and asset_settings.ladder_mode(
                    info.duration, self.config.auto_ladder_min_duration,
                    chunked_auto=self.config.auto_ladder_chunked) == "auto"
                prepare = functools.partial(self._per_title_chunks, info, asset_settings, source) if auto else None
                chunked.start(plan, source, self.config.chunking.send, prepare=prepare)
                return
        if auto:
            ladders = self._per_title(info, asset_settings, ladders, source)
            families = families_for(ladders, audio, more_audio)
        presentation = self._existing_presentation(asset_settings.segment_duration)
        if content_key is not None:
            presentation.protection = Protection(default_kid=content_key.kid_uuid)
        done = {t.id for t in presentation.tracks if t.complete}
        # The storyboard is cut by the encode of the family images prefer (H.264 first: `source_track`).
        tapped = min((i for i, f in enumerate(families) if f.ladder is not None),
                     key=lambda i: (codec_rank(families[i].ladder.codec), i), default=None)
        for index, family in enumerate(families):
            if set(family.rendition_ids) <= done:
                continue
            tap = StoryboardTap.plan(family.ladder.renditions, info.duration, asset_settings.segment_duration) \
                if index == tapped else None
            self._encode(index, len(families), family, presentation, source, info.duration,
                         asset_settings.segment_duration, content_key, storyboard=tap)
        finish_extras(self.engine, self.storage, asset_id=self.asset_id, presentation=presentation,
                      ffmpeg=self.config.ffmpeg, work_dir=self.work, mp4_support=asset_settings.mp4_support,
                      content_key=content_key)
        presentation.complete = True
        self._write_presentation(presentation)
        if asset_settings.quality_report:
            # Before `ready`: a client that waits for ready finds every rendition's full score.
            self._update(progress_detail={"stage": "quality_report"})
            full_report(self.engine, self.storage, self.config.ffmpeg, self.asset_id, presentation, source=source,
                        work_dir=self.work / "quality", cancel=self.cancelled, timeout=self.config.ffmpeg_timeout)
        self._update(status="ready", progress=100.0, playable=True, progress_detail=None)
        events.emit(self.engine, events.ASSET_READY, asset_id=self.asset_id)
        self._finish_job("succeeded")
        metrics.observe_job("transcode", time.monotonic() - self._started)
        log.info("asset %s ready", self.asset_id)

    def _per_title(self, info, settings: AssetSettings, fixed: list[Ladder], source: Path) -> list[Ladder]:
        """The per-title ladders: measured on samples of the source, planned, and recorded as the renditions."""
        self._update(progress_detail={"stage": "analysis"})
        started = time.monotonic()
        measurements = analyse_families(self.config.ffmpeg, self.storage, self.asset_id, info, fixed, source=source,
                                        segment_duration=settings.segment_duration, work_dir=self.work,
                                        cancel=self.cancelled, timeout=self.config.ffmpeg_timeout)
        ladders, _ = plan_asset(info, settings, measurements)
        record_ladders(self.engine, self.asset_id, ladders)
        log.info("asset %s: per-title ladder in %.1f s: %s", self.asset_id, time.monotonic() - started,
                 ", ".join(f"{r.id}@{r.bitrate // 1000}k" for lad in ladders for r in lad.renditions))
        return ladders

    def _per_title_chunks(self, info, settings: AssetSettings, source: Path, plan: ChunkPlan) -> ChunkPlan:
        """`plan` with every family at its measured capped CRFs for the same rungs (run beside chunk 0)."""
        started = time.monotonic()
        # Only the families whose CRF rungs can join chunk 0's table rungs (same init segment): measuring
        # the others (AV1) would only delay the chunks that wait for this.
        stitchable = [lad for lad in plan.ladders if lad.codec in STITCHABLE_CRF_CODECS]
        if not stitchable:
            return plan
        measurements = analyse_families(self.config.ffmpeg, self.storage, self.asset_id, info, stitchable,
                                        source=source, segment_duration=plan.segment_duration,
                                        work_dir=self.work, cancel=self.cancelled,
                                        timeout=self.config.ffmpeg_timeout, nice=ANALYSIS_NICE)
        ladders, _ = plan_asset(info, settings, measurements, keep_sizes=True)
        record_ladders(self.engine, self.asset_id, ladders)
        log.info("asset %s: per-title CRFs beside chunk 0 in %.1f s: %s", self.asset_id, time.monotonic() - started,
                 ", ".join(f"{r.id}@crf{r.crf}" for lad in ladders for r in lad.renditions))
        return replace(plan, ladders=ladders)

    def _content_key(self) -> ContentKey:
        if self.config.key_master is None:
            raise Unprocessable("encrypted playback is not configured on this worker (no key master)")
        try:
            master = self.config.key_master()
        except ValueError as exc:
            raise Unprocessable(str(exc)) from None
        return ensure_content_key(self.storage, master, self.asset_id)

    def _source(self, asset: Asset, input_url: str | None) -> Path:
        if input_url and not (asset.source_key and self.storage.exists(asset.source_key)):
            dest = self.work / "source"
            fetch(input_url, dest, max_bytes=self.config.max_source_bytes, timeout=self.config.import_timeout,
                  allow_private=self.config.allow_private_urls)
            return dest
        if not asset.source_key:
            raise NotFound("the asset has no source file")
        local = self.storage.local_path(asset.source_key)
        if local is not None and local.exists():
            return local  # read in place: the original is never modified
        dest = self.work / "source"
        self.storage.download_to(asset.source_key, dest)
        return dest

    def _record_import(self, info, ladders: list[Ladder], audio: list[PlannedRendition], source: Path) -> None:
        key = layout.source_key(self.asset_id)
        self.storage.put_file(key, source)
        with Session(self.engine) as s:
            existing = {r.name for r in s.exec(select(Rendition).where(Rendition.asset_id == self.asset_id)).all()}
            for planned in [r for ladder in ladders for r in ladder.renditions] + audio:
                if planned.id not in existing:
                    s.add(Rendition(asset_id=self.asset_id, name=planned.id, codec=planned.codec,
                                    width=planned.width, height=planned.height, bitrate=planned.bitrate,
                                    frame_rate=float(planned.frame_rate) if planned.frame_rate else None))
            s.commit()
        self._update(source=info.to_dict(), duration=info.duration, source_key=key)

    def _existing_presentation(self, segment_duration: float) -> Presentation:
        key = layout.presentation_key(self.asset_id)
        if self.storage.exists(key):
            found = Presentation.from_dict(json.loads(self.storage.get_bytes(key)))
            found.tracks = [t for t in found.tracks if t.complete]  # a half-published family is redone
            return found
        return Presentation(segment_duration=segment_duration)

    def _write_presentation(self, presentation: Presentation) -> None:
        if self.cancelled():
            raise Cancelled("asset deleted")
        data = json.dumps(presentation.to_dict(), separators=(",", ":")).encode()
        self.storage.put_bytes(layout.presentation_key(self.asset_id), data, content_type="application/json")

    def _encode(self, index: int, total: int, family: Family, presentation: Presentation, source: Path,
                duration: float, segment_duration: float, content_key: ContentKey | None = None,
                storyboard: StoryboardTap | None = None) -> None:
        progressive = not any(t.complete and not t.rendition.is_audio for t in presentation.tracks)
        job_dir = self.work / f"family-{index}"
        shutil.rmtree(job_dir, ignore_errors=True)
        prefix = layout.media_prefix(self.asset_id) if progressive else \
            layout.staging_prefix(self.asset_id, f"family-{index}")
        self._set_renditions(family.rendition_ids, "encoding")
        frame_rate = family.ladder.renditions[0].frame_rate if family.ladder else None
        job = EncodeJob(source=source, out_dir=job_dir, ladder=family.ladder, audio=family.audio,
                        segment_duration=segment_duration, frame_rate=frame_rate, more_audio=family.more_audio,
                        content_key=content_key, first_segment_duration=self.config.first_segment_duration,
                        storyboard=storyboard)
        family_tracks: dict[str, Track] = {}

        def on_segment(track: Track, init_path: Path | None, segment_path: Path) -> None:
            if self.cancelled():
                raise Cancelled("asset deleted")
            if init_path is not None:
                self.storage.put_file(f"{prefix}/{track.init_uri}", init_path)
            self.storage.put_file(f"{prefix}/{track.segment_uri(track.segments[-1].number)}", segment_path, move=True)
            family_tracks[track.id] = track
            if not progressive:
                return
            if track not in presentation.tracks:
                add_in_family_order(presentation.tracks, track, family.rendition_ids)
            if len(family_tracks) < len(family.rendition_ids):
                # Nothing is served until every track of the family has a segment: a master playlist of
                # some renditions (or of video without its audio) is loaded once by a player and never
                # reloaded, so the missing ones would never play.
                return
            self._write_presentation(presentation)
            if not self._playable:
                self._playable = True
                self._update(playable=True)
                events.emit(self.engine, events.ASSET_PLAYABLE, asset_id=self.asset_id)
                self._set_renditions(family.rendition_ids, "playable")

        def on_progress(p: Progress) -> None:
            now = time.monotonic()
            if now - self._last_progress < PROGRESS_INTERVAL_S:
                return
            self._last_progress = now
            fraction = (p.percent or 0.0) / 100.0
            self._update(progress=round(min(99.9, (index + fraction) / total * 100), 1), progress_detail={
                "family": family.ladder.codec if family.ladder else "audio", "fps": p.fps, "speed": p.speed,
                "eta": p.eta, "out_time": p.out_time})

        self._playable = bool(self._playable_now())
        started = time.monotonic()
        resolve = resolver(self.storage, self.work / "resources", allow_private=self.config.allow_private_urls)
        tracks = encode_family(self.config.ffmpeg, job, duration=duration, on_progress=on_progress,
                               on_segment=on_segment, cancel=self.cancelled, timeout=self.config.ffmpeg_timeout,
                               plugins=self._plugins if family.ladder else None, resolve=resolve)
        metrics.observe_encode(family.ladder.codec if family.ladder else "audio", time.monotonic() - started,
                               tracks[0].duration_seconds)
        if not progressive:
            self.storage.publish(prefix, layout.media_prefix(self.asset_id))
        for track in tracks:
            if track not in presentation.tracks:
                presentation.tracks.append(track)
        if storyboard is not None:
            # Stored before the write that marks this family complete: a retry that skips the family
            # finds the sheet there (finish_extras keeps it), the same bytes as a clean run's, never one
            # cut the other way from the encoded rung (tests/reliability/test_faults.py).
            sheet = job_dir / storyboard.name
            publish_storyboard(self.storage, ffmpeg=self.config.ffmpeg, work_dir=self.work, asset_id=self.asset_id,
                               presentation=presentation,
                               content_key=(lambda: content_key) if content_key is not None else None,
                               made=sheet if sheet.is_file() and sheet.stat().st_size else None)
        self._write_presentation(presentation)
        self._set_renditions(family.rendition_ids, "ready")
        self._update(playable=True)
        shutil.rmtree(job_dir, ignore_errors=True)

    @_db_retry
    def _playable_now(self) -> bool:
        with Session(self.engine) as s:
            asset = s.get(Asset, self.asset_id)
            return bool(asset and asset.playable)


class ChunkRun(AssetTranscode):
    """One `assets.encode_chunk` task: encode one piece, then take part in the fan-in."""

    def __init__(self, engine, storage, config, asset_id: str, piece: str) -> None:
        super().__init__(engine, storage, config, asset_id)
        self.piece = piece
        self.work = config.work_dir / f"{asset_id}.{piece}.{uuid.uuid4().hex[:6]}"  # pieces may share a host

    def run(self) -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            job, asset = latest_job(s, self.asset_id), s.get(Asset, self.asset_id)
        if job is None or asset is None or job.status not in ("queued", "running") or asset.status != "processing":
            log.info("asset %s: piece %s not needed (job finished, failed or gone)", self.asset_id, self.piece)
            return
        started = time.monotonic()
        with Heartbeat(self.engine, job.id, self.config.jobs.heartbeat_interval):
            self._run_claimed(asset)
        metrics.observe_job("chunk", time.monotonic() - started)

    def _pipeline(self, asset: Asset) -> None:
        Chunked(self).encode_piece(self.piece)
