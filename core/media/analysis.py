"""Per-title analysis: encode short samples of the source, score them with VMAF, return measurements.

The measurements feed `plan_ladder(measurements=...)` (core/media/pertitle.py
chooses the rungs). What is run, for one codec family:

- `plan_samples`: a few short windows spread evenly over the source (the
  middle of each equal stretch, so a title's opening, middle and end all
  count). Their number grows with the duration, their length is fixed, so
  the analysis stays a small, bounded fraction of the encode (a 10-minute
  source: 6 samples of 2 s, 2 % of the picture).
- Every sample is encoded at each candidate size (the fixed ladder's rungs)
  × each of `RATE_LEVELS` (fractions of the fixed table's bitrate), by
  `build_encode_argv` itself: the family's real encoder, preset, VBV and
  keyframe settings, one ffmpeg per sample and level, as the real encode
  runs one ffmpeg for all rungs.
- Each output is scored against the same window of the source, both scaled
  to the display size (capped at 1080 lines: the VMAF v0.6.1 model is
  trained for a 1080p screen at 3 picture heights), by ffmpeg's libvmaf
  with the per-frame log read back for the 5th percentile.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from core.errors import FFmpegError
from core.media.encode import EncodeJob, build_encode_argv, stream_map
from core.media.model import Ladder
from core.media.pertitle import QualityMeasurements, RatePoint
from core.media.runner import run_ffmpeg

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
MAX_SAMPLES = 6
# Fractions of the fixed table's bitrate each size is measured at: 2.5x apart, from the table
# itself (the per-title ladder never spends more) down to 1/16 of it, where a static or
# animated picture typically still scores in the 90s.
RATE_LEVELS: tuple[float, ...] = (1.0, 0.4, 0.16, 0.064)
# Score every 2nd frame: VMAF costs about as much as the encodes, and at 2 s samples the
# per-frame spread (p5) is still taken from 25-30 frames per sample.
VMAF_SUBSAMPLE = 2
SCORE_MAX_SHORT = 1080


@dataclass(frozen=True)
class Sample:
    start: float  # seconds into the source
    length: float


def plan_samples(duration: float, *, seconds: float = SAMPLE_SECONDS, most: int = MAX_SAMPLES,
                 activity: list[int] | None = None) -> list[Sample]:
    """Where to sample a source of `duration` seconds (pure): 2 samples, one more per 2 minutes, at most `most`.

    One sample per equal stretch of the source. Without `activity` it is the stretch's middle;
    with it (bytes of the source's video per second, `source_activity`) it is the stretch's
    busiest window: the hardest picture of each part decides the bits, so a title whose
    opening is chaos and whose middle is calm is not measured on the calm alone (measured:
    bench/quality.py's animation, middle-only samples put its 720p rung 16 VMAF points low).
    """
    if duration <= 0:
        return []
    count = max(1, min(most, 2 + int(duration // 120)))
    length = min(seconds, duration / count)
    stretch = duration / count
    samples = []
    for i in range(count):
        start = i * stretch + (stretch - length) / 2
        if activity:
            # Whole-second starts inside the stretch; the window's bytes, first-best on ties.
            first, last = math.ceil(i * stretch), math.floor((i + 1) * stretch - length)
            span = math.ceil(length)
            if last >= first:
                start = max(range(first, last + 1), key=lambda k: (sum(activity[k:k + span]), -k))
        samples.append(Sample(start=round(start, 3), length=round(length, 3)))
    return samples


def source_activity(source: Path) -> list[int]:
    """Bytes of the first video stream per second of the source: a complexity proxy read without decoding.

    A demux only (packet sizes), so it costs well under a second for a 10-minute 1080p file.
    [] when the container gives no timestamps.
    """
    import av

    bins: list[int] = []
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        start = stream.start_time or 0
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0:
                continue
            second = max(0, int((packet.pts - start) * base))
            if second >= len(bins):
                bins.extend([0] * (second + 1 - len(bins)))
            bins[second] += packet.size
    return bins


def score_size(width: int, height: int) -> tuple[int, int]:
    """The display size VMAF is computed at: the source's, scaled down to at most 1080 lines (even)."""
    short = min(width, height)
    if short <= SCORE_MAX_SHORT:
        return width - width % 2, height - height % 2
    factor = SCORE_MAX_SHORT / short
    return 2 * round(width * factor / 2), 2 * round(height * factor / 2)


def analyse(
    ffmpeg: str,
    source: Path,
    ladder: Ladder,
    *,
    duration: float,
    display: tuple[int, int],
    segment_duration: float,
    work_dir: Path,
    samples: list[Sample] | None = None,
    cancel: Callable[[], bool] | None = None,
    timeout: float | None = None,
) -> QualityMeasurements:
    """Measure `ladder`'s sizes at `RATE_LEVELS` on samples of `source` (the fixed ladder goes in)."""
    if samples is None:
        try:
            activity = source_activity(source)
        except Exception as exc:  # noqa: BLE001  (a demux hiccup must not fail the encode: middle samples)
            log.warning("source activity unreadable (%s); sampling stretch middles", exc)
            activity = None
        samples = plan_samples(duration, activity=activity)
    rate = ladder.renditions[0].frame_rate or Fraction(30)
    size = score_size(*display)
    # (short side, level) -> per sample: bits, seconds, per-frame VMAF
    found: dict[tuple[int, float], list[tuple[int, float, list[float]]]] = {}
    for i, sample in enumerate(samples):
        for level in RATE_LEVELS:
            out = work_dir / f"s{i}-{level:g}"
            scaled = Ladder(ladder.codec, tuple(
                replace(r, bitrate=_at(r.bitrate, level), max_bitrate=_at(r.max_bitrate, level),
                        buffer_size=_at(r.buffer_size, level)) for r in ladder.renditions))
            job = EncodeJob(source=source, out_dir=out, ladder=scaled, audio=None,
                            segment_duration=segment_duration, frame_rate=rate,
                            start=sample.start, length=sample.length)
            out.mkdir(parents=True, exist_ok=True)
            run_ffmpeg(build_encode_argv(ffmpeg, job), duration=None, on_progress=None, cancel=cancel, timeout=timeout)
            files, bits = [], []
            for rep_id, rid in stream_map(job).items():
                path, size_bytes = _join(out, rep_id, out / f"{rid}.{_ext(ladder.codec)}")
                files.append(path)
                bits.append(size_bytes * 8)
            scores = score(ffmpeg, source, files, sample, rate=rate, size=size, work_dir=out,
                           cancel=cancel, timeout=timeout)
            for r, b, frames in zip(ladder.renditions, bits, scores):
                found.setdefault((min(r.width, r.height), level), []).append((b, sample.length, frames))
    points = []
    for (short, _level), runs in sorted(found.items(), key=lambda kv: (-kv[0][0], -kv[0][1])):
        frames = [v for _, _, f in runs for v in f]
        if not frames:
            continue
        bitrate = round(sum(b for b, _, _ in runs) / sum(s for _, s, _ in runs))
        points.append(RatePoint(short=_nominal(short, ladder), bitrate=bitrate,
                                vmaf_mean=round(statistics.fmean(frames), 2), vmaf_p5=round(percentile(frames, 5), 2)))
    return QualityMeasurements(points=tuple(points), samples=len(samples),
                               sample_seconds=round(sum(s.length for s in samples), 3))


def score(ffmpeg: str, source: Path, files: list[Path], sample: Sample | None, *, rate: Fraction,
          size: tuple[int, int], work_dir: Path, cancel: Callable[[], bool] | None = None,
          timeout: float | None = None, subsample: int = VMAF_SUBSAMPLE) -> list[list[float]]:
    """Per-frame VMAF of each of `files` against `source` (its `sample` window, or all of it).

    One ffmpeg decodes the source once and scores every file: the reference goes
    through the encode's own frame-rate conversion and square pixels, and both
    sides are scaled to `size` (a rung below the display is upscaled, as a player does).
    """
    w, h = size
    window = ["-ss", _num(sample.start), "-t", _num(sample.length)] if sample is not None else []
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
            "-protocol_whitelist", "file,pipe", *window, "-i", str(source)]
    for f in files:
        argv += ["-protocol_whitelist", "file,pipe", "-i", str(f)]
    n = len(files)
    prep = f"scale={w}:{h}:flags=bicubic,setsar=1,format=yuv420p,setpts=PTS-STARTPTS"
    graph = f"[0:v]fps={rate},{prep},split={n}" + "".join(f"[r{k}]" for k in range(n))
    logs = [work_dir / f"vmaf-{k}.json" for k in range(n)]
    for k in range(n):
        graph += (f";[{k + 1}:v]{prep}[d{k}];[d{k}][r{k}]libvmaf=log_fmt=json:log_path={_escape(logs[k])}"
                  f":n_subsample={subsample}:n_threads=2[o{k}]")
    argv += ["-filter_complex", graph]
    for k in range(n):
        argv += ["-map", f"[o{k}]", "-f", "null", "-"]
    run_ffmpeg(argv, duration=None, on_progress=None, cancel=cancel, timeout=timeout)
    out = []
    for path in logs:
        try:
            frames = json.loads(path.read_text())["frames"]
        except (OSError, ValueError, KeyError) as exc:
            raise FFmpegError(f"libvmaf wrote no scores ({exc})") from None
        out.append([float(f["metrics"]["vmaf"]) for f in frames if "vmaf" in f.get("metrics", {})])
    return out


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default), of a non-empty list."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def joined_track(out_dir: Path, rep_id: str, dest: Path) -> tuple[Path, int]:
    """Public name of `_join` for the full quality report."""
    return _join(out_dir, rep_id, dest)


def _join(out_dir: Path, rep_id: str, dest: Path) -> tuple[Path, int]:
    """Init + media segments of one dash-muxer output as one playable file; returns it and the media bytes."""
    ext = "webm" if dest.suffix == ".webm" else "m4s"
    init = out_dir / f"init-{rep_id}.{ext}"
    segments = sorted(out_dir.glob(f"seg-{rep_id}-*.{ext}"))
    if not init.exists() or not segments:
        raise FFmpegError(f"the analysis encode produced no segments for stream {rep_id}")
    media = 0
    with dest.open("wb") as out:
        out.write(init.read_bytes())
        for seg in segments:
            data = seg.read_bytes()
            media += len(data)
            out.write(data)
    return dest, media


def _nominal(short: int, ladder: Ladder) -> int:
    """The rung's nominal short side from its id (`h264-720p` -> 720): even rounding may have changed the pixels."""
    for r in ladder.renditions:
        if min(r.width, r.height) == short:
            return int(r.id.rsplit("-", 1)[1].rstrip("p"))
    return short


def _ext(codec: str) -> str:
    return "webm" if codec == "vp8" else "mp4"


def _at(value: int, level: float) -> int:
    return max(1000, round(value * level / 1000) * 1000)


def _escape(path: Path) -> str:
    """A path as a filter option value (':' and '\\' and quotes are special there)."""
    return "".join("\\" + c if c in "\\:'[],;" else c for c in str(path))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
