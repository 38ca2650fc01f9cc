"""The per-title ladder: rate–quality measurements of sample encodes in, rungs out (pure).

`core.media.analysis` encodes a few short samples of the source at every
candidate size (the fixed table's rungs) at the table's bitrates and a few
capped CRFs (other codecs: a few bitrates) with the family's real encoder
settings and scores each against the source with VMAF at display size. Those measurements are `RatePoint`s; this module turns them
into rungs without running anything, so the choice is tested exactly on
recorded measurements (tests/core/media/test_pertitle.py).

The choice, in order:
1. Per size, the rate–quality curve is the upper convex hull of that size's
   points in (log2 bitrate, VMAF): a point below the hull is a wasted setting,
   and the concave curve is what interpolation between measured points needs.
   The whole title's hull (`convex_hull` over every size) is what the
   analysis reports; a rung is always a point of its own size's curve.
2. The top: the best VMAF any size reaches within the fixed table's bits for
   that size (`caps`, never exceeded), minus `TOP_SLACK`. Past that point the
   curve is flat — quality has stopped improving and the bits would be waste
   (e.g. a cartoon at 99 from 1 Mbit/s does not get 5 Mbit/s). The top rung is
   the size that reaches that quality with the fewest bits.
3. Below it, each smaller size is capped the same way: the quality its fixed
   bits reach, minus `TOP_SLACK`, at the fewest bits that reach it. A rung
   not `MIN_RATE_STEP` cheaper than the one above is dropped: a player could
   hardly tell the two apart, and each costs an encode and its storage. So is
   a rung less than `JND_VMAF` (one just-noticeable difference) below the
   rung kept above it that is not `KEEP_RATE_STEP` cheaper either (measured:
   bench/quality.py's motion source, whose table puts 360p 4.3 points under
   480p for 1.9x fewer bits).

4. H.264 and AV1 (`RatePoint.crf` set on the analysis' capped-CRF trials): each rung
   becomes the CRF at which its size reaches the rung's target (`crf_for`,
   interpolated between the trials that bracket it), under the table's VBV
   cap, when that costs no more than the table; otherwise it is the table's
   own rung (`_as_encoded`). A CRF holds the samples' quality over the whole
   title and spends less wherever the picture is easier, where an average
   rate is spread over the title in a way the samples cannot predict
   (measured on bench/quality.py's animation, 2.6-6.5 VMAF short on the
   lower rungs).
`same_size_rungs` is the variant for a ladder whose sizes are already being
encoded (the chunked path's chunk 0): every size kept, each at its CRF.

With `QualityMeasurements.reference` (an AV1 ladder: the H.264 table's
points on the same samples) each size aims at the reference's quality
instead of its own table's, when it reaches it within its own table's bits
(`_aims`): AV1 is then compared with H.264 at the same VMAF.

Why not fixed VMAF steps (95/90/84/76/65, as some services use)? Measured on
bench/quality.py's high-motion source, a 76 step put the 240p rung 9 points
under the fixed table's 240p (85) for 30 % fewer bits there: a per-title
ladder must never look worse than the table it replaces, rung for rung, so
each rung's target comes from what its size reaches with the table's bits.
What the steps are for, spacing rungs a JND apart, is kept: the drop rule of 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

# The top rung may sit this far below the best quality the fixed table's bits reach: far under
# what viewers notice (a JND is ~2-6 VMAF points), yet on a flat curve it is where most of the
# bits go. Half a point, not one: the samples' estimate misses the whole title's score by about
# that much (bench/quality.py), and the top rung must stay within a point of the fixed one.
TOP_SLACK = 0.5
MIN_RATE_STEP = 1.4  # each rung at least this factor cheaper than the one above, or it is dropped
# A rung less than a just-noticeable difference (JND: ~6 VMAF points, the field's rule of thumb) below
# the rung kept above it is dropped too, unless it is at least `KEEP_RATE_STEP` cheaper: a player
# switching between the two saves few bits for a change its viewer can hardly see. 2x is the wide end
# of Apple's HLS authoring guidance (adjacent bitrates 1.5-2x apart): a rung that much cheaper serves
# a network the one above cannot, however close its quality.
JND_VMAF = 6.0
KEEP_RATE_STEP = 2.0
MIN_BITRATE = 50_000  # the API's smallest rung bitrate


@dataclass(frozen=True)
class RatePoint:
    """One size at one bitrate, averaged over the samples: what a rung there costs and looks like."""

    short: int  # the rung's nominal short side (as in `h264-720p`)
    bitrate: int  # bits/s actually produced (mean over the samples)
    vmaf_mean: float  # mean over every scored frame of every sample, at display size
    vmaf_p5: float  # 5th percentile of those frames: the bad moments the mean hides
    crf: float | None = None  # a capped-CRF trial (x264's rate factor under the table's cap); None: average bitrate


@dataclass(frozen=True)
class QualityMeasurements:
    """What the analysis measured: every point, and how (for the API and the bench)."""

    points: tuple[RatePoint, ...]
    samples: int
    sample_seconds: float
    # Another ladder's fixed-table points on the same samples, whose quality this one aims at instead of
    # its own table's: the H.264 table's, for an AV1 ladder (the same VMAF for fewer bits). () : its own.
    reference: tuple[RatePoint, ...] = ()


@dataclass(frozen=True)
class ChosenRung:
    short: int
    bitrate: int
    vmaf_mean: float  # read off the size's curve at `bitrate`: an estimate from the samples
    vmaf_p5: float
    crf: float | None = None  # encode at this capped CRF (`bitrate` is then its expected average)


def convex_hull(points: list[RatePoint] | tuple[RatePoint, ...]) -> list[RatePoint]:
    """The rising upper convex hull in (log2 bitrate, mean VMAF), cheapest first.

    Points dominated (as many bits or more for no better quality) are dropped
    first; the hull ends at the best-quality point (beyond it more bits only lose).
    """
    pareto: list[RatePoint] = []
    for p in sorted(points, key=lambda p: (p.bitrate, -p.vmaf_mean)):
        if pareto and p.vmaf_mean <= pareto[-1].vmaf_mean:
            continue  # more bits, no better
        pareto.append(p)
    hull: list[RatePoint] = []
    for p in pareto:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()  # hull[-1] lies on or below the line from hull[-2] to p
        hull.append(p)
    return hull


def choose_rungs(m: QualityMeasurements, caps: dict[int, int], max_rungs: int = 4) -> list[ChosenRung]:
    """The per-title rungs, highest first; `caps`: short side -> the fixed table's bitrate there.

    Only sizes in `caps` are candidates. Empty when nothing was measured.
    """
    m = normalised(m, caps)
    curves = {s: convex_hull([p for p in m.points if p.short == s]) for s in caps}
    curves = {s: c for s, c in curves.items() if c}
    if not curves:
        return []
    aim = _aims(m, curves, caps)
    best = max(aim.values())
    top = _cheapest(curves, caps, best - TOP_SLACK, sizes=curves.keys(), below_rate=None)
    if top is None:  # unreachable: the best size reaches `best` within its cap; kept for safety
        return []
    rungs = [_as_encoded(top, m.points, best - TOP_SLACK, caps[top.short], curves[top.short])]
    for size in sorted((s for s in curves if s < top.short), reverse=True):
        if len(rungs) >= max(1, max_rungs):
            break
        target = aim[size] - TOP_SLACK
        below = rungs[-1].bitrate / MIN_RATE_STEP
        rung = _cheapest(curves, caps, target, sizes=[size], below_rate=below)
        if rung is not None:
            rung = _as_encoded(rung, m.points, target, caps[size], curves[size])
            if rung.bitrate > below:
                continue  # its CRF, or the table's rung, is not 1.4x cheaper than the rung above
            if rungs[-1].vmaf_mean - rung.vmaf_mean < JND_VMAF and rung.bitrate * KEEP_RATE_STEP > rungs[-1].bitrate:
                continue  # under a JND below the rung above and not 2x cheaper: not worth a rendition
            rungs.append(rung)
    return rungs


def _aims(m: QualityMeasurements, curves: dict[int, list[RatePoint]], caps: dict[int, int]) -> dict[int, float]:
    """Per size, the quality its rung aims at (before `TOP_SLACK`): what the size reaches with the table's bits,
    or the reference's quality there (`QualityMeasurements.reference`) when the size reaches that within them.

    A reference the size cannot reach within its own table's bits is not chased past them: the table's
    bits are the most a per-title rung spends, whichever quality it aims at.
    """
    ref = {p.short: p.vmaf_mean for p in m.reference}
    aims = {}
    for s, c in curves.items():
        own = _value(c, caps[s])[0]
        aims[s] = min(ref[s], own) if s in ref else own
    return aims


def normalised(m: QualityMeasurements, caps: dict[int, int]) -> QualityMeasurements:
    """`m` with each size's rates scaled so that its table trial costs no more than the table's bitrate.

    A sample lasts a second or two: its keyframe and the VBV buffer's initial
    fullness push every encode of it over its average target (measured: 3 s of
    grain at 640x360, the table's 800k came out at 850-900k), and a per-title
    rung compared with the table in those units would find nothing within the
    table's bits. The table trial is the size's dearest average-bitrate point
    within the table's maxrate (1.5x: no trial of the table averages more);
    every point of the size is scaled by the same factor.
    """
    factor: dict[int, float] = {}
    for size, cap in caps.items():
        table = max((p.bitrate for p in m.points if p.short == size and p.crf is None and p.bitrate <= cap * 1.5),
                    default=0)
        factor[size] = cap / table if table > cap else 1.0
    if all(f == 1.0 for f in factor.values()):
        return m
    points = tuple(replace(p, bitrate=round(p.bitrate * factor.get(p.short, 1.0))) for p in m.points)
    return replace(m, points=points)


def same_size_rungs(m: QualityMeasurements, caps: dict[int, int]) -> dict[int, ChosenRung | None]:
    """Every size of `caps` kept, each at the capped CRF that reaches its fixed quality (None: stays fixed).

    For a ladder whose sizes were fixed before the analysis finished: the
    chunked path encodes chunk 0 with the fixed table while the samples are
    measured, and later chunks of the same tracks at these CRFs. The target is
    the size's own (its quality at the table's bits, minus `TOP_SLACK`); a size
    whose CRF trials do not reach it within the table's bits stays at the table.
    """
    m = normalised(m, caps)
    curves = {s: convex_hull([p for p in m.points if p.short == s]) for s in caps}
    aim = _aims(m, {s: c for s, c in curves.items() if c}, caps)
    out: dict[int, ChosenRung | None] = {}
    for size, cap in caps.items():
        found = crf_for([p for p in m.points if p.short == size], aim[size] - TOP_SLACK) if size in aim else None
        out[size] = found if found is not None and found.bitrate <= cap else None
    return out


def crf_for(points: list[RatePoint] | tuple[RatePoint, ...], target: float) -> ChosenRung | None:
    """The highest CRF (fewest bits) at which one size's CRF trials reach `target` VMAF; None if none does.

    Quality is taken as linear in CRF between two trials, bits as exponential
    (x264: +6 CRF halves the rate): between two trials VMAF falls faster as
    CRF rises, so the straight line lies under the curve and errs towards
    quality. A trial scoring higher than a lower CRF's is noise and counts at
    the lower one's score. Beyond the trials nothing is guessed: when every
    trial is above the target the highest CRF tried is the answer; when none
    is, the rung stays at an average bitrate. The CRF is rounded down to 0.1.
    """
    trials = sorted((p for p in points if p.crf is not None), key=lambda p: p.crf)
    if not trials:
        return None
    floor = [trials[0]]  # each trial at no more than the score of every lower CRF
    for p in trials[1:]:
        if p.vmaf_mean > floor[-1].vmaf_mean:
            p = RatePoint(p.short, p.bitrate, floor[-1].vmaf_mean, min(p.vmaf_p5, floor[-1].vmaf_p5), p.crf)
        floor.append(p)
    if floor[0].vmaf_mean < target:
        return None
    crf = floor[-1].crf
    for lo, hi in zip(floor, floor[1:]):
        if hi.vmaf_mean < target:
            crf = lo.crf + (hi.crf - lo.crf) * (lo.vmaf_mean - target) / (lo.vmaf_mean - hi.vmaf_mean)
            break
    crf = max(floor[0].crf, math.floor(crf * 10 + 1e-9) / 10)
    for lo, hi in zip(floor, floor[1:]):
        if lo.crf <= crf <= hi.crf and hi.crf > lo.crf:
            t = (crf - lo.crf) / (hi.crf - lo.crf)
            rate = 2 ** (math.log2(lo.bitrate) + t * (math.log2(hi.bitrate) - math.log2(lo.bitrate)))
            return ChosenRung(short=lo.short, bitrate=max(MIN_BITRATE, _kbit(rate)),
                              vmaf_mean=round(lo.vmaf_mean + t * (hi.vmaf_mean - lo.vmaf_mean), 2),
                              vmaf_p5=round(lo.vmaf_p5 + t * (hi.vmaf_p5 - lo.vmaf_p5), 2), crf=crf)
    p = [q for q in floor if q.crf <= crf][-1]  # one trial, or the highest CRF: no interpolation
    return ChosenRung(short=p.short, bitrate=max(MIN_BITRATE, _kbit(p.bitrate)), vmaf_mean=p.vmaf_mean,
                      vmaf_p5=p.vmaf_p5, crf=crf)


def _as_encoded(rung: ChosenRung, points, target: float, cap: int, curve: list[RatePoint]) -> ChosenRung:
    """How `rung` (read off its size's hull) is encoded: a capped CRF, the table's own rung, or `rung` itself.

    A size with capped-CRF trials (H.264, AV1) becomes the CRF at which they reach
    `target` when that costs no more than the table on the samples; otherwise it is
    the fixed table's rung as it is (its bitrate, quality read at it), never an
    average bitrate below the table's read off the hull: that is what the samples
    predict worst (bench/quality.py's animation: its 240p at 0.98 of the table's
    bits predicted 59.5 on the samples, scored 50.1 over the title against the
    table's 51.2). Why CRF: a CRF holds the samples' quality over the whole title and
    spends less where the picture is easier; an average rate is spread by x264 over a
    title whose complexity changes, where the samples cannot say how (the animation:
    2.6-6.5 VMAF low on the lower rungs). Sizes measured at rates only (the other
    codecs' `RATE_LEVELS`) keep `rung`.
    """
    trials = [p for p in points if p.short == rung.short]
    if not any(p.crf is not None for p in trials):
        return rung
    found = crf_for(trials, target)
    if found is not None and found.bitrate <= cap:
        return found
    mean, p5 = _value(curve, cap)
    return ChosenRung(short=rung.short, bitrate=cap, vmaf_mean=round(mean, 2), vmaf_p5=round(p5, 2))


def _cheapest(curves: dict[int, list[RatePoint]], caps: dict[int, int], target: float, *, sizes,
              below_rate: float | None) -> ChosenRung | None:
    """The size that reaches `target` with the fewest bits (within its cap and under `below_rate`)."""
    found: ChosenRung | None = None
    for s in sorted(sizes, reverse=True):  # larger first: a tie goes to the sharper picture
        rate = _rate_for(curves[s], target)
        if rate is None:
            continue
        rate = max(MIN_BITRATE, _kbit(rate))
        if rate > caps[s] or (below_rate is not None and rate > below_rate):
            continue
        if found is None or rate < found.bitrate:
            mean, p5 = _value(curves[s], rate)
            found = ChosenRung(short=s, bitrate=rate, vmaf_mean=round(mean, 2), vmaf_p5=round(p5, 2))
    return found


def _rate_for(curve: list[RatePoint], target: float) -> float | None:
    """The fewest bits at which `curve` reaches `target` (log-rate interpolation); None if it never does.

    When even the cheapest measured point is above the target, that point's rate
    is the answer: the curve below it was not measured, so it is not guessed.
    """
    if curve[0].vmaf_mean >= target:
        return float(curve[0].bitrate)
    for lo, hi in zip(curve, curve[1:]):
        if hi.vmaf_mean >= target:
            t = (target - lo.vmaf_mean) / (hi.vmaf_mean - lo.vmaf_mean)
            return 2 ** (math.log2(lo.bitrate) + t * (math.log2(hi.bitrate) - math.log2(lo.bitrate)))
    return None


def _value(curve: list[RatePoint], rate: float) -> tuple[float, float]:
    """(mean, p5) VMAF of `curve` at `rate`: interpolated in log rate, flat beyond the measured ends."""
    if rate <= curve[0].bitrate:
        return curve[0].vmaf_mean, curve[0].vmaf_p5
    for lo, hi in zip(curve, curve[1:]):
        if rate <= hi.bitrate:
            t = (math.log2(rate) - math.log2(lo.bitrate)) / (math.log2(hi.bitrate) - math.log2(lo.bitrate))
            return (lo.vmaf_mean + t * (hi.vmaf_mean - lo.vmaf_mean), lo.vmaf_p5 + t * (hi.vmaf_p5 - lo.vmaf_p5))
    return curve[-1].vmaf_mean, curve[-1].vmaf_p5


def _cross(o: RatePoint, a: RatePoint, b: RatePoint) -> float:
    ox, ax, bx = math.log2(o.bitrate), math.log2(a.bitrate), math.log2(b.bitrate)
    return (ax - ox) * (b.vmaf_mean - o.vmaf_mean) - (a.vmaf_mean - o.vmaf_mean) * (bx - ox)


def _kbit(bits: float) -> int:
    return max(1, round(bits / 1000)) * 1000
