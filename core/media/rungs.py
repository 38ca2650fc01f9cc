"""How each rung of a ladder is made inside the one decode-once ffmpeg: what it is scaled from, and x264 threads.

Pure planners (`plan_rungs`, `build_ladder_graph`) with exact-output tests
(tests/core/media/test_rungs.py); `core.media.encode` puts the result in the
argv. Each lever measured alone on a 10 s cut of bench/ladder.py's source
(1080p30 testsrc2 -> 1080/720/480/360 H.264 veryfast at the planned
bitrates, AAC, 4 s segments), one ffmpeg each, on the 2-core machine while
other work loaded it (1-minute load 14-22: wall times meant nothing, CPU
seconds moved ~10 % run to run, so single runs are marked). VMAF v0.6.1 of
each rung upscaled bicubic to 1080p against the source, every 5th frame:

    variant (flat = every rung scaled from the source)   CPU s              VMAF 1080/720/480/360
    flat, bicubic, 4 slice threads per rung (before)     16.6 (15.8-16.9)   94.70 87.74 79.53 71.35
    cascaded, 4 slices per rung                          16.3 (14.2-16.4)   (720p: the same picture)
    flat, slices 2/1/1/1                                 17.5 (16.4-17.8)
    cascaded, slices 2/1/1/1                             16.3 (15.6-16.5)
    cascaded, 1 thread per rung          <- adopted      14.0 (one run)     94.74 87.68 80.11 71.57
      + 1080p superfast                                  11.8 (one run)     93.98 (-0.72: refused)
      + 1080p superfast with mbtree, rc-lookahead 5      13.2 (one run)     94.16 (-0.54: refused)
      + 1080p veryfast me=dia subme=1                    13.7 (13.6-14.5)   94.64 (-0.06)
      + 1080p veryfast rc-lookahead 5                    16.0 (one run)     94.65
      + 1080p veryfast b-adapt 0                         16.5 (one run)     94.60
      + fast_bilinear for 480p and 360p                  17.1 (one run)     72.00 / 55.14 (-7.5 / -16.2: refused)

Adopted: cascaded scaling and one thread per rung. Since then: slices by
pixel share, the small rungs superfast, me=dia on the largest, and on
2026-12-07 no B-frames and lanczos scaling (the constants' comments below).
The 1080p rung is the cost (57 % of the pixels) and sits at x264's knee:
every preset cut that saves real CPU loses more than 0.5 VMAF there
(superfast's saving is mostly mbtree and its lookahead); me=dia/subme=1
keeps the quality but its saving is within this machine's noise, so it
stays veryfast (me=dia alone, with 2 slices, was adopted later on a quiet
machine: LARGEST_RUNG_X264; and dropping its B-frames, which its lookahead
also weighs, cost it 0.18 VMAF on testsrc2; with the small rungs' B-frames,
~10 % of the ladder's CPU: SMALL_RUNG_X264). fast_bilinear aliases badly on
the small rungs (lanczos, sharper, pays for their B-frames). Audio is already
overlapped: AAC is
encoded by the same process, beside the video encoders.

Cascaded scaling: each rung is scaled from the smallest rung already made
that covers it, not from the source. With a 1080p source the 720p rung is
the same picture either way (the 1080p rung is the source unscaled), and
480p/360p read 2.25-5x fewer pixels. From a 4K source it saves far more.

Threads: x264 frame threads are not repeatable with VBV on (see encode.py),
so each rung gets sliced threads with a count that depends on the ladder
only, never on the machine: a retried job on another machine writes the
same bytes. ffmpeg runs every encoder in its own thread, so the rungs already
run side by side, and slices cost CPU (thread sync, each slice predicts
alone). A rung of a ladder of several gets round(SLICE_BUDGET x its share
of the ladder's pixels) slice threads, at least one. The budget was 2 (one
each for the usual ladders: 2 slices in the 1080p rung measured more CPU and
no shorter wall at the time, table above); once the small rungs went
superfast the 1080p rung was left running alone at the end of each segment,
and on a quiet machine a budget of 4 (2/1/1/1) shortened the wall (tables
below), and 5 (3/1/1/1) once the largest rung's picture left the filter
graph last (LARGEST_LAST). A one-rung ladder keeps the former 4 (nothing
runs beside it), and a rung at a preset without lookahead one
(NO_LOOKAHEAD_PRESETS: more are not repeatable).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.media.model import Rendition

# Slice threads shared out over a ladder of several rungs by pixel share: 5 gives the default 1080p ladder
# 3/1/1/1 (the 1080p rung, 57 % of the pixels, otherwise runs alone long after the others: wall > CPU/2 on two
# cores). Was 2 (1/1/1/1); 4 (2/1/1/1) adopted 2026-12-04 with the levers below (table under
# LARGEST_RUNG_X264); 5 adopted 2026-12-06 with LARGEST_LAST, once the small rungs' encoders no longer waited
# on the largest's (a third slice there measured no faster before): the pipeline's ffmpeg alone on 30 s of
# testsrc2, 3 alternated runs, 19.72 -> 18.38 s (faster in each pair), cores busy 1.77 -> 1.80; bench/ladder.py
# (`pipeline-budget5`, 3 interleaved runs, VMAF per rung): footage 0.804x -> 0.721x the hand-written command's
# wall (VMAF 1080p 96.68 -> 96.63, the rest the same), testsrc2 0.841x -> 0.840x (94.54 -> 94.56).
SLICE_BUDGET = 5
# x264 preset for every rung smaller than the largest of a ladder of several (None: the family's, veryfast).
# Measured 2026-12-03 21:04-21:53 with the pipeline's own argv (one ffmpeg each, alternated, 10 s sources,
# the 2-core machine shared at a 1-minute load of 19-30: CPU seconds of one variant moved up to ~20 % run
# to run, so medians of 3; README "Small rungs superfast"). VMAF v0.6.1 per rung against the source,
# minus the hand-written command's (bench/ladder.py `hand`: 96.31 / 93.52 / 89.54 / 82.49 footage,
# 94.68 / 87.74 / 79.52 / 71.35 testsrc2):
#
#   variant                          footage 1080p24: CPU s (runs)    VMAF - hand              testsrc2 1080p30: CPU s (runs)   VMAF - hand
#   hand-written (4 slices a rung)   24.92 (23.35 24.92 28.25)        0                        22.71 (23.99 22.11 22.71)       0
#   as before (every rung veryfast)  23.35 (23.35 20.16 23.45) 0.94x  +0.14 +0.14 +0.38 +0.44  20.11 (20.11 20.56 19.40) 0.89x  +0.06 -0.06 +0.59 +0.22
#   720/480/360 superfast <- adopted 19.14 (16.78 20.46 19.14) 0.77x  +0.14 +0.11 +0.02 -0.26  17.31 (18.50 16.69 17.31) 0.76x  +0.06 -0.27 -0.15 +0.03
#     + 2 slices in 1080p            19.85 (19.85 19.89 19.68) 0.80x  +0.10 = = =              16.38 (15.57 16.74 16.38) 0.72x  -0.01 = = =
#     + 1080p partitions=i8x8,i4x4   16.68 (14.69 17.34 16.68) 0.67x  +0.23 = = =              15.51 (15.51 15.36 16.25) 0.68x  -0.44 = = =
#     + 1080p me=dia                 17.10 (one run)                  +0.16 = = =
#     + bilinear for 480p/360p       18.51 (one run)                  -6.66 / -15.97: refused
#
# The small rungs are 43 % of the pixels but took ~half the x264 CPU at veryfast (5.4 of 11.5 s on testsrc2,
# bench/ladder.py --threads; more on real motion: hex search, mbtree and its lookahead); superfast drops those, and their VMAF stays within 0.3 of the
# hand-written command's (it costs the pipeline's own veryfast 360p 0.2-0.7). Every preset cut on the
# 1080p rung itself lost 0.5-1.5 VMAF (module doc, README "More ladder levers"), so it keeps veryfast.
SMALL_RUNG_PRESET: str | None = "superfast"
# x264 options added to the largest rung's in a ladder of several (None: none). bframes=0 since 2026-12-07 (the
# table under SMALL_RUNG_X264); me=dia adopted 2026-12-04 with
# SLICE_BUDGET 4 and SPARE_SMALLEST_RUNG, on a quiet machine (only the bench running), bench/ladder.py, 30 s
# cuts, median of 3 cold runs each, interleaved; VMAF v0.6.1 per rung 1080/720/480/360 minus the hand-written
# command's (hand: footage 96.62 93.74 89.76 82.82, testsrc2 94.63 87.65 79.81 71.68):
#
#   variant (all: 720/480 superfast)               footage 1080p24: wall / hand, CPU   VMAF - hand               testsrc2 1080p30: wall / hand   VMAF - hand
#   before (budget 2, 360p superfast)              27.05 s / 30.60 = 0.88x, 42.8 s      +0.14 +0.01 -0.07 -0.54   (run 1 of 3)                    +0.09 -0.24 -0.10 -0.19
#   budget 4 + 360p veryfast                       25.79 s / 30.60 = 0.84x, 45.3 s      +0.08 +0.01 -0.07 +0.52
#     + 1080p partitions=i8x8,i4x4                 22.91 s / 30.60 = 0.75x, 41.2 s      +0.15 = = =               (run 1 of 3)                    -0.62: refused
#   budget 2 + 360p veryfast + 1080p partitions    21.78 s / 28.77 = 0.76x, 35.9 s      +0.22 = = =               27.36 s / 28.12 = 0.97x        -0.48 (0.02 from the limit: refused)
#   budget 4 + 360p veryfast + 1080p me=dia <-     22.10 s / 28.77 = 0.77x, 39.7 s      +0.06 +0.01 -0.07 +0.52   24.38 s / 28.12 = 0.87x        -0.09 -0.24 -0.10 +0.22
#
# me=dia (superfast's motion search; veryfast's is hex) keeps the 1080p rung within 0.1 VMAF on both sources
# where partitions did not; the 2 slices spread its work over both cores. On the synthetic testsrc2 (30 fps,
# sharp edges) the pipeline's wall is 0.87x the hand-written command's, not 0.8x: its CPU is 0.81x but its
# threads keep the cores less busy (1.71 of 2 against the hand-written command's 16 slice threads' 1.83).
#
# More cuts on the largest rung, measured 2026-12-06 on a quiet machine and not adopted: the 1080p rung alone (one
# ffmpeg each, this rung's argv: veryfast, 2 slice threads, VBV), 30 s cuts, one run each, CPU s and VMAF v0.6.1
# (every 5th frame):
#
#   1080p rung                          testsrc2: CPU s   VMAF     footage: CPU s   VMAF
#   hand-written (4 slices, hex)        18.71             94.63    23.67            96.62
#   as shipped (me=dia)                 16.77             94.54    20.26            96.68
#     + partitions without i4x4         16.93             94.38    19.70            96.66
#     + partitions without b8x8         16.79             94.46    21.07            96.69
#     + weightp=0                       17.04             94.54    19.99            96.68
#     + rc-lookahead=5                  17.38             94.45    19.62            96.67
#     + bframes=2                       17.39             94.55    20.37            96.69
#
# None saves more than this machine's run-to-run noise (~3 %). (aq-mode=0 scored +0.28 / +0.69 at the same CPU:
# it moves bits to where VMAF looks and away from flat areas, a metric effect, not a saving.) Where the rest goes,
# on testsrc2 (the whole argv alone, quiet, per thread): the 1080p rung 14.9 CPU s (5.3 of them its two lookahead
# threads), 720p 5.2, 480p 2.6, 360p 2.4, decoding 2.3, scaling 1.8 (swscale's own slice threads; zimg's zscale
# instead measured 1.5 % less CPU, within noise), AAC 0.5; 17.6 s wall for 30.3 CPU s, 1.72 cores busy evenly
# through the run, against the hand-written command's 20.7-21.5 s for 38-40 CPU s (1.85).
LARGEST_RUNG_X264: str | None = "me=dia:bframes=0"
# x264 options added to every rung that takes SMALL_RUNG_PRESET (None: none; the spared smallest rung keeps the
# family's settings, B-frames included).
#
# No B-frames (bframes=0 here and in LARGEST_RUNG_X264) and lanczos scaling (VOD_SCALER), adopted 2026-12-07.
# Where the CPU went (the table above): the 1080p rung's lookahead threads took 5.3 of its 14.9 CPU s, and
# at veryfast that lookahead also decides where B-frames go (b-adapt 1, lowres costs of each candidate run);
# without B-frames it only feeds mbtree and VBV. In the must-show run below the ladder's CPU fell 9-10 %
# (testsrc2 30.2 against 33.3 s, footage 38.5 against 42.9 s), its wall 11-13 %. The small rungs at superfast have no lookahead, but
# x264 still analyses bframes+1 frames ahead for the frame types; per-thread CPU (bench/ladder.py --threads,
# 10 s cuts, one run): 720p 2.21 -> 1.58 s (testsrc2) and 2.40 -> 2.02 s (footage), 480p 1.08 -> 0.83 and
# 1.10 -> 0.92. What it costs is compression: at the same bits B-frames buy picture, which VMAF sees
# (testsrc2's 720p -0.33, 480p -0.74 at bicubic, 10 s). Lanczos scaling pays that back and more in the scaled
# rungs (VMAF v0.6.1 per rung, 10 s cuts, bicubic -> lanczos, every rung else as shipped before:
# testsrc2 720p 87.47 -> 88.14, 480p 79.37 -> 80.26, 360p 71.57 -> 73.25; footage 93.63 -> 93.45, 89.56 ->
# 89.94, 82.93 -> 84.58; spline: no gain, 87.39 / 79.46 / 71.89 and 93.26 / 89.14 / 82.92). The unscaled
# 1080p rung has no such help and gives up 0.18 on testsrc2 (+0.09 on the footage). bench/ladder.py, 30 s,
# VMAF minus the hand-written command's (hand: testsrc2 94.63 / 87.65 / 79.81 / 71.68, footage 96.62 /
# 93.74 / 89.76 / 82.82), then wall and CPU over the hand-written command's, 3 interleaved cold runs each
# (2026-12-07, quiet but for the bench's own ffmpegs; VMAF from the 12:14 runs, the same bytes in every run):
#
#   variant                                        testsrc2 VMAF - hand        footage VMAF - hand
#   as shipped 2026-12-06 (bicubic, B-frames)      -0.07 -0.24 -0.10 +0.22     +0.01 +0.01 -0.07 +0.52
#   lanczos, small rungs bframes=0, 360p spared    -0.07 +0.12 -0.12 +1.91     +0.01 +0.14 +0.64 +2.15
#     + 1080p bframes=0  <- adopted                -0.25 = = =                 +0.10 = = =
#
#   wall / hand (CPU / hand), median of 3          testsrc2                    footage
#   12:14-12:34: as shipped 2026-12-06             0.834 (0.822)               0.820 (0.809)
#                every change, 360p superfast too  0.622 (0.635)               0.667 (0.657)
#   12:37-12:52 (the must-show run, README):
#                as shipped 2026-12-06             0.779 (0.765)               0.777 (0.773)
#                adopted (360p spared)             0.681 (0.695)               0.693 (0.693)
#
# The 360p rung stays spared (veryfast, B-frames): superfast and no B-frames there measured +1.41 / +1.61 with
# lanczos, but a small rung at a low bitrate is where a cheap preset has lost most (core/media/ladder.py: the
# animation's 240p, 7.5 VMAF at superfast), and it is ~6 % of the pixels. No B-frames also means no
# reordering: every frame leaves x264 as soon as it is coded.
SMALL_RUNG_X264: str | None = "bframes=0"
# Whether the smallest rung of a ladder of three or more keeps the family's preset when the others between it and
# the largest take SMALL_RUNG_PRESET: superfast cost the 360p rung 0.54 VMAF against the hand-written
# command's on the footage (table above), past the 0.5 allowed, while that rung is ~6 % of the ladder's
# pixels, so sparing it costs little CPU; it is also the rung the slowest connections see.
SPARE_SMALLEST_RUNG: bool = True
# Whether the largest rung's picture is the filter graph's last output, not its first. ffmpeg (7 and
# later, fftools/ffmpeg_sched.c `sch_add_enc`) gives every encoder an input queue of one frame, and the
# graph's thread hands each frame to its outputs in the graph's order, waiting at the first full queue.
# The largest rung's encoder is the slowest: first in line, it kept the graph waiting while the small
# rungs' encoders had finished their frame and had no next one (the cores idled between frames); last
# in line, the small encoders already hold their next frame while the graph waits on it. The same
# encoders get the same frames (every segment byte-identical). Measured 2026-12-06 on the 2-core machine,
# quiet, the pipeline's ffmpeg alone on bench/ladder.py's 30 s testsrc2 (4 runs each, alternated): wall
# 19.10 s -> 18.31 s (median; faster in each of the 4 pairs), cores busy 1.71-1.73 -> 1.75-1.76, CPU 32.9 ->
# 32.0 s; footage: see the README ("The largest rung last").
LARGEST_LAST = True
ONE_RUNG_THREADS = 4  # the former fixed count in every rung
# x264 presets without a lookahead (rc-lookahead 0). Sliced threads are repeatable only with one: measured
# 2026-12-06 with the bundled x264 (8 s of testsrc2, VBV as the ladder's, 3-4 encodes each), 854x480 with 2
# slice threads gave different bytes on every encode at superfast, and at veryfast with rc-lookahead=0,
# but the same bytes at veryfast, at veryfast with rc-lookahead=5, and at superfast with rc-lookahead=10
# (1920x1080 with 3 at veryfast: the same). So a rung at one of these presets gets one slice thread
# whatever its share of the pixels (a retried job must write the same bytes; encode.py).
NO_LOOKAHEAD_PRESETS = ("ultrafast", "superfast")
# The scaler of every scaled rung: VOD_SCALER for the H.264 VOD ladder (the tuned one, with the presets above;
# lanczos since 2026-12-07, measured under SMALL_RUNG_X264), SCALER for the rest (live, where every CPU second
# goes to keeping up, and the codecs not measured here). A rung the source's size is not scaled (ffmpeg's
# scale passes the picture through), so the 1080p rung of a 1080p source is the same either way.
SCALER = "bicubic"
VOD_SCALER = "lanczos"


@dataclass(frozen=True)
class RungPlan:
    parent: int | None  # the rung (index in the ladder) this one is scaled from; None: the source picture
    threads: int  # x264 sliced threads
    preset: str | None = None  # x264 preset when not the family's
    x264: str | None = None  # more x264 options (key=value:...) for this rung


def plan_rungs(renditions: tuple[Rendition, ...] | list[Rendition], small_preset: str | None = None,
               within: tuple[Rendition, ...] | list[Rendition] | None = None,
               largest_x264: str | None = None, spare_smallest: bool = False,
               small_x264: str | None = None) -> tuple[RungPlan, ...]:
    """One `RungPlan` per rendition, in ladder order (pure); `small_preset` for every rung smaller than the
    largest, `largest_x264` for the largest rung(s) of a ladder of several; `spare_smallest`: in a ladder of
    three or more sizes the smallest rung keeps the family's preset (`SPARE_SMALLEST_RUNG`); `small_x264`:
    x264 options for every rung that takes `small_preset` (`SMALL_RUNG_X264`).

    `within`: the whole ladder when `renditions` are only some of its rungs (a
    per-title trial encodes the sizes that still need a trial): each rung's
    preset and slice threads are then decided by its size in the whole ladder,
    so a trial encodes a rung as the ladder's encode will (slices and presets
    change the picture). What it is scaled from is always decided among
    `renditions`: those are the pictures this ffmpeg makes.
    """
    pixels = [r.width * r.height for r in renditions]
    whole = [r.width * r.height for r in (renditions if within is None else within)]
    total, largest, smallest = (sum(whole) or 1), max(whole, default=0), min(whole, default=0)
    spared = smallest if spare_smallest and len(set(whole)) >= 3 else None
    plans = []
    for i, r in enumerate(renditions):
        # The smallest strictly larger rung that covers this one in both dimensions (ties: the first);
        # strictly larger area keeps the graph acyclic. None: scaled from the source.
        covers = [j for j, o in enumerate(renditions)
                  if o.width >= r.width and o.height >= r.height and pixels[j] > pixels[i]]
        parent = min(covers, key=lambda j: (pixels[j], j)) if covers else None
        threads = ONE_RUNG_THREADS if len(whole) == 1 else max(1, round(SLICE_BUDGET * pixels[i] / total))
        small = len(whole) > 1 and pixels[i] < largest and pixels[i] != spared
        if small and small_preset in NO_LOOKAHEAD_PRESETS:
            threads = 1  # repeatable bytes: see NO_LOOKAHEAD_PRESETS
        top = largest_x264 if len(whole) > 1 and pixels[i] == largest else None
        plans.append(RungPlan(parent=parent, threads=threads, preset=small_preset if small else None,
                              x264=small_x264 if small and small_x264 else top))
    return tuple(plans)


def build_ladder_graph(head: str, renditions: tuple[Rendition, ...] | list[Rendition],
                       plans: tuple[RungPlan, ...], tap: tuple[int, str] | None = None, scaler: str = SCALER) -> str:
    """The -filter_complex: `head` (e.g. ``[0:v]fps=30,``) then a tree of scales, rung i out on ``[v{i}]`` (pure).

    Every rung's picture is `scale` (`scaler`'s flags),`setsar=1,format=yuv420p` of its parent's
    (square pixels: the ladder's sizes are display sizes); a picture that
    feeds other rungs is `split` after it, so a child scales the finished
    yuv420p picture of the rung above. `tap` (rung index, filter chain): that
    rung's picture also goes through the chain, out on ``[vsb]`` (the
    storyboard sheet, `core.media.images.StoryboardTap`).
    """
    children: dict[int | None, list[int]] = {}
    for i, p in enumerate(plans):
        children.setdefault(p.parent, []).append(i)
    roots = children.get(None, [])
    pixels = [r.width * r.height for r in renditions]
    # The largest rungs' pictures leave the graph last (LARGEST_LAST): their chain ends in [o{i}], and
    # a `null` at the end of the graph makes it the output [v{i}].
    last = [i for i, p in enumerate(pixels) if p == max(pixels)] if LARGEST_LAST and len(set(pixels)) > 1 else []
    graph = head + f"split={len(roots)}" + "".join(f"[s{i}]" for i in roots)
    for i, r in enumerate(renditions):
        parent = plans[i].parent
        graph += f";[{'s' if parent is None else f'c{parent}_'}{i}]scale={r.width}:{r.height}:flags={scaler}"
        graph += ",setsar=1,format=yuv420p"
        outs = [f"[o{i}]" if i in last else f"[v{i}]"] + [f"[c{i}_{k}]" for k in children.get(i, [])]
        outs += ["[sb]"] if tap is not None and tap[0] == i else []
        graph += f",split={len(outs)}" + "".join(outs) if len(outs) > 1 else outs[0]
    graph += f";[sb]{tap[1]}[vsb]" if tap is not None else ""
    return graph + "".join(f";[o{i}]null[v{i}]" for i in last)
