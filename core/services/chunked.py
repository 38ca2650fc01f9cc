"""Chunked parallel encoding of one asset: fan out to any transcode worker, fan in through the database.

Pieces of work (`core/media/chunks.py` says why the cuts are seamless):
- `audio`: the whole source's audio, encoded once (no AAC priming at joins);
- `f{F}c{K}`: codec family F's video for chunk K.
The whole-asset task (`assets.transcode`) plans, then at once (one thread each)
encodes `audio` and `f0c0` itself and, once `f0c0` has its first segments,
sends one `assets.encode_chunk` task per other piece; both encodes go segment by segment straight into `media/`, so
the asset is playable as early as unchunked whatever the source's length: the
first segments wait for nothing that grows with it. Chunk tasks encode into `staging/{asset}/chunks/{piece}-{token}/`
under the final file names (global segment numbers) and record completion with
a marker, `staging/{asset}/chunks/done/{piece}.json` (tracks + init hashes).

Fan-in is coordinated by the database, not by a Celery chord: chords need a
result backend counting finished header tasks (on the embedded transport the
polling database backend), a chord whose member's worker died never fires and
nothing retries it, and its state lives beside the broker instead of with the
job. Here a piece that completes takes the asset row's lock (an UPDATE: a row
lock on PostgreSQL, the write lock on SQLite), writes its marker, appends
contiguous chunks of the first family to `presentation.json`, publishes later
families once all their chunks are in, and the one that sees everything
complete finishes the asset. Chunk tasks keep the job's heartbeat, so the
reconciler resends the whole-asset task only when nothing runs; a rerun
re-sends just the pieces without a marker (reruns are idempotent).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import update
from sqlmodel import Session

from core import events, layout, metrics
from core.db.models import Asset, utcnow
from core.errors import Cancelled, FFmpegError
from core.media.chunks import Chunk, chunk_length, chunkable, plan_chunks
from core.media.encode import SHORT_FIRST_CODECS, EncodeJob
from core.media.family import contiguous, encode_family
from core.media.model import Ladder, Presentation, Segment, Track
from core.media.model import Rendition as PlannedRendition
from core.services.images import finish_extras

log = logging.getLogger(__name__)
PIECE = re.compile(r"^f(?P<family>\d{1,2})c(?P<chunk>\d{1,5})$")
AUDIO_PIECE = "audio"
# The audio encode runs beside chunk 0's video and needs little CPU to stay ahead of it (an AAC
# segment of 4 s costs ~40 ms; the whole of 10 minutes ~5 s of one core). At full priority it would
# take a core from chunk 0's first segments, which `playable` waits for; niced by 5 (CFS weight 335
# against 1024 for each of ffmpeg's video threads) it gets ~5 % of the cores while both run.
AUDIO_NICE = 5
# Niced, it still took 0.5-1.1 CPU s of the ~2.3-3.5 s from the upload's 201 to `playable` (10-min 1080p
# footage, bench/playable.py --profile): whenever one of chunk 0's four encoder threads waits for frames, a
# core is free for it. Its first segment is all `playable` needs of it, so after that it is stopped
# (SIGSTOP) until chunk 0 has a first segment in every rung. The other pieces are sent only then too: a
# broker round trip each in this process, and on a worker with a free slot on this machine the first of
# them would be encoded at once, beside chunk 0's first segments. Neither waits longer than this.
HOLD_MAX_S = 30.0
# x264's rc-lookahead for chunk 0 (H.264; the other chunks keep veryfast's 10). Before its first segment
# (0.5 s) can be cut, x264 must have looked that many frames past it: 10-min 1080p footage, the worker's argv
# for chunk 0 alone (bench/first_segment.py, 9 runs each, load 11-24), ffmpeg's CPU seconds until the four
# rungs' first segments: 1.38-1.52 (median of each set) with 10, 1.18-1.26 with 5 (-14 to -19 %). VMAF of
# chunk 0's rungs (its first 20 s; 1080p/720p/480p/360p): 96.61 / 93.74 / 89.93 / 83.06 against
# 96.59 / 93.76 / 89.96 / 83.19 with 10 (+0.02, -0.02, -0.03, -0.13). The init segment is the same (the
# lookahead is not in the SPS/PPS), which every later chunk's must be.
FAST_START_LOOKAHEAD = 5


@dataclass(frozen=True)
class ChunkPolicy:
    chunk_duration: float = 60.0
    min_source: float = 120.0
    send: Callable[[str, str], None] | None = None  # (asset_id, piece): enqueue `assets.encode_chunk`


@dataclass
class ChunkPlan:
    segment_duration: float
    chunks: list[Chunk]
    ladders: list[Ladder]
    audio: PlannedRendition | None
    mp4_support: bool = False
    # Chunk 0 of every family starts with a segment this long (core/media/chunks.py); None: all equal.
    first_segment_duration: float | None = None

    def first_segment(self, chunk: Chunk) -> float | None:
        """The `EncodeJob.first_segment_duration` of `chunk`'s encodes."""
        return self.first_segment_duration if chunk.index == 0 else None

    @property
    def pieces(self) -> list[str]:
        return [f"f{f}c{k}" for f in range(len(self.ladders)) for k in range(len(self.chunks))]

    @property
    def track_order(self) -> list[str]:
        """Rendition ids in the order the single-worker path lists them (first family, audio, the rest)."""
        ids = [[r.id for r in ladder.renditions] for ladder in self.ladders]
        return ids[0] + ([self.audio.id] if self.audio else []) + [i for rest in ids[1:] for i in rest]

    def to_json(self) -> bytes:
        def rendition(r: PlannedRendition) -> dict:
            return {**asdict(r), "frame_rate": str(r.frame_rate) if r.frame_rate else None}

        return json.dumps({
            "segment_duration": self.segment_duration, "mp4_support": self.mp4_support,
            "first_segment_duration": self.first_segment_duration,
            "chunks": [[c.index, c.start, c.length, c.first_segment] for c in self.chunks],
            "ladders": [{"codec": lad.codec, "renditions": [rendition(r) for r in lad.renditions]} for lad in self.ladders],
            "audio": rendition(self.audio) if self.audio else None,
        }).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ChunkPlan:
        d = json.loads(data)

        def rendition(r: dict) -> PlannedRendition:
            return PlannedRendition(**{**r, "frame_rate": Fraction(r["frame_rate"]) if r["frame_rate"] else None})

        return cls(segment_duration=d["segment_duration"], mp4_support=d["mp4_support"],
                   chunks=[Chunk(*c) for c in d["chunks"]],
                   ladders=[Ladder(lad["codec"], tuple(rendition(r) for r in lad["renditions"])) for lad in d["ladders"]],
                   audio=rendition(d["audio"]) if d["audio"] else None,
                   first_segment_duration=d.get("first_segment_duration"))  # absent from older plans


def plan_chunked(policy: ChunkPolicy | None, info, ladders: list[Ladder], audio, segment_duration: float,
                 mp4_support: bool, first_segment_duration: float | None = None) -> ChunkPlan | None:
    """The chunk plan for this source, or None when it takes the single-worker path.

    `first_segment_duration`: chunk 0 starts with a segment this long when it is shorter than
    `segment_duration` (the plan records it, so a rerun or a chunk task on another worker agrees).
    """
    if policy is None or policy.send is None or not ladders or info.duration < policy.min_source:
        return None
    length = chunk_length(policy.chunk_duration, segment_duration)
    video = info.video
    why = chunkable(codecs=[lad.codec for lad in ladders], variable_frame_rate=bool(video and video.variable_frame_rate),
                    source_rate=video.frame_rate if video else None, output_rate=ladders[0].renditions[0].frame_rate,
                    chunk_duration=length)
    if why:
        log.info("not splitting the source: %s", why)
        return None
    first = first_segment_duration
    if first is None or not 0 < first < segment_duration or any(lad.codec not in SHORT_FIRST_CODECS for lad in ladders):
        first = None
    chunks = plan_chunks(info.duration, segment_duration, length, short_first=first is not None)
    if len(chunks) < 2:
        return None
    return ChunkPlan(segment_duration, chunks, ladders, audio, mp4_support, first)


class PipelineRun(Protocol):
    """What `Chunked` uses of the run that calls it (`core.services.transcode.AssetTranscode`).

    The transcode orchestrates and calls into this module, never the other way
    round: a chunk task's run is `transcode.ChunkRun`, which hands itself here.
    """

    engine: Any
    storage: Any
    config: Any
    asset_id: str
    work: Path
    _playable: bool

    def cancelled(self) -> bool: ...
    def _update(self, **fields) -> Any: ...
    def _set_renditions(self, names: list[str], status: str) -> None: ...
    def _finish_job(self, status: str, error: str | None = None) -> None: ...
    def _playable_now(self) -> bool: ...
    def _write_presentation(self, presentation: Presentation) -> None: ...
    def _source(self, asset: Asset, input_url: str | None) -> Path: ...


class Chunked:
    """The chunked run of one asset; uses the calling run's database and storage helpers."""

    def __init__(self, run: PipelineRun) -> None:
        self.run, self.storage, self.asset_id = run, run.storage, run.asset_id
        self.root = layout.staging_prefix(run.asset_id, "chunks")
        self._mutex = threading.Lock()
        # While the whole-asset task starts the audio and chunk 0, presentation writes that would not be
        # playable are held here (`_write`); nothing else writes the presentation before f0c0's marker.
        self._holding = False
        self._held: dict | None = None

    # -- storage records ---------------------------------------------------------------------------
    def load_plan(self) -> ChunkPlan | None:
        key = f"{self.root}/plan.json"
        return ChunkPlan.from_json(self.storage.get_bytes(key)) if self.storage.exists(key) else None

    def _done(self) -> dict[str, dict]:
        prefix = f"{self.root}/done"
        return {key.rsplit("/", 1)[1][:-5]: json.loads(self.storage.get_bytes(key)) for key in self.storage.list(prefix)}

    def _presentation(self, plan: ChunkPlan) -> Presentation:
        if self._held is not None:
            return Presentation.from_dict(self._held)
        key = layout.presentation_key(self.asset_id)
        if self.storage.exists(key):
            return Presentation.from_dict(json.loads(self.storage.get_bytes(key)))
        return Presentation(segment_duration=plan.segment_duration)

    def _write(self, plan: ChunkPlan, presentation: Presentation) -> None:
        order = {rid: i for i, rid in enumerate(plan.track_order)}
        presentation.tracks.sort(key=lambda t: order.get(t.id, len(order)))
        if self._holding and not self._playable(plan, presentation):
            # The audio and chunk 0 publish side by side: until both have a segment, the presentation
            # stays in this process. Served earlier, it would make a master playlist of the audio alone
            # (or of video without audio), which a player loads once and never reloads.
            if self.run.cancelled():
                raise Cancelled("asset deleted")
            self._held = presentation.to_dict()
            return
        self._holding, self._held = False, None
        self.run._write_presentation(presentation)

    def _release(self, plan: ChunkPlan) -> None:
        """Stop holding the presentation back (see `_write`), writing what was held."""
        with self._lock():
            held = self._held
            self._holding, self._held = False, None
            if held is not None:
                self._write(plan, Presentation.from_dict(held))

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise presentation updates of this asset across workers (held for storage calls only)."""
        with Session(self.run.engine) as s:
            taken = s.exec(update(Asset).where(Asset.id == self.asset_id).values(updated_at=utcnow()))
            if taken.rowcount != 1:
                raise Cancelled("asset deleted")
            yield
            s.commit()

    # -- the whole-asset task ---------------------------------------------------------------------
    def start(self, plan: ChunkPlan, source: Path, send: Callable[[str, str], None],
              prepare: Callable[[ChunkPlan], ChunkPlan] | None = None) -> None:
        """Encode `audio` and `f0c0` at once, each straight into media/, while the other pieces are sent.

        Nothing before the first segments grows with the source: the audio is
        one AAC encode of the whole source (no priming at joins), but it runs
        beside chunk 0 and publishes segment by segment, so `playable` waits for
        its first segment, not its last (and is then held until chunk 0 has
        its first segments: HOLD_MAX_S). Sending one task per piece (a broker
        round trip each, 60 for an hour) happens beside the encodes too, once
        chunk 0 has its first segments. `prepare` (the per-title analysis)
        runs there as well, before the other pieces are sent: it returns the
        plan they are encoded with (the same rungs, other rate control), stored
        as the plan; chunk 0 keeps `plan`.
        """
        plan = self.load_plan() or plan
        self.storage.put_bytes(f"{self.root}/plan.json", plan.to_json(), content_type="application/json")
        self.run._set_renditions(plan.track_order, "encoding")
        done = self._done()
        self._holding = True
        with self._lock():
            presentation = self._presentation(plan)
        audio_done = not plan.audio or any(t.id == plan.audio.id and t.complete for t in presentation.tracks)
        self.run._playable = bool(self.run._playable_now())
        stop = threading.Event()  # the first failure stops the other encode
        # Set once chunk 0 has a first segment in every rung, or will make none here (done before, ended).
        first_out = threading.Event()
        work: list[Callable[[], None]] = [lambda: self._send(plan, done, send, prepare, first_out)]
        if "f0c0" in done:
            first_out.set()
        else:
            work.append(lambda: self._encode_first_chunk(plan, source, stop, first_out))
        if not audio_done:
            work.append(lambda: self._encode_audio(plan, source, stop, first_out))
        try:
            _alongside(work, stop)
        except BaseException:
            self._holding, self._held = False, None  # a rerun redoes what was held
            raise
        self._release(plan)
        self.advance(plan, force=True)

    def _send(self, plan: ChunkPlan, done: dict[str, dict], send: Callable[[str, str], None],
              prepare: Callable[[ChunkPlan], ChunkPlan] | None = None,
              first_out: threading.Event | None = None) -> None:
        if first_out is not None:
            first_out.wait(HOLD_MAX_S)  # see HOLD_MAX_S
        pieces = [p for p in plan.pieces[1:] if p not in done]
        if prepare is not None and pieces:
            try:
                plan = prepare(plan)
            except FFmpegError as exc:  # chunk 0 is already being served: finish on the fixed table
                log.warning("asset %s: per-title analysis failed (%s); the fixed ladder stays", self.asset_id, exc)
            else:
                self.storage.put_bytes(f"{self.root}/plan.json", plan.to_json(), content_type="application/json")
        for piece in pieces:
            send(self.asset_id, piece)
        log.info("asset %s: %d of %d chunks x %d families sent", self.asset_id, len(pieces), len(plan.chunks),
                 len(plan.ladders))

    def _encode_audio(self, plan: ChunkPlan, source: Path, stop: threading.Event, first_out: threading.Event) -> None:
        job = EncodeJob(source, self.run.work / AUDIO_PIECE, None, plan.audio, plan.segment_duration, None)
        log.info("asset %s: encoding audio (progressively, beside f0c0)", self.asset_id)
        own_first = threading.Event()
        hold = audio_hold(own_first, first_out, stop, time.monotonic() + HOLD_MAX_S)
        tracks, _ = self._progressive(plan, job, duration=None, stop=stop, nice=AUDIO_NICE, hold=hold,
                                      first_out=own_first)
        with self._lock():
            presentation = self._presentation(plan)
            presentation.tracks = [t for t in presentation.tracks if t.id != plan.audio.id] + tracks
            self._write(plan, presentation)

    def _encode_first_chunk(self, plan: ChunkPlan, source: Path, stop: threading.Event,
                            first_out: threading.Event) -> None:
        chunk, ladder = plan.chunks[0], plan.ladders[0]
        job = EncodeJob(source, self.run.work / "f0c0", ladder, None, plan.segment_duration,
                        ladder.renditions[0].frame_rate, start=0.0, length=chunk.length,
                        first_segment_duration=plan.first_segment(chunk),
                        x264_lookahead=FAST_START_LOOKAHEAD if ladder.codec == "h264" else None)
        log.info("asset %s: encoding f0c0 (progressively, %.3f s)", self.asset_id, chunk.length)
        try:
            tracks, hashes = self._progressive(plan, job, duration=chunk.length, stop=stop, first_out=first_out)
        finally:
            first_out.set()  # however it ended, nothing is waiting for its first segments any more
        # Recorded now, not when the audio is done: later chunks are appended behind it from here on,
        # by other workers too, so nothing may be held back in this process any more.
        self._release(plan)
        self.advance(plan, mark=("f0c0", self._marker("-", tracks, hashes)))

    def _progressive(self, plan: ChunkPlan, job: EncodeJob, *, duration: float | None,
                     stop: threading.Event, nice: int = 0, hold: Callable[[], bool] | None = None,
                     first_out: threading.Event | None = None) -> tuple[list[Track], dict[str, str]]:
        """Encode straight into media/, rewriting the presentation after every segment; (tracks, init hashes).

        `first_out` is set once every track of `job` has published a segment; `hold` stops ffmpeg while
        it says True (`run_ffmpeg`).
        """
        prefix = layout.media_prefix(self.asset_id)
        ids = set(job.ladder and [r.id for r in job.ladder.renditions] or []) | ({job.audio.id} if job.audio else set())
        hashes: dict[str, str] = {}
        with self._lock():
            presentation = self._presentation(plan)
            presentation.tracks = [t for t in presentation.tracks if t.id not in ids]  # an interrupted run is redone
            self._write(plan, presentation)

        def on_segment(track: Track, init_path: Path | None, segment_path: Path) -> None:
            if self.run.cancelled():
                raise Cancelled("asset deleted")
            if init_path is not None:
                hashes[track.id] = _sha256(init_path)
                self.storage.put_file(f"{prefix}/{track.init_uri}", init_path)
            self.storage.put_file(f"{prefix}/{track.segment_uri(track.segments[-1].number)}", segment_path, move=True)
            with self._lock():
                presentation = self._presentation(plan)
                presentation.tracks = [t for t in presentation.tracks if t.id != track.id] + [track]
                self._write(plan, presentation)
                playable = self._playable(plan, presentation)
            with self._mutex:  # the audio and f0c0 encodes both get here: announce once
                announce = playable and not self.run._playable
                self.run._playable = self.run._playable or playable
            published.add(track.id)
            if first_out is not None and published >= ids:
                first_out.set()
            if announce:
                self.run._update(playable=True)
                events.emit(self.run.engine, events.ASSET_PLAYABLE, asset_id=self.asset_id)
                self.run._set_renditions([r.id for r in plan.ladders[0].renditions] +
                                         ([plan.audio.id] if plan.audio else []), "playable")

        published: set[str] = set()
        cancel = lambda: stop.is_set() or self.run.cancelled()  # noqa: E731
        return self._encode(job, duration, on_segment, cancel=cancel, nice=nice, hold=hold), hashes

    def _encode(self, job: EncodeJob, duration: float | None, on_segment, cancel=None, nice: int = 0,
                hold: Callable[[], bool] | None = None) -> list[Track]:
        started = time.monotonic()
        tracks = encode_family(self.run.config.ffmpeg, job, duration=duration, on_progress=None, on_segment=on_segment,
                               cancel=cancel or self.run.cancelled, timeout=self.run.config.ffmpeg_timeout, nice=nice,
                               hold=hold)
        media = tracks[0].duration_seconds if tracks else 0.0
        metrics.observe_encode("chunk" if job.ladder else "audio", time.monotonic() - started, media)
        return tracks

    def _playable(self, plan: ChunkPlan, presentation: Presentation) -> bool:
        need = [r.id for r in plan.ladders[0].renditions] + ([plan.audio.id] if plan.audio else [])
        have = {t.id for t in presentation.tracks if t.segments}
        return all(rid in have for rid in need)

    # -- a chunk task -----------------------------------------------------------------------------
    def encode_piece(self, piece: str) -> None:
        plan = self.load_plan()
        match = PIECE.match(piece)
        if plan is None or match is None or piece not in plan.pieces:
            log.info("asset %s: no piece %s to encode (no plan, or not one of its pieces)", self.asset_id, piece)
            return
        if piece in self._done():
            self.advance(plan)
            return
        chunk, ladder = plan.chunks[int(match["chunk"])], plan.ladders[int(match["family"])]
        token = uuid.uuid4().hex[:10]
        prefix = f"{self.root}/{piece}-{token}"
        with Session(self.run.engine) as s:
            asset = s.get(Asset, self.asset_id)
        if asset is None:
            raise Cancelled("asset deleted")
        self.run.work.mkdir(parents=True, exist_ok=True)
        source = self.run._source(asset, None)
        job = EncodeJob(source, self.run.work / piece, ladder, None, plan.segment_duration,
                        ladder.renditions[0].frame_rate, start=chunk.start, length=chunk.length,
                        output_ts_offset=chunk.start or None, first_segment_duration=plan.first_segment(chunk))
        hashes: dict[str, str] = {}

        def on_segment(track: Track, init_path: Path | None, segment_path: Path) -> None:
            if self.run.cancelled():
                raise Cancelled("asset deleted")
            if init_path is not None:
                hashes[track.id] = _sha256(init_path)
                self.storage.put_file(f"{prefix}/{track.init_uri}", init_path)
            number = chunk.segment_number(track.segments[-1].number)
            self.storage.put_file(f"{prefix}/{track.segment_uri(number)}", segment_path, move=True)

        log.info("asset %s: encoding %s (%.3f s from %.3f s)", self.asset_id, piece, chunk.length or -1, chunk.start)
        tracks = self._encode(job, chunk.length, on_segment)
        for track in tracks:
            track.segments = [_renumber(s, chunk) for s in track.segments]
        self.advance(plan, mark=(piece, self._marker(token, tracks, hashes)))

    @staticmethod
    def _marker(token: str, tracks: list[Track], hashes: dict[str, str]) -> dict:
        data = Presentation(segment_duration=0, tracks=tracks).to_dict()["tracks"]
        return {"token": token, "init_sha256": dict(hashes), "tracks": data}

    # -- fan-in -----------------------------------------------------------------------------------
    def advance(self, plan: ChunkPlan, *, mark: tuple[str, dict] | None = None, force: bool = False) -> None:
        """Record a finished piece, publish what has become contiguous, and finish the asset once (see module doc)."""
        finish = False
        with self._lock():
            if mark is not None:
                self.storage.put_bytes(f"{self.root}/done/{mark[0]}.json", json.dumps(mark[1]).encode(),
                                       content_type="application/json")
            done = self._done()
            presentation = self._presentation(plan)
            changed = self._append_first_family(plan, presentation, done)
            changed = self._publish_families(plan, presentation, done) or changed
            if changed:
                self._write(plan, presentation)
            complete = {t.id for t in presentation.tracks if t.complete}
            if set(plan.track_order) <= complete and not presentation.complete:
                finishing = f"{self.root}/finishing"
                if force or not self.storage.exists(finishing):
                    self.storage.put_bytes(finishing, b"1")
                    finish = True
        pieces = len(plan.pieces)
        self.run._update(progress=round(min(99.9, 100 * len([p for p in done if p in plan.pieces]) / pieces), 1))
        if finish:
            self._finish(plan)

    def _append_first_family(self, plan: ChunkPlan, presentation: Presentation, done: dict[str, dict]) -> bool:
        if "f0c0" not in done:
            return False
        ids = [r.id for r in plan.ladders[0].renditions]
        tracks = {t.id: t for t in presentation.tracks if t.id in ids}
        if len(tracks) != len(ids):  # written by the progressive encode; rebuild from its record if lost
            tracks = {t.id: t for t in _tracks(done["f0c0"])}
            presentation.tracks = [t for t in presentation.tracks if t.id not in ids] + list(tracks.values())
        if all(t.complete for t in tracks.values()):
            return False
        # The chunks already appended: those whose first segment is in (chunk 0 may hold one segment more).
        last = tracks[ids[0]].segments[-1].number
        k = sum(1 for c in plan.chunks if c.first_segment <= last)
        changed = False
        while k < len(plan.chunks) and f"f0c{k}" in done:
            self._publish_piece(f"f0c{k}", done[f"f0c{k}"], reference=done["f0c0"])
            for part in _tracks(done[f"f0c{k}"]):
                _extend(tracks[part.id], part)
            k, changed = k + 1, True
        if k >= len(plan.chunks):
            for track in tracks.values():
                track.complete = changed = True
        return changed

    def _publish_families(self, plan: ChunkPlan, presentation: Presentation, done: dict[str, dict]) -> bool:
        changed = False
        have = {t.id for t in presentation.tracks}
        for f, ladder in enumerate(plan.ladders[1:], start=1):
            pieces = [f"f{f}c{k}" for k in range(len(plan.chunks))]
            if ladder.renditions[0].id in have or not all(p in done for p in pieces):
                continue
            tracks = {t.id: t for t in _tracks(done[pieces[0]])}
            for piece in pieces:
                self._publish_piece(piece, done[piece], reference=done[pieces[0]])
                if piece != pieces[0]:
                    for part in _tracks(done[piece]):
                        _extend(tracks[part.id], part)
            for track in tracks.values():
                track.complete = True
                presentation.tracks.append(track)
            changed = True
        return changed

    def _publish_piece(self, piece: str, marker: dict, *, reference: dict) -> None:
        if marker["init_sha256"] != reference["init_sha256"]:
            raise FFmpegError(f"chunk {piece} has init segments that differ from its first chunk's: "
                              "the encoder settings changed between chunks")
        staged = f"{self.root}/{piece}-{marker['token']}"
        if marker is not reference:
            for track in _tracks(marker):
                self.storage.delete(f"{staged}/{track.init_uri}")  # identical (checked): keep the one served
        self.storage.publish(staged, layout.media_prefix(self.asset_id))

    def _finish(self, plan: ChunkPlan) -> None:
        presentation = self._presentation(plan)
        self.run.work.mkdir(parents=True, exist_ok=True)
        finish_extras(self.run.engine, self.storage, asset_id=self.asset_id, presentation=presentation,
                      ffmpeg=self.run.config.ffmpeg, work_dir=self.run.work, mp4_support=plan.mp4_support)
        presentation.complete = True
        with self._lock():
            self._write(plan, presentation)
        self.run._set_renditions(plan.track_order, "ready")
        self.run._update(status="ready", progress=100.0, playable=True, progress_detail=None)
        events.emit(self.run.engine, events.ASSET_READY, asset_id=self.asset_id)
        self.run._finish_job("succeeded")
        self.storage.delete_prefix(self.root)
        log.info("asset %s ready (%d chunks x %d families)", self.asset_id, len(plan.chunks), len(plan.ladders))


def audio_hold(audio_first: threading.Event, chunk0_first: threading.Event, stop: threading.Event,
               deadline: float) -> Callable[[], bool]:
    """The audio encode's `hold` (see HOLD_MAX_S): stopped once it has a segment out, until chunk 0 has
    one in every rung, the run is stopping, or `deadline` (monotonic) has passed."""
    return lambda: (audio_first.is_set() and not chunk0_first.is_set() and not stop.is_set()
                    and time.monotonic() < deadline)


def _tracks(marker: dict) -> list[Track]:
    return Presentation.from_dict({"segment_duration": 0, "complete": False, "tracks": marker["tracks"]}).tracks


def _extend(track: Track, part: Track) -> None:
    for segment in part.segments:
        track.segments.append(contiguous(track, segment))


def _renumber(segment, chunk: Chunk):
    return Segment(number=chunk.segment_number(segment.number), start=segment.start, duration=segment.duration,
                   size=segment.size)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _alongside(work: list[Callable[[], None]], stop: threading.Event) -> None:
    """Run `work` at once, one thread each; the first failure sets `stop` (the encodes' cancel) and is raised
    once every piece has ended, so no ffmpeg outlives this call."""
    with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="chunk0") as pool:
        futures = [pool.submit(w) for w in work]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() for f in finished):
            stop.set()
        wait(futures)
    errors = [f.exception() for f in futures if f.exception() is not None]
    # The piece that failed first, not the Cancelled it caused in the others.
    errors.sort(key=lambda e: isinstance(e, Cancelled))
    if errors:
        raise errors[0]
