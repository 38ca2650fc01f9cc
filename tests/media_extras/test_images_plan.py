"""Image planners and ffmpeg argv (pure, exact output)."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path

import pytest

from api.routers.images import Busy, ImageGate
from core.errors import BadRequest, NotFound
from core.media import images
from core.media.model import Presentation
from tests.core.media.manifests.conftest import build_presentation


def test_thumbnail_plan_and_argv():
    p = build_presentation()  # h264-720p is the top H.264 rung; segments 0-4, 4-8, 8-10.5 s
    # time snaps to whole seconds (5.256 -> 5), width up to the size set (300 -> 320)
    plan = images.plan_thumbnail(p, images.ThumbnailRequest(time=5.256, width=300), "jpg")
    assert (plan.decode.track.id, [s.number for s in plan.decode.segments], plan.decode.seek) == ("h264-720p", [2], 1.0)
    assert plan.name == "thumb-h264-720p-t500-320x180-preserve.jpg"
    assert images.build_thumbnail_argv("ffmpeg", plan, Path("in.mp4"), Path("out.jpg")) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-protocol_whitelist", "file,pipe",
        "-ss", "1", "-i", "in.mp4", "-map", "0:v:0", "-an", "-sn", "-map_metadata", "-1", "-frames:v", "1",
        "-vf", "scale=320:180:flags=bicubic,setsar=1",
        "-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-f", "image2", "-update", "1", "out.jpg",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("stretch", "scale=200:200:flags=bicubic,setsar=1", id="stretch"),
        pytest.param("crop", "scale=356:200:flags=bicubic,crop=200:200,setsar=1", id="crop"),
        pytest.param("pad", "scale=200:112:flags=bicubic,pad=200:200:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1",
                     id="pad"),
        pytest.param("preserve", "scale=200:200:flags=bicubic,setsar=1", id="preserve-box-already-fitted"),
    ],
)
def test_fit_filters(mode, expected):
    assert images.fit_filter(1280, 720, 200, 200, mode) == expected


def test_time_defaults_to_the_middle_and_clamps_to_the_last_frame():
    p = build_presentation()
    assert images.plan_thumbnail(p, images.ThumbnailRequest(), "webp").time == 5.0  # 5.25, snapped
    assert images.plan_thumbnail(p, images.ThumbnailRequest(time=1e6), "jpg").time == 10.45
    assert images.plan_thumbnail(p, images.ThumbnailRequest(time=10.6), "jpg").time == 10.45  # 11 is past the end


def test_animated_plan_snaps_times_width_and_frame_rate():
    plan = images.plan_animated(build_presentation(), images.AnimatedRequest(start=1.4, end=3.6, width=200, fps=7))
    assert (plan.start, plan.end, plan.width, plan.height, plan.fps) == (1.0, 4.0, 240, 136, 10)
    assert plan.name == "anim-h264-720p-s100-e400-w240-f10.webp"


def test_query_parsing():
    assert images.ThumbnailRequest.from_query({"time": "2", "fit_mode": "smartcrop"}) == \
        images.ThumbnailRequest(time=2.0, fit_mode="crop")
    with pytest.raises(BadRequest):
        images.ThumbnailRequest.from_query({"time": "inf"})
    with pytest.raises(BadRequest):
        images.AnimatedRequest.from_query({"start": "2", "end": "2"})


@pytest.mark.parametrize("duration", [0.5, 1.0, 6.0, 10.5, 99.9, 250.0, 3600.0, 7261.3])
def test_storyboard_cues_cover_the_duration_without_gaps(duration):
    p = build_presentation()
    plan = images.StoryboardPlan(images.DecodePlan(p.video_tracks[0], (), 0.0), duration,
                                 *images.storyboard_interval(duration, 4.0), 160, 90, 0, 0, 0)
    count = max(1, -(-duration // plan.interval))
    plan = images.StoryboardPlan(plan.decode, duration, plan.interval, plan.keyframes_only, 160, 90,
                                 min(10, int(count)), -(-int(count) // 10), int(count))
    tiles = plan.tiles
    assert tiles[0].start == 0 and tiles[-1].end >= duration
    assert all(a.end == b.start for a, b in pairwise(tiles))
    assert len(tiles) <= images.STORYBOARD_MAX_TILES
    assert all(t.x + 160 <= plan.sheet_size[0] and t.y + 90 <= plan.sheet_size[1] for t in tiles)
    if plan.keyframes_only:
        assert plan.interval % 4.0 == 0  # every tile on a segment boundary (a keyframe)


def test_storyboard_plan_uses_the_smallest_rung():
    plan = images.plan_storyboard(build_presentation())
    assert plan.decode.track.id == "h264-360p" and (plan.tile_width, plan.tile_height) == (160, 90)
    assert (plan.interval, plan.count, plan.columns, plan.rows) == (1.0, 11, 10, 2)
    assert images.render_storyboard_vtt(plan, "storyboard.jpg?token=t").split("\n")[:6] == [
        "WEBVTT", "", "00:00:00.000 --> 00:00:01.000", "storyboard.jpg?token=t#xywh=0,0,160,90", "",
        "00:00:01.000 --> 00:00:02.000"]


def test_no_images_before_a_video_rung_is_complete():
    with pytest.raises(NotFound, match="not ready"):
        images.plan_thumbnail(Presentation(segment_duration=4), images.ThumbnailRequest(), "jpg")


def test_gate_limits_and_shares_work():
    async def scenario():
        gate = ImageGate(slots=1, wait=0.2)
        calls = []

        def slow():
            import time

            calls.append(1)
            time.sleep(0.5)

        same = await asyncio.gather(gate.run("a", slow), gate.run("a", slow))
        assert same == [None, None] and len(calls) == 1  # equal requests share one job
        results = await asyncio.gather(gate.run("b", slow), gate.run("c", slow), return_exceptions=True)
        assert sum(isinstance(r, Busy) for r in results) == 1  # the second could not get the one slot

    asyncio.run(scenario())


def test_the_encodes_storyboard_is_the_one_the_finished_presentation_plans():
    # The transcode's encode cuts the sheet from the smallest rung's picture (StoryboardTap), named from the
    # probed duration; it is kept only when the finished presentation plans the same sheet.
    p = build_presentation()
    h264 = [t.rendition for t in p.video_tracks if t.rendition.codec == "h264"]
    plan = images.plan_storyboard(p)
    tap = images.StoryboardTap.plan(h264, 10.5, 4.0)
    assert tap == images.StoryboardTap(1, "storyboard-h264-360p-i1000-160x90-10x2.jpg",
                                       "fps=1/1,scale=160:90:flags=bicubic,setsar=1,tile=10x2")
    assert tap.name == plan.name
    # The same picture geometry as the sheet cut from the finished rung.
    assert tap.graph in images.build_storyboard_argv("ffmpeg", plan, Path("rung.mp4"), Path("out.jpg"))
    # Probed a tile longer: the same sheet (tile k is second k in both; the VTT names only the track's tiles).
    assert images.StoryboardTap.plan(h264, 11.2, 4.0).name == plan.name
    # A row longer than probed plans another sheet (the transcode then cuts it from the rung).
    assert images.StoryboardTap.plan(h264, 21.0, 4.0).name == "storyboard-h264-360p-i1000-160x90-10x3.jpg"
    # Long videos: one tile per whole segments, also in the tap.
    assert images.StoryboardTap.plan(h264, 3600.0, 4.0).graph.startswith("fps=1/36,")  # 9 segments a tile
    assert images.StoryboardTap.plan([t.rendition for t in p.tracks if t.rendition.is_audio], 10.5, 4.0) is None


def test_the_encodes_sheet_is_stored_only_under_the_planned_name(tmp_path, monkeypatch):
    from core.services import images as service
    from core.storage import LocalStorage

    storage = LocalStorage(tmp_path / "storage")
    p = build_presentation()
    plan = images.plan_storyboard(p)
    cut = []
    monkeypatch.setattr(service, "make_image", lambda storage, **kw: cut.append(kw["plan"].name) or "cut")
    made = tmp_path / plan.name
    made.write_bytes(b"\xff\xd8 the encode's sheet")
    key = service.publish_storyboard(storage, ffmpeg="ffmpeg", work_dir=tmp_path, asset_id="as_1",
                                     presentation=p, made=made)
    assert key == f"media/as_1/images/{plan.name}" and storage.get_bytes(key) == b"\xff\xd8 the encode's sheet"
    assert not made.exists() and cut == []  # moved into storage; no ffmpeg
    other = tmp_path / "storyboard-h264-360p-i1000-160x90-10x3.jpg"  # planned from a longer probe
    other.write_bytes(b"\xff\xd8")
    assert service.publish_storyboard(storage, ffmpeg="ffmpeg", work_dir=tmp_path, asset_id="as_2",
                                      presentation=p, made=other) == "cut"
    assert cut == [plan.name] and not storage.exists(f"media/as_2/images/{other.name}")
