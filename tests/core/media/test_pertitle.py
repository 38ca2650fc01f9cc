"""The per-title planner on recorded measurements: hull and rung choice, exact outputs (no ffmpeg)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from core.media.analysis import Sample, next_crf, percentile, plan_samples, score_size
from core.media.ladder import plan_ladder
from core.media.model import RungQuality
from core.media.pertitle import (ChosenRung, QualityMeasurements, RatePoint, choose_rungs, convex_hull, crf_for,
                                 same_size_rungs)


def pts(short: int, *pairs: tuple[int, float]) -> list[RatePoint]:
    return [RatePoint(short, rate, vmaf, round(vmaf - 10, 2)) for rate, vmaf in pairs]


# A 720p title, measured at 4 rates per size, each rate 2x the one below: concave curves.
CURVES = (pts(720, (375_000, 80.0), (750_000, 88.0), (1_500_000, 93.0), (3_000_000, 96.0))
          + pts(480, (187_500, 74.0), (375_000, 84.0), (750_000, 89.0), (1_500_000, 91.0))
          + pts(360, (100_000, 60.0), (200_000, 72.0), (400_000, 80.0), (800_000, 84.0)))
CAPS = {720: 3_000_000, 480: 1_500_000, 360: 800_000}

# Recorded by core.media.analysis on a 6 s 640x360 smptebars source (2 samples, x264 veryfast):
# the encoder cannot spend the table's bits on a still picture (level 1.0 and 0.4 land at ~50k).
RECORDED_STATIC = (RatePoint(360, 49016, 97.11, 95.7), RatePoint(360, 51036, 96.51, 92.13),
                   RatePoint(360, 36540, 92.58, 80.37), RatePoint(360, 30232, 68.67, 66.0),
                   RatePoint(240, 48752, 90.37, 87.13), RatePoint(240, 46376, 88.01, 78.82),
                   RatePoint(240, 28440, 74.11, 54.39), RatePoint(240, 20452, 44.31, 43.37))


def test_hull_drops_dominated_and_under_the_curve_points():
    hull = convex_hull(pts(720, (100_000, 50.0), (200_000, 60.0), (400_000, 80.0), (800_000, 85.0),
                           (900_000, 84.0), (1_600_000, 85.0)))
    # 200k/60 is under the line 100k/50 -> 400k/80 (slope 15 per doubling vs 10); 900k/84 and 1.6M/85
    # buy nothing over 800k/85.
    assert [(p.bitrate, p.vmaf_mean) for p in hull] == [(100_000, 50.0), (400_000, 80.0), (800_000, 85.0)]


def test_hull_of_recorded_static_points():
    hull = convex_hull(RECORDED_STATIC)
    assert [(p.short, p.bitrate, p.vmaf_mean) for p in hull] == [
        (240, 20452, 44.31), (240, 28440, 74.11), (360, 36540, 92.58), (360, 49016, 97.11)]


def test_rungs_capped_where_each_size_stops_improving_exact():
    rungs = choose_rungs(QualityMeasurements(tuple(CURVES), samples=3, sample_seconds=6.0), CAPS, max_rungs=4)
    # top: best within caps is 96 (720p at 3M), minus 0.5 -> 95.5 at 1.5M * 2^(5/6);
    # 480p reaches 91 at its cap -> 90.5 at 750k * 2^(3/4); 360p 84 -> 83.5 at 400k * 2^(7/8).
    assert rungs == [ChosenRung(720, 2_673_000, 95.5, 85.5), ChosenRung(480, 1_261_000, 90.5, 80.5),
                     ChosenRung(360, 734_000, 83.5, 73.5)]


def test_a_rung_not_much_cheaper_than_the_one_above_is_dropped():
    # 480p saturates early (89.5 already at 375k): its rung would be 1.02M, under 1.4x below 720p's 1.2M.
    close = (pts(720, (600_000, 90.0), (1_200_000, 95.0), (3_000_000, 95.5))
             + pts(480, (375_000, 89.5), (750_000, 90.0), (1_500_000, 91.0)))
    rungs = choose_rungs(QualityMeasurements(tuple(close), 2, 4.0), {720: 3_000_000, 480: 1_500_000})
    assert rungs == [ChosenRung(720, 1_200_000, 95.0, 85.0)]


# bench/quality.py's motion source (12 s 720p): the table's rungs scored 94.2 / 86.5 / 82.1 / 71.0 at 3M / 1.5M /
# 800k / 400k (whole renditions); each size's curve through its table point.
MOTION_LIKE = (pts(720, (750_000, 80.0), (1_500_000, 88.0), (3_000_000, 94.2))
               + pts(480, (375_000, 72.0), (750_000, 80.0), (1_500_000, 86.5))
               + pts(360, (200_000, 66.0), (400_000, 75.0), (800_000, 82.1))
               + pts(240, (100_000, 55.0), (200_000, 64.0), (400_000, 71.0)))
CAPS_720 = {720: 3_000_000, 480: 1_500_000, 360: 800_000, 240: 400_000}


def test_a_rung_under_a_jnd_below_the_one_above_and_not_2x_cheaper_is_dropped():
    rungs = choose_rungs(QualityMeasurements(MOTION_LIKE, 2, 4.0), CAPS_720)
    # 360p: 81.6, 4.4 points (under 6) below 480p's 86.0 for 1.87x fewer bits (under 2x): dropped.
    # 240p: 15.5 points below 480p: kept. 480p: 7.7 below 720p: kept.
    assert rungs == [ChosenRung(720, 2_837_000, 93.7, 83.7), ChosenRung(480, 1_422_000, 86.0, 76.0),
                     ChosenRung(240, 381_000, 70.51, 60.51)]


def test_a_rung_close_in_quality_but_2x_cheaper_is_kept():
    # 360p as before, but 2.2x cheaper than 480p (its curve shifted down in rate): a network 480p cannot serve.
    cheaper = tuple(p for p in MOTION_LIKE if p.short != 360) + tuple(
        pts(360, (150_000, 66.0), (300_000, 75.0), (600_000, 82.1)))
    rungs = choose_rungs(QualityMeasurements(cheaper, 2, 4.0), {**CAPS_720, 360: 600_000})
    assert [r.short for r in rungs] == [720, 480, 360, 240]
    assert rungs[2] == ChosenRung(360, 571_000, 81.59, 71.59)


def test_flat_top_is_capped_where_quality_stops_improving():
    flat = pts(720, (375_000, 97.0), (750_000, 98.5), (1_500_000, 99.0), (3_000_000, 99.2))
    rungs = choose_rungs(QualityMeasurements(tuple(flat), 2, 4.0), {720: 3_000_000}, max_rungs=4)
    # 98.7 is reached at 750k * 2^0.4: a third of the table's bits for half a VMAF point.
    assert rungs == [ChosenRung(720, 990_000, 98.7, 88.7)]


def test_recorded_static_title_gets_one_cheap_rung():
    rungs = choose_rungs(QualityMeasurements(RECORDED_STATIC, 2, 4.0), {360: 800_000, 240: 400_000})
    # 240p would reach 89.9 only at ~48k (50k floor): not 1.4x under the 360p rung's 50k, so it is dropped.
    assert rungs == [ChosenRung(360, 50_000, 97.11, 95.7)]


def test_rate_never_exceeds_the_fixed_cap():
    hard = pts(720, (750_000, 40.0), (1_500_000, 50.0), (3_000_000, 60.0), (6_000_000, 70.0))
    rungs = choose_rungs(QualityMeasurements(tuple(hard), 1, 2.0), {720: 3_000_000})
    assert rungs == [ChosenRung(720, 2_898_000, 59.5, 49.5)]
    assert all(r.bitrate <= 3_000_000 for r in rungs)


def test_plan_ladder_with_measurements():
    m = QualityMeasurements(tuple(CURVES), samples=3, sample_seconds=6.0)
    ladder = plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30), measurements=m)
    assert [(r.id, r.width, r.height, r.bitrate, r.max_bitrate, r.buffer_size) for r in ladder.renditions] == [
        ("h264-720p", 1280, 720, 2_673_000, 4_009_500, 5_346_000),
        ("h264-480p", 854, 480, 1_261_000, 1_891_500, 2_522_000),
        ("h264-360p", 640, 360, 734_000, 1_101_000, 1_468_000)]
    assert ladder.quality == {"h264-720p": RungQuality(95.5, 85.5, 3), "h264-480p": RungQuality(90.5, 80.5, 3),
                              "h264-360p": RungQuality(83.5, 73.5, 3)}


def test_plan_ladder_without_points_keeps_the_fixed_table():
    fixed = plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30))
    empty = plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30),
                        measurements=QualityMeasurements((), 0, 0.0))
    assert empty.renditions == fixed.renditions and empty.quality == {} and fixed.quality == {}


@pytest.mark.parametrize("duration, expected", [
    (6.0, [Sample(0.5, 2.0), Sample(3.5, 2.0)]),
    (3.0, [Sample(0.0, 1.5), Sample(1.5, 1.5)]),
    (600.0, [Sample(74.0 + 150 * i, 2.0) for i in range(4)]),  # 2 + 1 per 4 min
    (250.0, [Sample(40.667, 2.0), Sample(124.0, 2.0), Sample(207.333, 2.0)]),
    (479.0, [Sample(78.833, 2.0), Sample(238.5, 2.0), Sample(398.167, 2.0)]),
    (3600.0, [Sample(299.0 + 600 * i, 2.0) for i in range(6)]),  # at most 6
])
def test_plan_samples(duration, expected):
    assert plan_samples(duration) == expected


def test_samples_go_to_the_median_window_of_each_stretch():
    # 20 s, two stretches of 10 s. The first grows busier every second: its median 2 s window starts at 4 s
    # (9 candidate starts, 0-8). The second is calm but for a burst at 14-15 s: a calm window, not the burst
    # (ranked 200 x 6 at 10, 11, 12, 16, 17, 18, then 800, 800, 1400: the 5th is 17).
    activity = [100 * (i + 1) for i in range(10)] + [100] * 4 + [700, 700] + [100] * 4
    assert plan_samples(20.0, activity=activity) == [Sample(4.0, 2.0), Sample(17.0, 2.0)]
    assert plan_samples(20.0, activity=[5] * 20) == [Sample(4.0, 2.0), Sample(14.0, 2.0)]  # ties: the middle
    assert plan_samples(20.0) == [Sample(4.0, 2.0), Sample(14.0, 2.0)]  # no activity: the middles


def test_source_activity_reads_bytes_per_second(tmp_path):
    import subprocess

    from core.media.analysis import source_activity
    from core.media.ffmpeg import find_ffmpeg

    # 2 s of a still card, then 2 s of grain: the second half costs far more bytes.
    path = tmp_path / "two.mp4"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "smptebars=size=320x240:rate=10", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=10,noise=alls=40:allf=t",
                    "-filter_complex", "[0:v]trim=0:2[a];[1:v]trim=0:2,setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", str(path)], check=True)
    activity = source_activity(path)
    assert len(activity) == 4
    assert min(activity[2:]) > 3 * max(activity[:2]), activity


def test_score_size_caps_at_1080_lines():
    assert score_size(3840, 2160) == (1920, 1080)
    assert score_size(1080, 1920) == (1080, 1920)
    assert score_size(2160, 3840) == (1080, 1920)
    assert score_size(853, 480) == (852, 480)


def test_percentile():
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 5) == pytest.approx(1.2)
    assert percentile([7.0], 5) == 7.0


# Recorded by core.media.analysis (table + capped-CRF trials, 1 s pre-roll) on bench/quality.py's sources,
# 8 s 640x360, 2 samples: the table's point has crf None.
R = RatePoint
RECORDED_MOTION = (R(360, 1377175, 95.48, 93.90, 23.0), R(360, 1095235, 94.99, 93.76, 23.5),
                   R(360, 792725, 94.49, 93.22, None), R(360, 364432, 87.56, 85.48, 30.0),
                   R(240, 392060, 86.20, 84.87, 21.5), R(240, 385847, 85.62, 83.59, None),
                   R(240, 294817, 84.01, 82.80, 23.0))
RECORDED_STATIC_CRF = (R(360, 1409537, 97.33, 96.61, 13.0), R(360, 795639, 97.53, 97.04, None),
                       R(360, 377595, 97.31, 96.96, 17.0), R(360, 73341, 95.65, 95.13, 23.0),
                       R(240, 705239, 89.52, 89.04, 13.0), R(240, 378997, 88.84, 88.29, None),
                       R(240, 73256, 87.77, 87.20, 21.0), R(240, 59703, 86.40, 85.76, 23.0))
CAPS_360 = {360: 800_000, 240: 400_000}


def test_crf_for_interpolates_between_the_trials_that_bracket_the_target():
    # 97.03 lies between CRF 17 (97.31) and 23 (95.65): 17 + 6 x 0.28 / 1.66 = 18.01 -> 18.0 (rounded down),
    # the rate log-interpolated between 377.6k and 73.3k at 1/6 of the way.
    assert crf_for(RECORDED_STATIC_CRF[:4], 97.03) == ChosenRung(360, 287_000, 97.03, 96.66, crf=18.0)


def test_crf_for_treats_a_higher_score_at_a_higher_crf_as_noise():
    trials = [R(720, 1_000_000, 90.0, 80.0, 20.0), R(720, 500_000, 91.0, 81.0, 26.0), R(720, 250_000, 80.0, 70.0, 32.0)]
    # CRF 26 counts at CRF 20's 90 (and p5 80): 85 is half way from 26 to 32.
    assert crf_for(trials, 85.0) == ChosenRung(720, 354_000, 85.0, 75.0, crf=29.0)


def test_crf_for_never_guesses_beyond_the_trials():
    one = [R(720, 1_000_000, 90.0, 80.0, 20.0)]
    assert crf_for(one, 95.0) is None  # not reached: the rung stays at an average bitrate
    assert crf_for(one, 85.0) == ChosenRung(720, 1_000_000, 90.0, 80.0, crf=20.0)  # every trial above: the highest
    assert crf_for([R(720, 1_000_000, 90.0, 80.0, None)], 85.0) is None  # no CRF trial at all


def test_recorded_motion_rungs_exact():
    rungs = choose_rungs(QualityMeasurements(RECORDED_MOTION, 2, 4.0), CAPS_360)
    # 360p: its CRF trials reach 93.99 only at ~1.2M, over the table's 800k: it is the table's own rung (not
    # the 751k average rate the hull reads for 93.99: an average below the table's is what samples predict worst).
    # 240p: 85.12 between CRF 21.5 (86.20) and 23 (84.01): CRF 21.8, under the table's 400k.
    assert rungs == [ChosenRung(360, 800_000, 94.51, 93.23), ChosenRung(240, 370_000, 85.76, 84.46, crf=21.8)]


def test_recorded_static_gets_one_capped_crf_rung():
    rungs = choose_rungs(QualityMeasurements(RECORDED_STATIC_CRF, 2, 4.0), CAPS_360)
    assert rungs == [ChosenRung(360, 287_000, 97.03, 96.66, crf=18.0)]  # 240p: not 1.4x cheaper, dropped


def test_plan_ladder_gives_a_crf_rung_the_tables_cap():
    m = QualityMeasurements(RECORDED_MOTION, 2, 4.0)
    ladder = plan_ladder(codec="h264", display_width=640, display_height=360, frame_rate=Fraction(30), measurements=m)
    assert [(r.id, r.bitrate, r.max_bitrate, r.buffer_size, r.crf) for r in ladder.renditions] == [
        ("h264-360p", 800_000, 1_200_000, 1_600_000, None), ("h264-240p", 370_000, 600_000, 800_000, 21.8)]


def test_same_size_rungs_keep_every_size_and_the_table_where_crf_misses():
    assert same_size_rungs(QualityMeasurements(RECORDED_STATIC_CRF, 2, 4.0), CAPS_360) == {
        360: ChosenRung(360, 287_000, 97.03, 96.66, crf=18.0), 240: ChosenRung(240, 215_000, 88.6, 88.07, crf=17.2)}
    m = QualityMeasurements(RECORDED_MOTION, 2, 4.0)
    ladder = plan_ladder(codec="h264", display_width=640, display_height=360, frame_rate=Fraction(30), measurements=m,
                         keep_sizes=True)
    # 360p stays exactly the table's rung (a chunk of it may be encoded either way: same init segment).
    assert [(r.id, r.bitrate, r.max_bitrate, r.buffer_size, r.crf) for r in ladder.renditions] == [
        ("h264-360p", 800_000, 1_200_000, 1_600_000, None), ("h264-240p", 370_000, 600_000, 800_000, 21.8)]
    assert ladder.quality == {"h264-240p": RungQuality(85.76, 84.46, 2)}


@pytest.mark.parametrize("trials, expected", [
    # One CRF trial: the line from the table's point (792.7k, 94.49) to CRF 23 (1.38M, 95.48) is 1.24 VMAF per
    # doubled rate; 93.99 is 1.2 doublings down: +7.2 CRF -> 30.0 (halves).
    ([R(360, 1377175, 95.48, 93.90, 23.0)], 30.0),
    # Two: the line between them in (CRF, VMAF): 23 + 7 x 1.49 / 7.92 = 24.3 -> 24.5.
    ([R(360, 1377175, 95.48, 93.90, 23.0), R(360, 364432, 87.56, 85.48, 30.0)], 24.5),
    # Bracketing the target within CLOSE_CRF: done.
    ([R(360, 1377175, 95.48, 93.90, 23.0), R(360, 800000, 93.0, 85.48, 25.0)], None),
])
def test_next_crf(trials, expected):
    assert next_crf(R(360, 792725, 94.49, 93.22, None), trials, 93.99) == expected


def test_next_crf_on_a_flat_curve_and_at_the_step_limit():
    table = R(240, 378997, 88.84, 88.29, None)
    # 0.915 VMAF per doubled rate (2.44 points over 2.67 doublings): 0.94 short of 87.34 at CRF 23 is
    # 1.03 doublings, -6.2 CRF -> 17.0; 1.94 short of 88.34 would be -12.7: at most 10.
    assert next_crf(table, [R(240, 59703, 86.40, 85.76, 23.0)], 87.34) == 17.0
    assert next_crf(table, [R(240, 59703, 86.40, 85.76, 23.0)], 88.34) == 13.0
    # A CRF trial spending more than the table for no better score (a flat curve): 4 CRF cheaper.
    assert next_crf(table, [R(240, 500_000, 88.84, 88.0, 20.0)], 88.34) == 24.0


def test_rates_are_scaled_so_the_table_trial_costs_the_table():
    # The table's 800k measured 1.0M on short samples (keyframe, full VBV buffer): every point of the size
    # is scaled by 0.8, so the CRF 22 trial's 900k counts as 720k, under the table (94.2: the best within it);
    # 93.7 is at CRF 22 + 6 x 0.5 / 4.2 = 22.7. Unscaled, no point would be within the table's bits.
    over = (R(360, 1_000_000, 94.0, 90.0, None), R(360, 900_000, 94.2, 90.5, 22.0), R(360, 500_000, 90.0, 85.0, 28.0))
    assert choose_rungs(QualityMeasurements(over, 2, 4.0), {360: 800_000}) == [
        ChosenRung(360, 672_000, 93.71, 89.86, crf=22.7)]


# AV1 capped-CRF trials of one size (SVT-AV1 CRF scale) and its table's VBR point at 0.75x the H.264 rate.
AV1_TRIALS = (R(720, 1_000_000, 93.0, 90.0, 40.0), R(720, 1_600_000, 95.5, 92.0, 34.0),
              R(720, 2_000_000, 96.6, 93.5, 30.0), R(720, 2_250_000, 95.9, 92.5, None))


def test_a_reference_sets_the_quality_an_av1_rung_aims_at():
    # The H.264 table scored 96.2 on the same samples: AV1 aims at 95.7, between CRF 30 (96.6) and 34 (95.5):
    # 30 + 4 x 0.9 / 1.1 = 33.27 -> 33.2, not at its own table's best (96.6 - 0.5: CRF 31.8, 8 % more bits).
    h264 = (R(720, 3_000_000, 96.2, 93.0, None),)
    assert choose_rungs(QualityMeasurements(AV1_TRIALS, 2, 4.0, reference=h264), {720: 2_250_000}) == [
        ChosenRung(720, 1_673_000, 95.72, 92.3, crf=33.2)]
    assert choose_rungs(QualityMeasurements(AV1_TRIALS, 2, 4.0), {720: 2_250_000}) == [
        ChosenRung(720, 1_809_000, 96.1, 92.83, crf=31.8)]
    assert same_size_rungs(QualityMeasurements(AV1_TRIALS, 2, 4.0, reference=h264), {720: 2_250_000}) == {
        720: ChosenRung(720, 1_673_000, 95.72, 92.3, crf=33.2)}


def test_a_reference_out_of_reach_within_the_table_is_not_chased():
    # H.264 at 97.5: AV1 reaches at most 96.6 within its table's bits, so it aims there, as without a reference.
    h264 = (R(720, 3_000_000, 97.5, 93.0, None),)
    assert choose_rungs(QualityMeasurements(AV1_TRIALS, 2, 4.0, reference=h264), {720: 2_250_000}) == [
        ChosenRung(720, 1_809_000, 96.1, 92.83, crf=31.8)]


def test_an_av1_ladder_gets_capped_crf_rungs_but_keeps_the_table_on_the_chunked_path():
    m = QualityMeasurements(AV1_TRIALS, 2, 4.0, reference=(R(720, 3_000_000, 96.2, 93.0, None),))
    auto = plan_ladder(codec="av1", display_width=1280, display_height=720, frame_rate=Fraction(30), measurements=m,
                       max_rungs=1)
    assert [(r.id, r.bitrate, r.max_bitrate, r.buffer_size, r.crf) for r in auto.renditions] == [
        ("av1-720p", 1_673_000, 3_375_000, 4_500_000, 33.2)]
    # Chunked: SVT-AV1's capped-CRF init segment differs from the table's (btrt), so the table stays.
    kept = plan_ladder(codec="av1", display_width=1280, display_height=720, frame_rate=Fraction(30), measurements=m,
                       max_rungs=1, keep_sizes=True)
    assert [(r.id, r.bitrate, r.crf) for r in kept.renditions] == [("av1-720p", 2_250_000, None)]
    assert kept.quality == {}


# Recorded by core.media.analysis on bench/quality.py's animation (30 s 1280x720, 2 median-window samples).
RECORDED_ANIMATION = (R(720, 1764504, 99.86, 99.86, None), R(720, 999507, 99.71, 98.87, 23.0),
                      R(720, 917605, 99.58, 98.22, 25.0), R(720, 840733, 99.06, 97.49, 27.0),
                      R(480, 1392192, 91.79, 90.15, 21.0), R(480, 1353789, 92.08, 90.13, None),
                      R(480, 1293920, 91.3, 89.54, 22.0), R(480, 1205405, 90.73, 89.04, 23.0),
                      R(360, 913025, 85.81, 83.82, 23.0), R(360, 790151, 84.31, 82.02, 25.0),
                      R(360, 758243, 84.27, 80.86, None), R(360, 738036, 83.46, 81.77, 26.0),
                      R(240, 467092, 63.3, 60.9, 23.0), R(240, 387519, 58.42, 56.19, 25.5),
                      R(240, 357528, 55.99, 52.72, 26.5), R(240, 349249, 57.02, 51.79, None))


def test_a_ladder_that_drops_sizes_encodes_the_rest_as_they_were_measured():
    from pathlib import Path

    from core.media.encode import EncodeJob, build_encode_argv
    from core.media.model import Ladder

    fixed = plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30))
    auto = plan_ladder(codec="h264", display_width=1280, display_height=720, frame_rate=Fraction(30),
                       measurements=QualityMeasurements(RECORDED_ANIMATION, 2, 4.0))
    # 720p flat at 99 from CRF 25.8; 480p and 360p not 1.4x cheaper than it on the samples: dropped.
    assert [(r.id, r.crf) for r in auto.renditions] == [("h264-720p", 25.8), ("h264-240p", None)]
    assert [r.id for r in auto.within] == [r.id for r in fixed.renditions]

    def x264(argv: list[str], i: int) -> tuple[str | None, str]:
        preset = argv[argv.index(f"-preset:v:{i}") + 1] if f"-preset:v:{i}" in argv else None
        return preset, argv[argv.index(f"-x264-params:v:{i}") + 1]

    job = dict(source=Path("s.mp4"), out_dir=Path("o"), audio=None, segment_duration=4.0, frame_rate=Fraction(30))
    final = build_encode_argv("ffmpeg", EncodeJob(ladder=auto, **job))
    # The analysis' trial of 240p alone, within the fixed table (core.media.analysis._Trials).
    trial = build_encode_argv("ffmpeg", EncodeJob(ladder=Ladder("h264", (auto.renditions[1],),
                                                                within=fixed.renditions), **job))
    # The table's smallest of 4 keeps veryfast (rungs.SPARE_SMALLEST_RUNG), and so does the 240p rung made from
    # it; as the smaller of a 2-rung ladder of its own it would be superfast (7.5 VMAF lower at the same bits).
    assert x264(final, 1) == x264(trial, 0) == (None, "sliced-threads=1:threads=1:stitchable=1")
    alone = build_encode_argv("ffmpeg", EncodeJob(ladder=Ladder("h264", auto.renditions), **job))
    assert x264(alone, 1)[0] == "superfast"
