"""Per-title analysis: encode short samples of the source, score them with VMAF, return measurements.

The measurements feed `plan_ladder(measurements=...)` (core/media/pertitle.py
chooses the rungs). What is run, for one codec family:

- `plan_samples`: a few short windows, one per equal stretch of the source
  at its median window by the source's bytes (so a title's opening, middle
  and end all count, each by a typical picture).
  Their number grows with the duration, their length is fixed, so the
  analysis stays a small, bounded fraction of the encode (a 10-minute
  source: 4 samples of 2 s, 1.3 % of the picture).
- Every sample is encoded by `build_encode_argv` itself (the family's real
  encoder, preset, VBV and keyframe settings, one ffmpeg for every size as
  the real encode), from `PREROLL_SECONDS` before the sample, at each trial:
  H.264 and AV1: the fixed table, then up to `CRF_TRIALS` capped-CRF trials per
  size aimed at the table's quality (`crf_trials`, a search as ab-av1's; AV1 aims
  at the H.264 table's quality, `reference`); other codecs: `RATE_LEVELS` of the
  table's bitrate.
- Each output is scored against the same window of the source, both scaled
  to the display size (capped at 1080 lines: the VMAF v0.6.1 model is
  trained for a 1080p screen at 3 picture heights), by ffmpeg's libvmaf
  with the per-frame log read back for the 5th percentile.
- `nice`: the chunked path runs all of it beside chunk 0's encode.
- `SAMPLES_AT_ONCE` samples are encoded and scored side by side: one
  sample's encode, then its scoring, keeps two cores busy only in part.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from core.errors import FFmpegError
from core.media.encode import EncodeJob, build_encode_argv, stream_map
from core.media.model import Ladder
from core.media.pertitle import TOP_SLACK, QualityMeasurements, RatePoint
from core.media.runner import run_ffmpeg

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
PREROLL_SECONDS = 1.0
MAX_SAMPLES = 6
# One sample more per this many seconds of source, after the first 2. Was 120 s: on the 10-minute 1080p
# footage that made 6 samples and an analysis of 0.29 of the fixed encode's CPU (README, bench/per_title_cost.py),
# over issue #17's 25 %; at 240 s a 10-minute source gets 4, an hour still the most. With SAMPLES_AT_ONCE 2,
# the same source on a quiet machine: the analysis 105-125 s wall, 0.16-0.19 of the fixed job's CPU, the job's
# wall 0.10-0.23 longer than the fixed ladder's, median 0.12 of 3 rounds (README "Measured on a 10-minute").
SAMPLE_EVERY_S = 240.0
# Samples measured side by side (a thread each, running ffmpeg): a sample is an encode then a scoring,
# each of which leaves part of two cores idle (the encode's largest rung runs on after the others; the
# scoring's scaling to the display size runs in one filter thread).
SAMPLES_AT_ONCE = 2
# Fractions of the fixed table's bitrate each size is measured at: 2.5x apart, from the table
# itself (the per-title ladder never spends more) down to 1/16 of it, where a static or
# animated picture typically still scores in the 90s.
RATE_LEVELS: tuple[float, ...] = (1.0, 0.4, 0.16, 0.064)
# Score every 3rd frame: VMAF costs about as much as the encodes (1080p motion, one sample: 46 s of
# VMAF beside 39 s of encodes at every 2nd frame). Every 3rd is also closer to the all-frames score
# than every 2nd or 4th (likely x264's frame types, which repeat with an even period: an even step keeps
# landing on the same kind). Measured on bench/quality.py's three sources (8 s 720p, the table's 4
# rungs each, every 2 s window against all its frames): the mean off by at most 1.40 at every 2nd
# frame, 3.03 at every 4th, 0.42 at every 3rd. 20 frames per 2 s sample still give the p5.
VMAF_SUBSAMPLE = 3
# Codecs measured with capped-CRF trials (`crf_trials`) and encoded at the chosen CRF: x264's CRF under
# VBV is repeatable with sliced threads (byte-identical retries). Others keep the rate grid.
# SVT-AV1's CRF with `-maxrate` is its capped CRF (core/media/encode.py).


@dataclass(frozen=True)
class CrfScale:
    """One encoder's CRF scale, for the search: where to start, how far a halved rate moves it, its bounds."""

    first: float  # the first trial, every size
    per_halving: float  # CRF steps that halve the rate (rule of thumb, before two trials give a slope)
    low: float
    high: float


CRF_SCALES: dict[str, CrfScale] = {
    "h264": CrfScale(first=23.0, per_halving=6.0, low=10.0, high=45.0),  # x264's default CRF; +6 halves the rate
    # SVT-AV1 (0-63): 35 is its default; measured with bench/quality_av1.py on 720p testsrc2 (capped, preset 9):
    # CRF 30 -> 36 -> 42 gave 4.04 -> 2.95 -> 1.61 Mbit/s, 2.5x over 12 steps: about 9 steps halve it.
    "av1": CrfScale(first=35.0, per_halving=9.0, low=10.0, high=60.0),
}
CRF_CODECS = tuple(CRF_SCALES)
CRF_TRIALS = 3  # after the table's own trial
CRF_STEP = 4.0  # on a flat curve
MAX_CRF_STEP = 10.0
CLOSE_CRF = 3.0  # two trials this close around the target: interpolating between them is good enough
SCORE_MAX_SHORT = 1080


@dataclass(frozen=True)
class Sample:
    start: float  # seconds into the source
    length: float


def plan_samples(duration: float, *, seconds: float = SAMPLE_SECONDS, most: int = MAX_SAMPLES,
                 activity: list[int] | None = None) -> list[Sample]:
    """Where to sample a source of `duration` seconds (pure): 2 samples, one more per 4 minutes, at most `most`.

    One sample per equal stretch of the source. Without `activity` it is the stretch's
    middle; with it (bytes of the source's video per second, `source_activity`) it is
    the stretch's median window by bytes: a typical picture of each part, so that a
    CRF's rate and quality on the samples are the title's, and the table's quality at
    its average bitrate is read where the title spends its average. Not the busiest
    windows, as before: there the table's encode of the whole title spends more than its
    average (x264 moves bits to the busy seconds) while a sample encoded alone gets only
    the average, so the table's quality was aimed at too low (measured: bench/quality.py's
    animation, whose opening is chaos, put its 360p CRF rung 1.41 VMAF under the fixed
    rung over the whole title; with median windows every rung of the three sources is
    within 0.7 and the motion source's ladder 29.1 % cheaper, not 20.7 %). Nor a stretch's
    middle, which may be anything: the animation's middles were its calmest seconds.
    """
    if duration <= 0:
        return []
    count = max(1, min(most, 2 + int(duration // SAMPLE_EVERY_S)))
    length = min(seconds, duration / count)
    stretch = duration / count
    samples = []
    for i in range(count):
        start = i * stretch + (stretch - length) / 2
        if activity:
            # Whole-second starts inside the stretch, ranked by their window's bytes (ties: the earlier
            # first); the lower median of an even count.
            first, last = math.ceil(i * stretch), math.floor((i + 1) * stretch - length)
            span = math.ceil(length)
            if last >= first:
                ranked = sorted(range(first, last + 1), key=lambda k: (sum(activity[k:k + span]), k))
                start = ranked[(len(ranked) - 1) // 2]
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
    nice: int = 0,
    reference: Ladder | tuple[RatePoint, ...] | None = None,
) -> QualityMeasurements:
    """Measure `ladder`'s sizes on samples of `source` (the fixed ladder goes in).

    H.264 and AV1: the fixed table itself, then `CRF_TRIALS` capped-CRF trials aimed per
    size at the table's quality (`crf_trials`). Other codecs: `RATE_LEVELS`.
    `reference`: the quality to aim at instead of the table's own: the H.264 fixed
    table's points on the same samples (`plan_samples` is deterministic), or that
    ladder, measured here first. An AV1 ladder aims at what the H.264 ladder gives
    (the fair comparison: the same VMAF, fewer bits), not at its own table's quality.
    `nice`: added to every ffmpeg's niceness (the analysis may run beside an encode).
    """
    if samples is None:
        try:
            activity = source_activity(source)
        except Exception as exc:  # noqa: BLE001  (a demux hiccup must not fail the encode: middle samples)
            log.warning("source activity unreadable (%s); sampling stretch middles", exc)
            activity = None
        samples = plan_samples(duration, activity=activity)
    run = _Trials(ffmpeg, source, ladder, samples, segment_duration=segment_duration, work_dir=work_dir,
                  size=score_size(*display), cancel=cancel, timeout=timeout, nice=nice)
    points: list[RatePoint] = []
    if isinstance(reference, Ladder):
        ref_run = _Trials(ffmpeg, source, reference, samples, segment_duration=segment_duration, work_dir=work_dir,
                          size=score_size(*display), cancel=cancel, timeout=timeout, nice=nice)
        reference = tuple(ref_run.measure(reference.renditions, "reference").values())
    reference = tuple(sorted(reference or (), key=lambda p: -p.short))
    if ladder.codec in CRF_CODECS:
        targets = {p.short: p.vmaf_mean - TOP_SLACK for p in reference} or None
        points = crf_trials(run, ladder, targets)
    else:
        for level in RATE_LEVELS:
            scaled = tuple(replace(r, bitrate=_at(r.bitrate, level), max_bitrate=_at(r.max_bitrate, level),
                                   buffer_size=_at(r.buffer_size, level)) for r in ladder.renditions)
            points += run.measure(scaled, f"r{level:g}").values()
    points.sort(key=lambda p: (-p.short, -p.bitrate))
    return QualityMeasurements(points=tuple(points), samples=len(samples),
                               sample_seconds=round(sum(s.length for s in samples), 3), reference=reference)


def table_points(m: QualityMeasurements) -> tuple[RatePoint, ...]:
    """The fixed table's own trial of each size (the average-bitrate point at the table's rate): a reference."""
    by_short: dict[int, RatePoint] = {}
    for p in m.points:
        if p.crf is None and (p.short not in by_short or p.bitrate > by_short[p.short].bitrate):
            by_short[p.short] = p
    return tuple(by_short.values())


def crf_trials(run: _Trials, ladder: Ladder, targets: dict[int, float] | None = None) -> list[RatePoint]:
    """The fixed table, then capped-CRF trials that close in on each size's table quality (ab-av1's search).

    1. The table as it is: each size's quality at the fixed bits, the target
       (minus `TOP_SLACK`, as the planner takes it).
    2. Every size at the encoder's first CRF (`CRF_SCALES`), under the table's cap.
    3. Each size at the CRF its two points put the target at: the straight
       line through them in (log rate, VMAF) gives the rate, x264's +6 CRF per
       halved rate the CRF (`next_crf`).
    4. Only sizes whose two CRF trials do not yet bracket the target within
       `CLOSE_CRF`: once more, from the two CRF trials.
    Trials 3 and 4 encode only the sizes that need them. `targets` (short side ->
    VMAF): aim there instead (the H.264 table's quality, for AV1).
    """
    scale = CRF_SCALES[ladder.codec]
    by_short = {min(r.width, r.height): r for r in ladder.renditions}
    ref = run.measure(ladder.renditions, "table")
    points = list(ref.values())
    target = {s: p.vmaf_mean - TOP_SLACK for s, p in ref.items()}
    target.update({s: t for s, t in (targets or {}).items() if s in target})
    tried: dict[int, list[RatePoint]] = {s: [] for s in ref}
    crf = {s: scale.first for s in ref}
    for step in range(CRF_TRIALS):
        if not crf:
            break
        found = run.measure(tuple(replace(by_short[s], crf=c) for s, c in crf.items()), f"crf{step}")
        for s, p in found.items():
            tried[s].append(p)
        points += found.values()
        crf = {}
        for s, trials in tried.items():
            if s in target and len(trials) == step + 1:
                c = next_crf(ref[s], trials, target[s], scale)
                if c is not None:
                    crf[s] = c
    return points


def next_crf(ref: RatePoint, trials: list[RatePoint], target: float,
             scale: CrfScale = CRF_SCALES["h264"]) -> float | None:
    """The CRF to try next for one size (pure), or None when its trials already bracket `target` closely.

    `trials` are the size's CRF trials so far (each with `crf`), `ref` its
    fixed-table point. The two most recent points (the table's when there is
    one CRF trial) give the slope in VMAF per doubled rate; the CRF follows
    from the rate by the encoder's rule of thumb (`scale.per_halving`; x264: +6 CRF halves the rate). A flat or
    inverted slope (a picture that is already as good as it gets) steps by
    `CRF_STEP` upwards. The step is at least 1 and at most `MAX_CRF_STEP`.
    """
    ordered = sorted(trials, key=lambda p: p.crf)
    above = [p for p in ordered if p.vmaf_mean >= target]
    below = [p for p in ordered if p.vmaf_mean < target]
    if above and below and below[0].crf - above[-1].crf <= CLOSE_CRF:
        return None
    last = trials[-1]
    if len(trials) >= 2 and abs(trials[-2].vmaf_mean - last.vmaf_mean) > 0.05:
        # Two CRF trials: the straight line between them in (CRF, VMAF) (measured on the motion
        # source, +7 CRF cut the rate 3.8x, not the 2.2x of the rule below: the line is closer).
        other = trials[-2]
        slope = (other.vmaf_mean - last.vmaf_mean) / (last.crf - other.crf)  # VMAF lost per CRF step
        step = (last.vmaf_mean - target) / slope if slope > 0.05 else CRF_STEP
    else:
        other = trials[-2] if len(trials) >= 2 else ref
        d_rate = math.log2(max(1, last.bitrate)) - math.log2(max(1, other.bitrate))
        slope = (last.vmaf_mean - other.vmaf_mean) / d_rate if abs(d_rate) > 0.05 else 0.0
        if slope <= 0.5:  # quality hardly moves with the rate here: try cheaper, or dearer if below target
            step = CRF_STEP if last.vmaf_mean >= target else -CRF_STEP
        else:
            step = -scale.per_halving * (target - last.vmaf_mean) / slope
    step = max(-MAX_CRF_STEP, min(MAX_CRF_STEP, step))
    if abs(step) < 1:
        step = 1.0 if step >= 0 else -1.0
    c = last.crf + step
    if above and below:  # stay inside the bracket
        c = min(max(c, above[-1].crf + 0.5), below[0].crf - 0.5)
    c = round(min(scale.high, max(scale.low, c)) * 2) / 2
    return None if any(abs(p.crf - c) < 0.25 for p in trials) else c


class _Trials:
    """Encode every sample with one set of renditions, score each against the source: one `RatePoint` a size."""

    def __init__(self, ffmpeg: str, source: Path, ladder: Ladder, samples: list[Sample], *, segment_duration: float,
                 work_dir: Path, size: tuple[int, int], cancel, timeout, nice: int) -> None:
        self.ffmpeg, self.source, self.ladder, self.samples = ffmpeg, source, ladder, samples
        self.segment_duration, self.work_dir, self.size = segment_duration, work_dir, size
        self.cancel, self.timeout, self.nice = cancel, timeout, nice
        self.rate = ladder.renditions[0].frame_rate or Fraction(30)

    def measure(self, renditions, tag: str) -> dict[int, RatePoint]:
        """short side -> the point of that size (mean bits/s and VMAF over every sample)."""
        found: dict[int, list[tuple[int, float, list[float]]]] = {}
        with ThreadPoolExecutor(SAMPLES_AT_ONCE, thread_name_prefix="analysis") as pool:
            futures = [pool.submit(self._sample, i, renditions, tag) for i in range(len(self.samples))]
            try:
                per_sample = [f.result() for f in futures]  # in the samples' order
            except BaseException:
                for f in futures:  # the first failure: samples not yet started are not started
                    f.cancel()
                raise
        for runs in per_sample:
            for short, run in runs:
                found.setdefault(short, []).append(run)
        points = {}
        for short, runs in found.items():
            frames = [v for _, _, f in runs for v in f]
            if not frames:
                continue
            r = next(r for r in renditions if min(r.width, r.height) == short)
            bitrate = round(sum(b for b, _, _ in runs) / sum(s for _, s, _ in runs))
            points[short] = RatePoint(short=_nominal(short, self.ladder), bitrate=bitrate,
                                      vmaf_mean=round(statistics.fmean(frames), 2),
                                      vmaf_p5=round(percentile(frames, 5), 2), crf=r.crf)
        return points

    def _sample(self, i: int, renditions, tag: str) -> list[tuple[int, tuple[int, float, list[float]]]]:
        """Encode sample `i` with `renditions` and score it: (short side, (bits, seconds, per-frame VMAF)) a size."""
        sample = self.samples[i]
        out = self.work_dir / f"s{i}-{tag}"
        # The encode starts PREROLL_SECONDS early and those frames are not scored: a rate control
        # starting cold spends its first frames badly, which the real encode does once per title,
        # not once per sample (measured: a 2 s sample without it put the table's 240p 2 VMAF low).
        start = max(0.0, sample.start - PREROLL_SECONDS)
        skip = round((sample.start - start) * self.rate)
        job = EncodeJob(source=self.source, out_dir=out,
                        ladder=Ladder(self.ladder.codec, tuple(renditions), within=self.ladder.renditions),
                        audio=None, segment_duration=self.segment_duration, frame_rate=self.rate,
                        start=start, length=round(sample.start + sample.length - start, 3))
        out.mkdir(parents=True, exist_ok=True)
        run_ffmpeg(build_encode_argv(self.ffmpeg, job), duration=None, on_progress=None, cancel=self.cancel,
                   timeout=self.timeout, nice=self.nice)
        files, bits = [], []
        for rep_id, rid in stream_map(job).items():
            path, size_bytes = _join(out, rep_id, out / f"{rid}.{_ext(self.ladder.codec)}")
            files.append(path)
            bits.append(size_bytes * 8)
        scores = score(self.ffmpeg, self.source, files, sample, rate=self.rate, size=self.size, work_dir=out,
                       cancel=self.cancel, timeout=self.timeout, nice=self.nice, skip=skip)
        shutil.rmtree(out, ignore_errors=True)
        return [(min(r.width, r.height), (b, job.length, frames)) for r, b, frames in zip(renditions, bits, scores)]


def score(ffmpeg: str, source: Path, files: list[Path], sample: Sample | None, *, rate: Fraction,
          size: tuple[int, int], work_dir: Path, cancel: Callable[[], bool] | None = None,
          timeout: float | None = None, subsample: int = VMAF_SUBSAMPLE, nice: int = 0,
          skip: int = 0) -> list[list[float]]:
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
        trim = f"trim=start_frame={skip}," if skip else ""  # the encode's pre-roll
        graph += (f";[{k + 1}:v]{trim}{prep}[d{k}];[d{k}][r{k}]libvmaf=log_fmt=json:log_path={_escape(logs[k])}"
                  f":n_subsample={subsample}:n_threads=2[o{k}]")
    argv += ["-filter_complex", graph]
    for k in range(n):
        argv += ["-map", f"[o{k}]", "-f", "null", "-"]
    run_ffmpeg(argv, duration=None, on_progress=None, cancel=cancel, timeout=timeout, nice=nice)
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
