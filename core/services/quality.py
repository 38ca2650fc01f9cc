"""Per-title ladders and measured quality for the VOD pipeline (called by core/services/transcode.py).

- `analyse_families`: the per-title analysis of every codec family (core/media/analysis.py),
  kept in storage (`layout.analysis_key`) so a retried job plans the very same ladder
  and writes the same segment URLs, without measuring again.
- `record_ladders`: the rendition rows follow the analysed ladders (the API planned the
  fixed table at upload, before any worker had seen the picture).
- `full_report`: after publishing, each video rendition's VMAF over its whole length
  (settings `quality_report: true`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import layout
from core.db.models import Rendition
from core.media import analysis
from core.media.ladder import plan_ladder
from core.media.model import Ladder, Presentation
from core.media.pertitle import QualityMeasurements, RatePoint
from core.media.probe import MediaInfo
from core.storage import Storage

log = logging.getLogger(__name__)


def analyse_families(ffmpeg: str, storage: Storage, asset_id: str, info: MediaInfo, fixed: list[Ladder], *,
                     source: Path, segment_duration: float, work_dir: Path,
                     cancel: Callable[[], bool] | None = None,
                     timeout: float | None = None, nice: int = 0) -> dict[str, QualityMeasurements]:
    """codec -> measurements for every family of `fixed` (the fixed-table ladders: the candidate sizes)."""
    key = layout.analysis_key(asset_id)
    if storage.exists(key):
        stored = json.loads(storage.get_bytes(key))
        if all(lad.codec in stored for lad in fixed):
            return {codec: _from_dict(d) for codec, d in stored.items()}
    found: dict[str, QualityMeasurements] = {}
    video = info.video
    display = (video.display_width, video.display_height)
    # H.264 first: an AV1 ladder aims at the H.264 table's quality on the same samples (its table points,
    # or, without an H.264 family, the H.264 table measured for it).
    for ladder in sorted(fixed, key=lambda lad: lad.codec != "h264"):
        started = time.monotonic()
        out = work_dir / f"analysis-{ladder.codec}"
        shutil.rmtree(out, ignore_errors=True)
        reference = None
        if ladder.codec == "av1":
            reference = (analysis.table_points(found["h264"]) if "h264" in found
                         else plan_ladder(codec="h264", display_width=display[0], display_height=display[1],
                                          frame_rate=video.frame_rate, max_rungs=len(ladder.renditions)))
        found[ladder.codec] = analysis.analyse(
            ffmpeg, source, ladder, duration=info.duration, display=display, segment_duration=segment_duration,
            work_dir=out, cancel=cancel, timeout=timeout, nice=nice, reference=reference)
        shutil.rmtree(out, ignore_errors=True)
        log.info("asset %s: %s analysed in %.1f s (%d points)", asset_id, ladder.codec, time.monotonic() - started,
                 len(found[ladder.codec].points))
    data = json.dumps({codec: asdict(m) for codec, m in found.items()}, separators=(",", ":")).encode()
    storage.put_bytes(key, data, content_type="application/json")
    return found


def record_ladders(engine: Engine, asset_id: str, ladders: list[Ladder]) -> None:
    """Make the asset's video rendition rows the renditions of `ladders` (with their measured quality)."""
    planned = {r.id: (ladder, r) for ladder in ladders for r in ladder.renditions}
    codecs = {ladder.codec for ladder in ladders}
    with Session(engine) as s:
        rows = {row.name: row for row in s.exec(select(Rendition).where(Rendition.asset_id == asset_id)).all()}
        for name, row in rows.items():
            if row.codec in codecs and name not in planned:
                s.delete(row)  # a fixed-table rung the per-title ladder does not have
        for rid, (ladder, r) in planned.items():
            row = rows.get(rid) or Rendition(asset_id=asset_id, name=rid, codec=r.codec)
            row.width, row.height, row.bitrate = r.width, r.height, r.bitrate
            row.frame_rate = float(r.frame_rate) if r.frame_rate else None
            q = ladder.quality.get(rid)
            row.quality = asdict(q) if q is not None else None
            s.add(row)
        s.commit()


def full_report(engine: Engine, storage: Storage, ffmpeg: str, asset_id: str, presentation: Presentation, *,
                source: Path, work_dir: Path, cancel: Callable[[], bool] | None = None,
                timeout: float | None = None) -> None:
    """Score every published video track against the whole source and store it as `quality.full`."""
    video = [t for t in presentation.video_tracks if t.complete]
    if not video:
        return
    top = max(video, key=lambda t: t.rendition.width * t.rendition.height).rendition
    size = analysis.score_size(top.width, top.height)
    work_dir.mkdir(parents=True, exist_ok=True)
    for track in video:
        joined = work_dir / f"{track.id}.{'mp4' if track.container == 'mp4' else 'webm'}"
        with joined.open("wb") as out:
            out.write(storage.get_bytes(layout.media_key(asset_id, track.init_uri)))
            for seg in track.segments:
                out.write(storage.get_bytes(layout.media_key(asset_id, track.segment_uri(seg.number))))
        (frames,) = analysis.score(ffmpeg, source, [joined], None, rate=track.rendition.frame_rate,
                                   size=size, work_dir=work_dir, cancel=cancel, timeout=timeout)
        joined.unlink(missing_ok=True)
        if not frames:
            continue
        full = {"vmaf_mean": round(sum(frames) / len(frames), 2),
                "vmaf_p5": round(analysis.percentile(frames, 5), 2), "frames": len(frames)}
        with Session(engine) as s:
            row = s.exec(select(Rendition).where(Rendition.asset_id == asset_id,
                                                 Rendition.name == track.id)).first()
            if row is not None:
                row.quality = {**(row.quality or {}), "full": full}
                s.add(row)
                s.commit()
        log.info("asset %s: %s VMAF %.2f (p5 %.2f) over %d frames", asset_id, track.id, full["vmaf_mean"],
                 full["vmaf_p5"], len(frames))


def _from_dict(d: dict) -> QualityMeasurements:
    return QualityMeasurements(points=tuple(RatePoint(**p) for p in d["points"]), samples=d["samples"],
                               sample_seconds=d["sample_seconds"],
                               reference=tuple(RatePoint(**p) for p in d.get("reference", ())))
