"""How each rung of a ladder is made inside the one decode-once ffmpeg: what it is scaled from, and x264 threads.

Pure planners (`plan_rungs`, `build_ladder_graph`) with exact-output tests
(tests/core/media/test_rungs.py); `core.media.encode` puts the result in the
argv. Measured with bench/ladder.py's source (30 s 1080p30 testsrc2 ->
1080/720/480/360 H.264 veryfast at the planned bitrates), on the project's
2-core machine, CPU seconds (user+sys of the one ffmpeg; the machine was
shared, so wall times are not comparable run to run), VMAF v0.6.1 of each
rung upscaled bicubic to the source's size against the source:

    LEVER_TABLE

Cascaded scaling: each rung is scaled from the smallest rung already made
that covers it, not from the source. With a 1080p source the 720p rung is
the same picture either way (the 1080p rung is the source unscaled), and
480p/360p read 2.25-5x fewer pixels. From a 4K source it saves far more.

Threads: x264 frame threads are not repeatable with VBV on (see encode.py),
so each rung gets sliced threads with a count that depends on the ladder
only, never on the machine: a retried job on another machine writes the
same bytes. ffmpeg runs every encoder in its own thread, so the rungs already
run side by side; extra slices in small rungs only add sync overhead and
cost quality (each slice predicts alone), while the top rung, more than half
of the pixels, would otherwise be the last to finish. So a rung gets slices
in proportion to its share of the ladder's pixels, `SLICE_BUDGET` in all,
at least one.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.media.model import Rendition

# The former fixed count (4 slice threads in every rung): a one-rung ladder keeps it.
SLICE_BUDGET = 4
SCALER = "bicubic"


@dataclass(frozen=True)
class RungPlan:
    parent: int | None  # the rung (index in the ladder) this one is scaled from; None: the source picture
    threads: int  # x264 sliced threads


def plan_rungs(renditions: tuple[Rendition, ...] | list[Rendition]) -> tuple[RungPlan, ...]:
    """One `RungPlan` per rendition, in ladder order (pure)."""
    pixels = [r.width * r.height for r in renditions]
    total = sum(pixels) or 1
    plans = []
    for i, r in enumerate(renditions):
        # The smallest strictly larger rung that covers this one in both dimensions (ties: the first);
        # strictly larger area keeps the graph acyclic. None: scaled from the source.
        covers = [j for j, o in enumerate(renditions)
                  if o.width >= r.width and o.height >= r.height and pixels[j] > pixels[i]]
        parent = min(covers, key=lambda j: (pixels[j], j)) if covers else None
        threads = max(1, round(SLICE_BUDGET * pixels[i] / total))
        plans.append(RungPlan(parent=parent, threads=threads))
    return tuple(plans)


def build_ladder_graph(head: str, renditions: tuple[Rendition, ...] | list[Rendition],
                       plans: tuple[RungPlan, ...]) -> str:
    """The -filter_complex: `head` (e.g. ``[0:v]fps=30,``) then a tree of scales, rung i out on ``[v{i}]`` (pure).

    Every rung's picture is `scale,setsar=1,format=yuv420p` of its parent's
    (square pixels: the ladder's sizes are display sizes); a picture that
    feeds other rungs is `split` after it, so a child scales the finished
    yuv420p picture of the rung above.
    """
    children: dict[int | None, list[int]] = {}
    for i, p in enumerate(plans):
        children.setdefault(p.parent, []).append(i)
    roots = children.get(None, [])
    graph = head + f"split={len(roots)}" + "".join(f"[s{i}]" for i in roots)
    for i, r in enumerate(renditions):
        parent = plans[i].parent
        graph += f";[{'s' if parent is None else f'c{parent}_'}{i}]scale={r.width}:{r.height}:flags={SCALER}"
        graph += ",setsar=1,format=yuv420p"
        kids = children.get(i, [])
        graph += f",split={len(kids) + 1}[v{i}]" + "".join(f"[c{i}_{k}]" for k in kids) if kids else f"[v{i}]"
    return graph
