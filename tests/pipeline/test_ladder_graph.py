"""The cascaded ladder end to end: every rung decodes at its size with aligned segments, and a rerun is byte-identical.

The encode argv scales each rung from the one above and gives each rung its
own x264 slice-thread count (core/media/rungs.py); this checks what the real
worker wrote with it.
"""

from __future__ import annotations

import io
import re

import av

from core.media.rungs import plan_rungs


def _track_bytes(storage, asset_id, track) -> list[bytes]:
    keys = [track.init_uri] + [track.segment_uri(s.number) for s in track.segments]
    return [storage.get_bytes(f"media/{asset_id}/{k}") for k in keys]


def test_cascaded_rungs_are_valid_and_a_rerun_writes_the_same_bytes(pipeline, clips):
    src = clips("ladder-720.mp4", duration=3, width=1280, height=720, fps=30)
    first, second = (pipeline.upload(src, {"segment_duration": 1}) for _ in range(2))
    assets = [pipeline.wait(a["id"]) for a in (first, second)]
    assert [a["status"] for a in assets] == ["ready", "ready"], [a["error"] for a in assets]

    p = pipeline.presentation(first["id"])
    video = p.video_tracks
    assert [(t.rendition.width, t.rendition.height) for t in video] == [(1280, 720), (854, 480), (640, 360),
                                                                         (426, 240)]
    bounds = [[(s.start / t.timescale, s.duration / t.timescale) for s in t.segments] for t in video]
    # 3 s at 1 s segments after the default 0.5 s first: 0.5 + 0.5 + 1 + 1.
    assert all(b == bounds[0] for b in bounds) and len(bounds[0]) == 4, bounds
    plans = plan_rungs([t.rendition for t in video])
    assert [x.threads for x in plans] == [3, 1, 1, 1]  # 720p is 55 % of this ladder's pixels: round(5 x 0.55)
    # What reached each encoder (x264's own settings line): the largest rung veryfast with me=dia and no
    # B-frames (LARGEST_RUNG_X264), 480p and 360p superfast (subme 1) without B-frames (SMALL_RUNG_X264), the
    # smallest spared: veryfast (hex, subme 2, x264's 3 B-frames).
    expected = iter([("dia", 2, 0), ("dia", 1, 0), ("dia", 1, 0), ("hex", 2, 3)])
    for track, plan in zip(video, plans, strict=True):
        parts = _track_bytes(pipeline.storage, first["id"], track)
        with av.open(io.BytesIO(b"".join(parts))) as container:
            frames = [(f.width, f.height) for f in container.decode(container.streams.video[0])]
        assert frames == [(track.rendition.width, track.rendition.height)] * 90
        # x264 writes its settings into the first frame: the rung's own thread count reached its encoder.
        options = re.search(rb"x264 - core .*? options: ([^\x00]*)", parts[1]).group(1).decode()
        assert f" threads={plan.threads} " in options and f" sliced_threads={int(plan.threads > 1)} " in options
        me, subme, bframes = next(expected)
        assert f" me={me} " in options and f" subme={subme} " in options, (track.id, options)
        assert f" bframes={bframes} " in options, (track.id, options)

    # A retried job must write the same bytes under the same (CDN-cached) URLs: two runs of one argv agree.
    again = pipeline.presentation(second["id"])
    for a, b in zip(video, again.video_tracks, strict=True):
        assert _track_bytes(pipeline.storage, first["id"], a) == _track_bytes(pipeline.storage, second["id"], b)
