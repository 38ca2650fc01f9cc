"""Exact-output tests of the rung planner: what each rung is scaled from, its x264 threads, the filtergraph."""

from fractions import Fraction

import pytest

from core.media.model import Rendition
from core.media.rungs import RungPlan, build_ladder_graph, plan_rungs


def rungs(*sizes: tuple[int, int]) -> tuple[Rendition, ...]:
    return tuple(Rendition(f"h264-{h}p", "h264", w, h, 1_000_000, 1_500_000, 2_000_000, Fraction(30))
                 for w, h in sizes)


DEFAULT_1080 = rungs((1920, 1080), (1280, 720), (854, 480), (640, 360))


@pytest.mark.parametrize(("renditions", "plans"), [
    pytest.param(DEFAULT_1080,
                 # Each rung from the one above; 1080p is 57 % of the pixels: round(5 x 0.57) = 3 slice threads.
                 (RungPlan(None, 3), RungPlan(0, 1), RungPlan(1, 1), RungPlan(2, 1)), id="default-1080p"),
    pytest.param(rungs((1280, 720)), (RungPlan(None, 4),), id="one-rung-keeps-4-slices"),
    # 69 % and 31 % of the pixels: round(5 x 0.69) = 3, round(5 x 0.31) = 2.
    pytest.param(rungs((1280, 720), (854, 480)), (RungPlan(None, 3), RungPlan(0, 2)), id="two-rungs"),
    # 80 % of the pixels: round(5 x 0.8) = 4; it would finish long after the other.
    pytest.param(rungs((1280, 720), (640, 360)), (RungPlan(None, 4), RungPlan(0, 1)), id="one-big-rung"),
    # An explicit ladder in any order: the parent is the smallest rung that covers it.
    pytest.param(rungs((640, 360), (1920, 1080), (1280, 720)),
                 (RungPlan(2, 1), RungPlan(None, 3), RungPlan(1, 1)), id="unordered"),
    # A rung wider than the larger one is not covered (never upscale in either dimension): from the source.
    pytest.param(rungs((1280, 720), (1290, 480)), (RungPlan(None, 3), RungPlan(None, 2)), id="not-covered"),
    # Same size twice (two bitrates): both from the source, neither from the other (round(2.5) = 2 each).
    pytest.param(rungs((1280, 720), (1280, 720)), (RungPlan(None, 2), RungPlan(None, 2)), id="equal-sizes"),
])  # fmt: skip
def test_plan_rungs(renditions, plans):
    assert plan_rungs(renditions) == plans


def test_graph_cascades_each_rung_from_the_one_above():
    # The largest rung's picture is the graph's last output (rungs.LARGEST_LAST): [o0] becomes [v0] at the end.
    assert build_ladder_graph("[0:v]fps=30,", DEFAULT_1080, plan_rungs(DEFAULT_1080)) == (
        "[0:v]fps=30,split=1[s0]"
        ";[s0]scale=1920:1080:flags=bicubic,setsar=1,format=yuv420p,split=2[o0][c0_1]"
        ";[c0_1]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][c1_2]"
        ";[c1_2]scale=854:480:flags=bicubic,setsar=1,format=yuv420p,split=2[v2][c2_3]"
        ";[c2_3]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v3]"
        ";[o0]null[v0]"
    )


def test_graph_outputs_in_the_order_before_largest_last(monkeypatch):
    monkeypatch.setattr("core.media.rungs.LARGEST_LAST", False)
    assert build_ladder_graph("[0:v]fps=30,", DEFAULT_1080, plan_rungs(DEFAULT_1080)) == (
        "[0:v]fps=30,split=1[s0]"
        ";[s0]scale=1920:1080:flags=bicubic,setsar=1,format=yuv420p,split=2[v0][c0_1]"
        ";[c0_1]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][c1_2]"
        ";[c1_2]scale=854:480:flags=bicubic,setsar=1,format=yuv420p,split=2[v2][c2_3]"
        ";[c2_3]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v3]"
    )


def test_every_rung_of_the_largest_size_goes_last():
    r = rungs((640, 360), (1280, 720), (1280, 720))
    assert build_ladder_graph("[0:v]", r, plan_rungs(r)) == (
        "[0:v]split=2[s1][s2]"
        ";[c1_0]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v0]"
        ";[s1]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=2[o1][c1_0]"
        ";[s2]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p[o2]"
        ";[o1]null[v1];[o2]null[v2]"
    )


def test_graph_tree_with_two_roots():
    # 1290x480 is not covered by 1280x720, so both come from the source; 640x360 from the smallest cover.
    r = rungs((1280, 720), (1290, 480), (640, 360), (360, 240))
    assert build_ladder_graph("[0:v]", r, plan_rungs(r)) == (
        "[0:v]split=2[s0][s1]"
        ";[s0]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p[o0]"
        ";[s1]scale=1290:480:flags=bicubic,setsar=1,format=yuv420p,split=2[v1][c1_2]"
        ";[c1_2]scale=640:360:flags=bicubic,setsar=1,format=yuv420p,split=2[v2][c2_3]"
        ";[c2_3]scale=360:240:flags=bicubic,setsar=1,format=yuv420p[v3]"
        ";[o0]null[v0]"
    )


def test_graph_without_children_is_the_flat_split():
    r = rungs((1280, 720), (1280, 720))
    assert build_ladder_graph("[0:v]fps=25,", r, plan_rungs(r)) == (
        "[0:v]fps=25,split=2[s0][s1]"
        ";[s0]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p[v0]"
        ";[s1]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p[v1]"
    )


def test_a_small_rung_preset_goes_to_every_rung_but_the_largest():
    plans = plan_rungs(rungs((854, 480), (1920, 1080), (640, 360)), small_preset="superfast")
    assert [p.preset for p in plans] == ["superfast", None, "superfast"]
    assert plan_rungs(rungs((1280, 720),), small_preset="superfast")[0].preset is None  # one rung: the family's
    assert all(p.preset is None for p in plan_rungs(rungs((1280, 720), (640, 360))))  # the default: none
    # Two rungs of the largest size (two bitrates): both are the top picture, both keep the family's preset.
    plans = plan_rungs(rungs((1280, 720), (1280, 720), (640, 360)), small_preset="superfast")
    assert [p.preset for p in plans] == [None, None, "superfast"]


def test_some_rungs_of_a_ladder_are_planned_as_in_the_whole_ladder():
    # A per-title trial encodes only the sizes that still need one: 720p and 360p of the 1080p ladder. Alone,
    # 720p would be the largest (the family's preset, 4 slices for 80 % of the pixels); in the ladder it is a
    # small rung with one thread, and the trial must measure the picture the ladder's encode will make.
    some = (DEFAULT_1080[1], DEFAULT_1080[3])
    assert plan_rungs(some, small_preset="superfast") == (RungPlan(None, 4), RungPlan(0, 1, "superfast"))
    assert plan_rungs(some, small_preset="superfast", within=DEFAULT_1080) == (
        RungPlan(None, 1, "superfast"), RungPlan(0, 1, "superfast"))
    # One size of a ladder of several: not the one-rung ladder's 4 slices.
    assert plan_rungs(DEFAULT_1080[:1], small_preset="superfast", within=DEFAULT_1080) == (RungPlan(None, 3),)
    assert plan_rungs(DEFAULT_1080, small_preset="superfast", within=DEFAULT_1080) == plan_rungs(
        DEFAULT_1080, small_preset="superfast")


def test_largest_rung_options_go_to_the_largest_rung_of_a_ladder_of_several():
    plans = plan_rungs(DEFAULT_1080, small_preset="superfast", largest_x264="partitions=i8x8,i4x4")
    assert [(p.preset, p.x264) for p in plans] == [(None, "partitions=i8x8,i4x4")] + [("superfast", None)] * 3
    assert plan_rungs(DEFAULT_1080[:1], largest_x264="partitions=i8x8,i4x4")[0].x264 is None  # one rung: none
    # A trial of some sizes: the whole ladder's largest, not the subset's.
    some = plan_rungs(DEFAULT_1080[1:], largest_x264="partitions=i8x8,i4x4", within=DEFAULT_1080)
    assert [p.x264 for p in some] == [None, None, None]


def test_small_rung_options_go_with_the_small_preset():
    # SMALL_RUNG_X264 (bframes=0 by default): every rung that takes the small preset, not the spared smallest,
    # not the largest (its own options), not a one-rung ladder.
    plans = plan_rungs(DEFAULT_1080, small_preset="superfast", largest_x264="me=dia:bframes=0", spare_smallest=True,
                       small_x264="bframes=0")
    assert [(p.preset, p.x264) for p in plans] == [
        (None, "me=dia:bframes=0"), ("superfast", "bframes=0"), ("superfast", "bframes=0"), (None, None)]
    assert plan_rungs(DEFAULT_1080[:1], small_preset="superfast", small_x264="bframes=0")[0].x264 is None
    # A trial of some sizes gets them as the whole ladder would.
    some = plan_rungs(DEFAULT_1080[2:], small_preset="superfast", within=DEFAULT_1080, spare_smallest=True,
                      small_x264="bframes=0")
    assert [(p.preset, p.x264) for p in some] == [("superfast", "bframes=0"), (None, None)]


def test_the_scaler_is_the_callers():
    # The H.264 VOD ladder scales with rungs.VOD_SCALER (lanczos), everything else with SCALER (bicubic).
    r = rungs((1280, 720), (640, 360))
    assert build_ladder_graph("[0:v]", r, plan_rungs(r), scaler="lanczos") == (
        "[0:v]split=1[s0]"
        ";[s0]scale=1280:720:flags=lanczos,setsar=1,format=yuv420p,split=2[o0][c0_1]"
        ";[c0_1]scale=640:360:flags=lanczos,setsar=1,format=yuv420p[v1]"
        ";[o0]null[v0]"
    )
    assert build_ladder_graph("[0:v]", r, plan_rungs(r)).count("flags=bicubic") == 2


def test_spare_smallest_keeps_the_family_preset_on_the_smallest_of_three_or_more_sizes():
    plans = plan_rungs(DEFAULT_1080, small_preset="superfast", spare_smallest=True)
    assert [p.preset for p in plans] == [None, "superfast", "superfast", None]
    # Two sizes: the smaller is the only small rung, and it is not spared.
    assert [p.preset for p in plan_rungs(DEFAULT_1080[:2], small_preset="superfast", spare_smallest=True)] \
        == [None, "superfast"]
    # A trial of the smallest size alone is planned as in the whole ladder: spared.
    assert [p.preset for p in plan_rungs(DEFAULT_1080[3:], small_preset="superfast", within=DEFAULT_1080,
                                         spare_smallest=True)] == [None]
    assert plan_rungs(DEFAULT_1080, small_preset="superfast")[3].preset == "superfast"  # off by default


def test_a_rung_without_lookahead_gets_one_slice_thread():
    # x264 without a lookahead (superfast) and sliced threads writes different bytes on every encode
    # (rungs.NO_LOOKAHEAD_PRESETS): a large second rung at superfast keeps one thread, the largest its share.
    r = rungs((1920, 1080), (1600, 900), (640, 360))
    assert [p.threads for p in plan_rungs(r)] == [3, 2, 1]  # 55 %, 38 %, 6 % of the pixels
    assert [(p.threads, p.preset) for p in plan_rungs(r, small_preset="superfast", spare_smallest=True)] == [
        (3, None), (1, "superfast"), (1, None)]
    assert [p.threads for p in plan_rungs(r, small_preset="veryfast")] == [3, 2, 1]  # with a lookahead: its share
