"""Publish a live encode: each segment the moment ffmpeg closes it → storage → `live.json`.

Completion is detected as in `core.media.family` (the dash muxer writes
`<name>.tmp` and renames it when the segment is closed). Each session's
files are renumbered into one sequence per rendition, so a reconnect
continues the same URIs (`{rendition}/00042.m4s`) and a segment's bytes
never change under its name (segments stay immutable for CDNs).

Order of writes, per segment: the segment, then `live.json` (the commit
point, as `presentation.json` is for VOD). The window is cut from the full
list on every write; without recording, segments that left the window
(plus a margin for players still fetching them) are deleted.

Low latency (`part_target` set): the segment still being written
(`<name>.tmp`, which the encoder appends one CMAF fragment to per part
target) is read on every poll; each fragment that is whole is published as a
part object (`{rendition}/00042.3.m4s`), then `live.json` lists it. A
segment's last part is published just before the segment itself. Parts are
listed for the last PART_SEGMENTS segments only (a player joins at the edge)
and deleted a margin later: the segments hold the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from core import layout
from core.errors import AbrError
from core.live.thumbnail import jpeg_from_segment
from core.media.live_model import (
    LIVE_PRESENTATION,
    RECORDING_PRESENTATION,
    THUMBNAIL,
    LivePresentation,
    Part,
    Period,
    part_uri,
    window,
)
from core.media.cmaf_parts import complete_fragments
from core.media.family import contiguous
from core.media.inspect import read_init, read_segment
from core.media.encryption import ContentKey
from core.media.model import Presentation, Protection, Rendition, Track
from core.storage import Storage

log = logging.getLogger(__name__)
DELETE_MARGIN_SEGMENTS = 10  # kept past the window for players that fetched the playlist just before
RECORDING_EVERY = 15  # segments of the first track between writes of recording.json
THUMBNAIL_INTERVAL = 2.0  # seconds between thumbnail refreshes
PART_SEGMENTS = 3  # completed segments whose parts stay listed (RFC 8216bis: at least 3 target durations)
# A period's wall clock is first taken from its first segment: "its last frame was live when it closed".
# An encoder that starts behind (the reader's probe buffered seconds of media, x264 start-up) closes it
# late, so that overstates the wall clock by the backlog, and every PROGRAM-DATE-TIME and the MPD's
# availabilityStartTime with it: measured 3.0 s late on the 720p latency bench, where dash.js (which
# steers by availabilityStartTime) reported 1.17 s of latency at 4.19 s glass to glass. A frame cannot
# be encoded before it was live, so each later segment's close time minus its media span is also an
# upper bound on the period's wall clock; while the encoder works off its backlog (this many seconds of
# media at most) the period takes the lowest. Only moves earlier, by at least PERIOD_MIN_STEP (players
# see availabilityStartTime move once or twice in a stream's first seconds, not on every segment).
PERIOD_SETTLE_S = 30.0
PERIOD_MIN_STEP = 0.1


@dataclass
class _Output:
    """One ffmpeg output stream of the current session."""

    rep_id: str  # ffmpeg's $RepresentationID$
    rendition: Rendition
    next_file: int = 1  # the muxer's $Number$, restarts at 1 every session
    part_offset: int = 0  # bytes of the current segment file already published as parts


class LivePublisher:
    def __init__(self, storage: Storage, stream_id: str, *, segment_duration: float, dvr_window: float,
                 record: bool, clock=time.time, part_target: float | None = None,
                 content_key: ContentKey | None = None) -> None:
        """`content_key`: an encrypted stream's key. Only its id goes into live.json and recording.json
        (the manifests' key tags); the key itself decrypts the thumbnail's segment in process."""
        self.storage, self.stream_id = storage, stream_id
        self.content_key = content_key
        self.protection = Protection(default_kid=content_key.kid_uuid) if content_key is not None else None
        self.segment_duration, self.dvr_window, self.record = segment_duration, dvr_window, record
        self.clock = clock
        self.part_target = part_target
        self.parts: dict[str, list[Part]] = {}  # rendition id -> the parts still listed
        self._part_objects: dict[str, list[tuple[int, str]]] = {}  # rendition id -> (segment, key) to delete later
        self.tracks: dict[str, Track] = {}  # rendition id -> every segment still kept
        self.periods: list[Period] = []
        self._inits: dict[str, bytes] = {}
        self._outputs: list[_Output] = []
        self._out_dir: Path | None = None
        self._pending_period: float | None = None
        self._order: list[str] = []  # rendition ids, video high -> low then audio
        self._last_thumbnail = 0.0
        self._since_recording = 0
        self.ended = False

    # -- sessions ---------------------------------------------------------------------------
    def begin_session(self, out_dir: Path, outputs: dict[str, Rendition], *, offset: float) -> None:
        """A new ffmpeg run writing into `out_dir`, its timeline starting at `offset` seconds."""
        self._out_dir = out_dir
        self._outputs = [_Output(rep_id, r) for rep_id, r in outputs.items()]
        for r in outputs.values():
            if r.id not in self._order:
                self._order.append(r.id)
        self._pending_period = offset

    @property
    def media_end(self) -> float:
        """Where the timeline ends so far (the next session's offset)."""
        ends = [(t.segments[-1].start + t.segments[-1].duration) / t.timescale for t in self.tracks.values() if t.segments]
        return max(ends) if ends else 0.0

    @property
    def segment_count(self) -> int:
        return max((len(t.segments) for t in self.tracks.values()), default=0)

    def collect(self) -> int:
        """Publish every segment (and, low latency, part) completed since the last call; returns how many segments."""
        added = parts = 0
        for output in self._outputs:
            while (segment_path := self._segment_path(output)).exists():
                if self.part_target is not None:
                    parts += self._add_parts(output, segment_path)
                self._add(output, segment_path)
                output.next_file += 1
                output.part_offset = 0
                added += 1
            if self.part_target is not None:
                parts += self._add_parts(output, segment_path.with_name(segment_path.name + ".tmp"))
        ready = all(t.segments for t in self.tracks.values()) and len(self.tracks) == len(self._outputs)
        if added and ready:
            self.publish()
            self._maybe_thumbnail()
        elif parts and ready and self._pending_period is None:
            # A new session's parts wait for its period (the first segment fixes its wall clock).
            self.publish()
        return added

    def _add_parts(self, output: _Output, path: Path) -> int:
        """Publish the whole fragments of `path` (a growing `.tmp` or a just-completed segment) not yet published."""
        try:
            with path.open("rb") as f:
                f.seek(output.part_offset)
                data = f.read()
        except FileNotFoundError:  # renamed meanwhile: the next poll takes it as a completed segment
            return 0
        fragments = complete_fragments(data)
        if not fragments:
            return 0
        rid = output.rendition.id
        if rid not in self.tracks:
            init_path = self._init_path(output)
            if not init_path.exists():
                return 0
            self._check_init(output, init_path, None)
        track = self.tracks[rid]
        number = track.segments[-1].number + 1 if track.segments else 1
        listed = self.parts.setdefault(rid, [])
        index = sum(1 for p in listed if p.segment == number)
        for fragment in fragments:
            key = self._key(part_uri(track, number, index))
            self.storage.put_bytes(key, data[fragment.offset:fragment.offset + fragment.size])
            listed.append(Part(number, index, fragment.duration, fragment.independent))
            self._part_objects.setdefault(rid, []).append((number, key))
            index += 1
        output.part_offset += fragments[-1].offset + fragments[-1].size
        self._trim_parts(rid, number)
        return len(fragments)

    def _trim_parts(self, rid: str, current: int) -> None:
        listed = self.parts[rid]
        self.parts[rid] = [p for p in listed if p.segment >= current - PART_SEGMENTS]
        objects = self._part_objects[rid]
        while objects and objects[0][0] < current - PART_SEGMENTS - DELETE_MARGIN_SEGMENTS:
            self.storage.delete(objects.pop(0)[1])

    def _segment_path(self, output: _Output) -> Path:
        ext = "webm" if output.rendition.codec == "vp8" else "m4s"
        return self._out_dir / f"seg-{output.rep_id}-{output.next_file:05d}.{ext}"

    def _init_path(self, output: _Output) -> Path:
        ext = "webm" if output.rendition.codec == "vp8" else "m4s"
        return self._out_dir / f"init-{output.rep_id}.{ext}"

    def _add(self, output: _Output, path: Path) -> None:
        rid = output.rendition.id
        init_path = self._init_path(output)
        track = self.tracks.get(rid)
        if output.next_file == 1:
            self._check_init(output, init_path, track)
            track = self.tracks[rid]
        number = track.segments[-1].number + 1 if track.segments else 1
        segment = contiguous(track, read_segment(init_path, path, number))
        if self._pending_period is not None:
            # The first segment of a session fixes the period's wall clock: it was
            # complete (its last frame live) now.
            end = (segment.start + segment.duration) / track.timescale
            self.periods.append(Period(id=f"p{len(self.periods)}", start=self._pending_period,
                                       wall=self.clock() - (end - self._pending_period)))
            self._pending_period = None
        else:
            self._settle_period((segment.start + segment.duration) / track.timescale)
        self.storage.put_file(self._key(track.segment_uri(number)), path, move=True)
        track.segments.append(segment)
        if rid == self._order[0]:
            self._since_recording += 1
        self._trim(track)

    def _settle_period(self, end: float) -> None:
        """The current period's wall clock, lowered to what a segment ending at media time `end` that
        closed now allows (see PERIOD_SETTLE_S); never before the previous period's media ended."""
        period = self.periods[-1]
        if end - period.start > PERIOD_SETTLE_S:
            return
        wall = self.clock() - (end - period.start)
        if len(self.periods) > 1:
            before = self.periods[-2]
            wall = max(wall, before.wall + (period.start - before.start))
        if wall <= period.wall - PERIOD_MIN_STEP:
            log.info("live %s: period %s's wall clock %.2f s earlier (the encoder worked off a start-up backlog)",
                     self.stream_id, period.id, period.wall - wall)
            self.periods[-1] = dataclasses.replace(period, wall=wall)

    def _check_init(self, output: _Output, init_path: Path, track: Track | None) -> None:
        data = init_path.read_bytes()
        rid = output.rendition.id
        if track is None:
            codecs, timescale = read_init(init_path)
            container = "webm" if output.rendition.codec == "vp8" else "mp4"
            self.tracks[rid] = Track(rendition=output.rendition, codecs=codecs, container=container,
                                     timescale=timescale)
        elif data == self._inits.get(rid):
            return
        else:  # should not happen: the encoder settings are fixed for the stream's life
            log.warning("live %s: init segment of %s changed on reconnect", self.stream_id, rid)
        self._inits[rid] = data
        self.storage.put_bytes(self._key(self.tracks[rid].init_uri), data)

    def _trim(self, track: Track) -> None:
        if self.record:
            return
        keep = len(window(track, self.dvr_window)) + DELETE_MARGIN_SEGMENTS
        while len(track.segments) > keep:
            old = track.segments.pop(0)
            self.storage.delete(self._key(track.segment_uri(old.number)))

    # -- what is written ------------------------------------------------------------------
    def _key(self, relative: str) -> str:
        return layout.media_key(self.stream_id, relative)

    def live_presentation(self) -> LivePresentation:
        tracks = [dataclasses.replace(self.tracks[rid], segments=window(self.tracks[rid], self.dvr_window),
                                      complete=self.ended)
                  for rid in self._order if rid in self.tracks]
        return LivePresentation(
            presentation=Presentation(segment_duration=self.segment_duration, tracks=tracks, complete=self.ended,
                                      protection=self.protection),
            periods=list(self.periods), dvr_window=self.dvr_window, ended=self.ended, published_at=self.clock(),
            part_target=self.part_target,
            parts={rid: list(self.parts[rid]) for rid in self._order if rid in self.parts} if not self.ended else {})

    def publish(self) -> None:
        data = json.dumps(self.live_presentation().to_dict(), separators=(",", ":")).encode()
        self.storage.put_bytes(self._key(LIVE_PRESENTATION), data, content_type="application/json")
        # Sooner than RECORDING_EVERY when the window is shorter: a worker taking the stream over
        # finds every segment in live.json or recording.json (core/live/takeover.py).
        every = min(RECORDING_EVERY, max(1, int(self.dvr_window / self.segment_duration) - 1))
        if self.record and self._since_recording >= every:
            self.write_recording()

    def recorded_presentation(self) -> Presentation:
        """Every segment since the start, as a complete VOD presentation."""
        tracks = [dataclasses.replace(self.tracks[rid], segments=list(self.tracks[rid].segments), complete=True)
                  for rid in self._order if rid in self.tracks and self.tracks[rid].segments]
        return Presentation(segment_duration=self.segment_duration, tracks=tracks, complete=True,
                            protection=self.protection)

    def write_recording(self) -> None:
        self._since_recording = 0
        data = json.dumps(self.recorded_presentation().to_dict(), separators=(",", ":")).encode()
        self.storage.put_bytes(self._key(RECORDING_PRESENTATION), data, content_type="application/json")

    def end(self) -> None:
        """No more segments: ENDLIST / static MPD from now on."""
        self.ended = True
        if self.tracks and all(t.segments for t in self.tracks.values()):
            self.publish()
        if self.record and self.tracks:
            self.write_recording()

    def restore(self, tracks: list[Track], periods: list[Period], inits: dict[str, bytes]) -> None:
        """Continue what another (dead) run published: its segments, periods and init segments.

        The next session then starts a new period at `media_end` (a discontinuity), numbering on.
        """
        self.tracks = {t.id: t for t in tracks}
        self._order = [t.id for t in tracks]
        self.periods = list(periods)
        self._inits = dict(inits)
        if self.record and self.tracks:
            self.write_recording()  # what the dead run published since its last write, kept at once

    def _maybe_thumbnail(self) -> None:
        now = time.monotonic()
        video = next((self.tracks[r] for r in self._order if r in self.tracks
                      and not self.tracks[r].rendition.is_audio), None)
        if video is None or now - self._last_thumbnail < THUMBNAIL_INTERVAL:
            return
        self._last_thumbnail = now
        try:
            segment = self.storage.get_bytes(self._key(video.segment_uri(video.segments[-1].number)))
            jpeg = jpeg_from_segment(self._inits[video.id], segment,
                                     key=self.content_key.key if self.content_key is not None else None)
            self.storage.put_bytes(self._key(THUMBNAIL), jpeg, content_type="image/jpeg")
        except AbrError as exc:  # a thumbnail is never worth stopping the stream
            log.warning("live %s: thumbnail failed: %s", self.stream_id, exc.message)
