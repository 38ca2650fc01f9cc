"""presentation.json keeps each family's tracks in its rendition order, whatever order their first segments
come out in (core/services/transcode.py `add_in_family_order`)."""

from __future__ import annotations

from itertools import permutations

from core.media.model import Rendition, Track
from core.services.transcode import add_in_family_order


def track(rid: str) -> Track:
    return Track(Rendition(rid, "aac" if rid == "audio" else rid.split("-")[0]), "avc1", "mp4", 90000)


def test_any_publish_order_gives_the_family_order():
    order = ["h264-720p", "h264-480p", "h264-360p", "audio"]
    for published in permutations(order):
        tracks: list[Track] = []
        for rid in published:
            add_in_family_order(tracks, track(rid), order)
        assert [t.id for t in tracks] == order, published


def test_another_familys_tracks_stay_where_they_are():
    # H.264 (with the audio) finished first; the H.265 family's rungs come in 360p first.
    tracks = [track(r) for r in ("h264-720p", "h264-360p", "audio")]
    order = ["h265-720p", "h265-360p"]
    add_in_family_order(tracks, track("h265-360p"), order)
    add_in_family_order(tracks, track("h265-720p"), order)
    assert [t.id for t in tracks] == ["h264-720p", "h264-360p", "audio", "h265-720p", "h265-360p"]
    # An id outside the family's list (none today) goes last rather than anywhere in between.
    add_in_family_order(tracks, track("h265-240p"), order)
    assert tracks[-1].id == "h265-240p"
