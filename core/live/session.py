"""One live stream's long-running job: probe, encode, publish, reconnect, end, record.

    loop:
        open the source with one ffmpeg (encode the ladder, publish segments)
        ffmpeg exits (source dropped) -> reconnecting; retry with backoff
        back within the grace period -> active again, new period (discontinuity)
        grace expired, stop requested or row deleted -> end

The database row is the record: its status is what the API shows, its
`stop_requested` flag is how `POST …/stop` reaches us, and a heartbeat
marks which task run owns the stream (a redelivered task leaves it alone).
When that run dies, the reconciler frees the row (core/live/takeover.py) and
the run that claims it next reloads the published window from storage and
continues after a discontinuity; a run that finds its row taken stops quietly.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import layout
from core.db.models import PlaybackId, utcnow
from core.db.models_live import LiveStream
from core.errors import AbrError, Cancelled
from core.events import EventSink
from core.live import hls_proxy, state
from core.live.encode import FIRST_OFFSET, build_live_argv, part_target
from core.live.events import emit_live_event
from core.live.plan import LivePlan, plan_from_dict, plan_live
from core.live.plugins import LivePlugins
from core.live.publisher import LivePublisher
from core.live.pull_guard import (
    AddressNotAllowed,
    PullPolicy,
    check_source,
    pin_source,
    rtmp_tcurl,
    source_port,
)
from core.live.reader import NO_MEDIA, PIPE_INPUT, SourceError, SourceReader, classify, reader_argv
from core.live.rtsp_relay import RtspRelay
from core.live.takeover import LeasePolicy, count_takeover, restore_state
from core.live.recording import create_recording
from core.live.srt_ingest import relay_url as srt_relay_url
from core.live.srt_ingest import srt_publishing
from core.media.encode import EncodeJob, stream_map
from core.media.encryption import ContentKey
from core.media.runner import POLL_INTERVAL, Progress, run_ffmpeg
from core.storage import Storage

log = logging.getLogger(__name__)
CHECK_INTERVAL = 1.0  # seconds between looks at the row (stop, delete) while encoding
BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)  # seconds between attempts to (re)open the source
# LL streams: seconds between looks for new parts, so a part ffmpeg has closed is published 10 ms
# later on average, not the runner's 25 ms. A look that finds nothing is a stat and an empty read of
# each rung's growing segment file.
PART_POLL_INTERVAL = 0.02


@dataclass(frozen=True)
class LiveConfig:
    ffmpeg: str
    work_dir: Path
    rtmp_pull_base: str  # rtmp://127.0.0.1:1935/live
    srt_pull_base: str | None = None  # the SRT listener's relay, http://127.0.0.1:8891 (None: no SRT push)
    reconnect_grace: float = 30.0
    probe_timeout: float = 8.0
    # Called with the recording's asset id once it exists (the worker makes its storyboard there:
    # core/live knows no services).
    after_recording: Callable[[str], None] | None = None
    pull_policy: PullPolicy = field(default_factory=PullPolicy)  # which hosts a pull source may reach
    # Frame plugins' resource references (overlay ids, URLs) -> local files, given the work dir;
    # supplied by the worker (core/services/overlays.resolver), which knows storage and the URL rules.
    resolver: Callable[[Path], Callable[[str], Path]] | None = None
    # The lease on the row (core/live/takeover.py): heartbeats this often; another run's heartbeat
    # older than takeover_after means that run is gone and this one may take the stream.
    lease: LeasePolicy = field(default_factory=LeasePolicy)
    # An encrypted stream's content key, loaded by stream id (the worker supplies
    # core/services/content_keys.load_content_key under its key master). Only ever loaded: the
    # key was made with the stream (core/services/live_streams.py), so a takeover or a reconnect
    # encrypts with the key every published segment was encrypted with.
    content_key: Callable[[str], ContentKey] | None = None
    # Stores a key for another owner id (wrapped anew: the owner id binds the wrapping): the
    # recording of an encrypted stream is an encrypted asset under the stream's key.
    store_key: Callable[[str, ContentKey], None] | None = None


class _Gone(Exception):
    """The row was deleted while the stream ran."""


class LiveRun:
    def __init__(self, engine: Engine, storage: Storage, config: LiveConfig, stream_id: str, *,
                 events: EventSink | None = None) -> None:
        """`events`: where state changes are reported (`live_stream.active`, …); None: nowhere."""
        self.engine, self.storage, self.config, self.stream_id = engine, storage, config, stream_id
        self.events = events
        self.run_id = uuid.uuid4().hex[:16]
        self.work = config.work_dir / "live" / stream_id / self.run_id
        self._last_check = 0.0
        self._stop = False
        self._superseded = False
        self.previous_worker: str | None = None  # the run this one took the stream from, if any
        self.speed: float | None = None  # ffmpeg's x-real-time, for monitoring and benchmarks
        self.plan: LivePlan | None = None  # planned from the first session's reader, kept across reconnects
        self.content_key: ContentKey | None = None  # an encrypted stream's key (repr shows the id only)
        # The current session's proxy (http(s)) or relay (rtsp): what it refused, how upstream failed.
        self._guard: hls_proxy.PullProxy | RtspRelay | None = None

    # -- the row ----------------------------------------------------------------------------
    def _row(self, s: Session) -> LiveStream:
        row = s.get(LiveStream, self.stream_id)
        if row is None:
            raise _Gone()
        return row

    def _update(self, **fields) -> LiveStream:
        with Session(self.engine, expire_on_commit=False) as s:
            row = self._row(s)
            new = fields.get("status")
            if new is not None and new != row.status:
                state.check_transition(row.status, new)
            for k, v in fields.items():
                setattr(row, k, v)
            row.updated_at = row.heartbeat_at = utcnow()
            s.add(row)
            s.commit()
        if new is not None:
            emit_live_event(self.events, self.engine, row, new)
        return row

    def _claim(self) -> LiveStream | None:
        """Take the row for this run, unless another run holds a fresh lease on it.

        A conditional UPDATE on the (worker_id, heartbeat_at) read: of two runs claiming at once
        (a redelivered message and the reconciler's), exactly one gets the stream.
        """
        with Session(self.engine, expire_on_commit=False) as s:
            row = s.get(LiveStream, self.stream_id)
            if row is None or row.status in state.TERMINAL:
                return None
            fresh = row.heartbeat_at is not None and utcnow() - _aware(row.heartbeat_at) < timedelta(
                seconds=self.config.lease.takeover_after)
            if row.worker_id and row.worker_id != self.run_id and fresh and row.status != state.IDLE:
                log.info("live %s is run by %s already", self.stream_id, row.worker_id)
                return None
            self.previous_worker = row.worker_id
            taken = s.exec(update(LiveStream).where(LiveStream.id == self.stream_id)
                           .where(_is(LiveStream.worker_id, row.worker_id))
                           .where(_is(LiveStream.heartbeat_at, row.heartbeat_at))
                           .values(worker_id=self.run_id, heartbeat_at=utcnow(), error_code=None, error_message=None))
            s.commit()
            if taken.rowcount != 1:
                log.info("live %s was claimed by another run meanwhile", self.stream_id)
                return None
            s.refresh(row)
            return row

    def _should_stop(self) -> bool:
        """Polled often; reads the row about once a second (stop flag, deletion, a takeover)."""
        now = time.monotonic()
        if self._stop or now - self._last_check < CHECK_INTERVAL:
            return self._stop
        self._last_check = now
        with Session(self.engine) as s:
            row = self._row(s)
            if row.worker_id != self.run_id:
                # Our lease lapsed (this process stalled) and another run took the stream: it owns
                # the row, the storage and the recording from now on.
                log.warning("live %s: taken over by %s; this run stops", self.stream_id, row.worker_id)
                self._superseded = self._stop = True
                return True
            self._stop = row.stop_requested or row.status in state.TERMINAL
        return self._stop

    def _beat(self, done: threading.Event) -> None:
        """The lease: a thread, so that long steps without a look at the row (the recording's copy, its
        storyboard, a slow probe) keep the stream; only a dead or frozen process loses it."""
        while not done.wait(self.config.lease.heartbeat_interval):
            try:
                with Session(self.engine) as s:
                    kept = s.exec(update(LiveStream).where(LiveStream.id == self.stream_id)
                                  .where(LiveStream.worker_id == self.run_id).values(heartbeat_at=utcnow()))
                    s.commit()
                if kept.rowcount != 1:
                    return  # taken over or deleted: _should_stop sees which at its next look
            except Exception:  # a database blip; the next beat retries
                log.warning("live %s: heartbeat failed", self.stream_id, exc_info=True)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> None:
        row = self._claim()
        if row is None:
            return
        source = row.source_url or f"{self.config.rtmp_pull_base.rstrip('/')}/{row.stream_key}"
        self._stream_key = row.stream_key
        settings = dict(row.settings)
        try:
            self.content_key = self._load_key(row)
        except AbrError as exc:  # the stream cannot run encrypted, so it does not run: errored, with the reason
            log.warning("live %s errored: %s", self.stream_id, exc.message)
            self._safe_update(status=state.ERRORED, error_code=exc.code, error_message=exc.message, ended_at=utcnow())
            return
        self.plugins = LivePlugins(settings.get("frame_plugins") or [], on_health=self._plugin_health,
                                   resolve=self.config.resolver(self.work / "resources") if self.config.resolver else None)
        publisher = LivePublisher(self.storage, self.stream_id, segment_duration=settings["segment_duration"],
                                  dvr_window=settings["dvr_window"], record=settings["record"],
                                  part_target=part_target(settings), content_key=self.content_key)
        self.work.mkdir(parents=True, exist_ok=True)
        beating = threading.Event()
        threading.Thread(target=self._beat, args=(beating,), name=f"lease-{self.stream_id}", daemon=True).start()
        try:
            if row.status == state.IDLE:
                self._update(status=state.CONNECTING)
            elif row.status in state.LIVE and not self._take_over(row, publisher):
                self._finish(publisher, "worker_lost", error=(
                    "worker_lost", f"the stream's worker died more than {self.config.lease.max_takeovers} times "
                    f"within {self.config.lease.takeover_window:g} s; it was not passed on again"))
                return
            reason = self._loop(source, settings, publisher, pull=row.source_url is not None)
            if self._superseded:
                return
            self._finish(publisher, reason)
        except _Gone:
            log.info("live %s deleted while running; removing its media", self.stream_id)
            self.storage.delete_prefix(layout.media_prefix(self.stream_id))
        except AbrError as exc:
            log.warning("live %s errored: %s", self.stream_id, exc.message)
            self._safe_update(status=state.ERRORED, error_code=exc.code, error_message=exc.message, ended_at=utcnow())
        except Exception:
            log.exception("live %s: unexpected failure", self.stream_id)
            self._safe_update(status=state.ERRORED, error_code="internal",
                              error_message="an internal error stopped the stream; it has been logged",
                              ended_at=utcnow())
            raise
        finally:
            beating.set()
            shutil.rmtree(self.work, ignore_errors=True)

    def _load_key(self, row: LiveStream) -> ContentKey | None:
        """The stream's content key when its playback id is encrypted; an encrypted stream never runs clear."""
        with Session(self.engine) as s:
            playback = s.get(PlaybackId, row.playback_id) if row.playback_id else None
        if playback is None or playback.policy != "encrypted":
            return None
        if self.config.content_key is None:
            raise AbrError("encrypted playback is not configured on this worker (no key master)",
                           code="unprocessable")
        try:
            key = self.config.content_key(self.stream_id)
        except AbrError:
            raise  # NotFound: no key was made with the stream
        except Exception as exc:  # noqa: BLE001 - a key master missing, malformed or not the one that wrapped it
            raise AbrError(f"the stream's content key cannot be loaded ({type(exc).__name__}): check ABR_KEY_MASTER",
                           code="unprocessable") from None
        log.info("live %s: encrypted with content key %s", self.stream_id, key.kid_uuid)
        return key

    def _take_over(self, row: LiveStream, publisher: LivePublisher) -> bool:
        """The stream was live under a run that died: continue what it published (same playback id,
        same segment numbering, the recording keeps every segment), after a discontinuity.

        False when this takeover is over the cap (LeasePolicy.max_takeovers): the caller ends the
        stream as errored, with what was published restored so that it ends and records whole."""
        times, allowed = count_takeover(row.takeovers, utcnow(), self.config.lease)
        self._update(takeovers=times)
        # The dead run's work files (its ffmpegs died with it: PR_SET_PDEATHSIG) are of no use now.
        for old in (self.config.work_dir / "live" / self.stream_id).glob("*"):
            if old.name != self.run_id:
                shutil.rmtree(old, ignore_errors=True)
        published = restore_state(self.storage, self.stream_id)
        if published is None:
            return allowed  # nothing published yet (a first start, or a run that died before its first segment)
        publisher.restore(published.tracks, published.periods, published.inits)
        if not allowed:
            log.error("live %s: taken over %d times within %g s; stopping it", self.stream_id, len(times),
                      self.config.lease.takeover_window)
            return False
        self.plan = plan_from_dict(row.plan) if row.plan else None
        log.warning("live %s: taken over (from %s); continuing after %.1f s of media (%d periods)", self.stream_id,
                    self.previous_worker or "a run the takeover pass freed", publisher.media_end,
                    len(publisher.periods))
        if row.status != state.RECONNECTING:
            self._update(status=state.RECONNECTING)
        return True

    def _safe_update(self, **fields) -> None:
        if self._superseded:
            return  # the row is another run's now: it reports the stream's state
        try:
            self._update(**fields)
        except (_Gone, AbrError):
            pass

    def _loop(self, source: str, settings: dict, publisher: LivePublisher, *, pull: bool) -> str:
        """Run sessions until the stream ends; returns why ('stopped', 'timeout', 'never_connected')."""
        lost_at = time.monotonic()  # the grace period also bounds the first connection
        attempt = 0
        last_error = ""
        while True:
            if self._should_stop():
                return "stopped"
            if time.monotonic() - lost_at > self.config.reconnect_grace:
                if publisher.segment_count:
                    return "timeout"
                if pull:
                    raise AbrError(f"the source could not be opened: {last_error or 'no answer'}",
                                   code="source_unreachable")
                return "never_connected"
            try:
                src = source if pull else self._push_source(source)
                produced = self._session(src, settings, publisher, attempt, pull=pull)
            except Cancelled:
                return "stopped"
            except AddressNotAllowed:
                raise  # the policy will not change by retrying: the stream errors with the reason
            except AbrError as exc:
                produced, last_error = 0, exc.message
                log.info("live %s: source not available (%s)", self.stream_id, exc.message)
            attempt += 1
            if produced:
                lost_at, attempt = time.monotonic(), 1
                if not self._should_stop():
                    self._update(status=state.RECONNECTING)
                    log.info("live %s: source dropped; waiting up to %.0f s", self.stream_id,
                             self.config.reconnect_grace)
                continue
            time.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)] if pull else BACKOFF[0])

    def _push_source(self, rtmp_source: str) -> str:
        """Where a pushed stream is read now: the SRT relay when an SRT publisher holds the key, else nginx-rtmp.

        Asked again on every (re)connect, so a publisher may come back over the other protocol.
        """
        base = self.config.srt_pull_base
        if base and srt_publishing(base, self._stream_key):
            return srt_relay_url(base, self._stream_key)
        return rtmp_source

    def _open(self, stack: contextlib.ExitStack, source: str, *, pull: bool) -> SourceReader:
        """Start the reader: a pull source checked now (DNS may have changed since creation) and pinned:
        rtmp/srt by IP, rtsp(s)/rtmps through the relay (TLS upstream, RTSP redirects refused), http(s)
        through the checked proxy. Our own RTMP ingest as it is."""
        url, extra, whitelist, formats = source, (), None, None
        if pull and urlsplit(source).scheme.lower() in ("http", "https"):
            proxy = stack.enter_context(hls_proxy.PullProxy(source, self.config.pull_policy))
            url, whitelist, formats = proxy.entry_url, hls_proxy.WHITELIST, hls_proxy.FORMATS
            self._guard = proxy
        elif pull and (scheme := urlsplit(source).scheme.lower()) in ("rtsp", "rtsps", "rtmps"):
            ip = check_source(source, self.config.pull_policy)
            tls_host = urlsplit(source).hostname if scheme in ("rtsps", "rtmps") else None
            relay = stack.enter_context(RtspRelay(ip, source_port(source), tls_host=tls_host,
                                                  scan=scheme != "rtmps"))
            url = relay.url_for(source)
            extra = ("-rtmp_tcurl", rtmp_tcurl(source)) if scheme == "rtmps" else ()
            self._guard = relay
        elif pull:
            pinned = pin_source(source, self.config.pull_policy)
            url, extra = pinned.url, pinned.input_options
        reader = SourceReader.start(reader_argv(self.config.ffmpeg, url, extra, whitelist=whitelist, formats=formats))
        stack.callback(reader.stop)
        return reader

    def _check_refusal(self) -> None:
        if self._guard is not None and self._guard.refusal is not None:
            raise self._guard.refusal

    def _session(self, source: str, settings: dict, publisher: LivePublisher, attempt: int, *, pull: bool) -> int:
        """One opening of the source (reader ffmpeg -> encoder ffmpeg); returns how many segments it produced."""
        self._guard = None
        with contextlib.ExitStack() as stack:
            reader = self._open(stack, source, pull=pull)
            try:
                info = reader.wait_info(timeout=self.config.probe_timeout, cancel=self._should_stop,
                                        check=self._check_refusal)
            except SourceError:
                if self._guard is not None and self._guard.failure:  # it knows better than ffmpeg (a 502, a hang-up)
                    raise SourceError(self._guard.failure) from None
                raise
            if self.plan is None:
                self.plan = plan_live(info, settings)
                self._update(plan=self.plan.to_dict())
            return self._encode(reader, self.plan, publisher, attempt)

    def _encode(self, reader: SourceReader, plan: LivePlan, publisher: LivePublisher, attempt: int) -> int:
        """The encoder ffmpeg over the reader's pipe; returns how many segments it produced."""
        out_dir = self.work / f"session-{len(publisher.periods)}-{attempt}"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        job = EncodeJob(source=Path("live"), out_dir=out_dir, ladder=plan.ladder, audio=plan.audio,
                        segment_duration=publisher.segment_duration, frame_rate=plan.frame_rate,
                        more_audio=plan.more_audio, content_key=self.content_key)
        renditions = {r.id: r for r in plan.renditions}
        outputs = {rep: renditions[rid] for rep, rid in stream_map(job).items()}
        offset = publisher.media_end if publisher.segment_count else FIRST_OFFSET
        publisher.begin_session(out_dir, outputs, offset=offset)
        first_session = not publisher.periods
        produced = 0

        def poll() -> None:
            nonlocal produced
            self._check_refusal()  # an HLS playlist that turns to a refused address ends the stream
            added = publisher.collect()
            if added and not produced:
                now = utcnow()
                fields = {"status": state.ACTIVE, "connected_at": now}
                if not first_session:
                    with Session(self.engine) as s:
                        fields["reconnects"] = self._row(s).reconnects + 1
                self._update(**fields)
                log.info("live %s active (period %d)", self.stream_id, len(publisher.periods) - 1)
            produced += added

        def progress(p: Progress) -> None:
            self.speed = p.speed

        interval = PART_POLL_INTERVAL if publisher.part_target is not None else POLL_INTERVAL

        try:
            if self.plugins.active and plan.ladder is not None:
                self.plugins.run(self.config.ffmpeg, job, source_url="pipe:0", offset=offset, poll=poll,
                                 input_options=PIPE_INPUT, stdin=reader.proc.stdout,
                                 part_target=publisher.part_target, poll_interval=interval,
                                 duration=None, on_progress=progress, cancel=self._should_stop)
            else:
                argv = build_live_argv(self.config.ffmpeg, job, source_url="pipe:0", offset=offset,
                                       input_options=PIPE_INPUT, part_target=publisher.part_target)
                run_ffmpeg(argv, duration=None, on_progress=progress, cancel=self._should_stop, poll=poll,
                           stdin=reader.proc.stdout, poll_interval=interval)
        except Cancelled:
            poll()  # ffmpeg finished its last segment on SIGTERM
            raise
        except AddressNotAllowed:
            publisher.collect()
            raise
        except AbrError as exc:
            poll()
            if not produced:
                self._check_refusal()
                reader.stop()
                # What the user sees is the class of the source's failure; both texts go to the log.
                log.info("live %s: encoder failed: %s; reader: %s", self.stream_id, exc.message,
                         reader.stderr_tail[-2000:])
                if self._guard is not None and self._guard.failure:
                    raise SourceError(self._guard.failure) from exc
                raise SourceError(classify(reader.stderr_tail) if reader.proc.returncode else NO_MEDIA) from exc
            log.info("live %s: ffmpeg ended: %s", self.stream_id, exc.message)
        poll()
        shutil.rmtree(out_dir, ignore_errors=True)
        return produced

    def _plugin_health(self, kind: str, details: dict) -> None:
        """Frame plugins lagging or turned off: kept in `plan.frame_plugins` (the API shows it) and sent as events."""
        with Session(self.engine, expire_on_commit=False) as s:
            row = self._row(s)
            plan = dict(row.plan or {})
            health = dict(plan.get("frame_plugins") or {"lagging": False, "dropped_frames": 0, "turned_off": []})
            if kind == "lagging":
                health.update(lagging=details["lagging"], dropped_frames=details["dropped_frames"])
            else:
                health["turned_off"] = [*health["turned_off"], details]
            plan["frame_plugins"] = health
            row.plan = plan
            s.add(row)
            s.commit()
        if self.events is not None:
            event = "live_stream.lagging" if kind == "lagging" else "live_stream.plugin_failed"
            try:
                self.events(self.engine, event, data={"id": self.stream_id, **details})
            except Exception:
                log.warning("live %s: could not emit %s", self.stream_id, event, exc_info=True)

    def _finish(self, publisher: LivePublisher, reason: str, error: tuple[str, str] | None = None) -> None:
        """End the stream: ENDLIST/static MPD, the recording, then `ended` (or `errored` with `error`:
        (code, message), where what was published still ends cleanly and is recorded)."""
        if reason == "never_connected":
            log.info("live %s: the publisher left before any media arrived", self.stream_id)
            self._update(status=state.IDLE, worker_id=None)
            return
        publisher.end()
        recording_id = None
        with Session(self.engine) as s:
            record = self._row(s).settings.get("record", True)
        if record and publisher.segment_count:
            store = None
            if self.content_key is not None:
                if self.config.store_key is None:
                    raise AbrError("encrypted recording needs the worker's key store", code="unprocessable")
                store = lambda asset_id: self.config.store_key(asset_id, self.content_key)  # noqa: E731
            recording_id = create_recording(self.engine, self.storage, self.stream_id, publisher, store_key=store)
            if self.config.after_recording is not None:
                try:
                    self.config.after_recording(recording_id)
                except Exception:  # noqa: BLE001 - the stream ends and records whatever this hook does
                    log.exception("live %s: after the recording %s", self.stream_id, recording_id)
        final = {"status": state.ENDED} if error is None else {
            "status": state.ERRORED, "error_code": error[0], "error_message": error[1]}
        self._update(**final, ended_at=utcnow(), recording_asset_id=recording_id, stop_requested=False)
        log.info("live %s %s (%s); recording %s", self.stream_id, final["status"], reason, recording_id)


def _is(column, value):
    """`column = value`, or `IS NULL` for None (SQL's `= NULL` matches nothing)."""
    return column.is_(None) if value is None else column == value


def _aware(value):
    from datetime import UTC

    return value if value.tzinfo else value.replace(tzinfo=UTC)
