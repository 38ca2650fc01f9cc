"""LL-HLS media playlists rendered from a live presentation with parts: exact output, delta updates, m3u8 parsing."""

from __future__ import annotations

from fractions import Fraction

from core.media.live_model import LivePresentation, Part, Period
from core.media.manifests.live import next_part, part_target_duration, render_live_media_playlist
from core.media.model import Presentation, Rendition, Segment, Track

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _live(segments: int = 3, parts_in_progress: int = 2, ended: bool = False) -> LivePresentation:
    """Two renditions, 1 s segments of four 0.25 s parts (timescale 1000), the last `segments` complete."""
    def track(rid: str, height: int) -> Track:
        r = Rendition(rid, "h264", 16 * height // 9, height, 500_000 * height // 180, frame_rate=Fraction(30))
        return Track(r, "avc1.64001f", "mp4", 1000,
                     [Segment(n, 100 + (n - 1) * 1000, 1000, 10_000) for n in range(1, segments + 1)])
    tracks = [track("360p", 360), track("180p", 180)]
    parts = {}
    for t in tracks:
        listed = [Part(n, i, 250, i == 0) for n in range(max(1, segments - 2), segments + 1) for i in range(4)]
        listed += [Part(segments + 1, i, 250, i == 0) for i in range(parts_in_progress)]
        parts[t.id] = listed
    return LivePresentation(Presentation(1.0, tracks), [Period("p0", 0.1, T0)], dvr_window=60, ended=ended,
                            published_at=T0 + 5, part_target=0.25, parts=parts)


def test_ll_media_playlist_exact():
    body = render_live_media_playlist(_live(), "360p", query="token=abc")
    assert body == """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.0,PART-HOLD-BACK=0.750
#EXT-X-PART-INF:PART-TARGET=0.250
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-DISCONTINUITY-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4?token=abc"
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z
#EXT-X-PART:DURATION=0.25000,URI="00001.0.m4s?token=abc",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI="00001.1.m4s?token=abc"
#EXT-X-PART:DURATION=0.25000,URI="00001.2.m4s?token=abc"
#EXT-X-PART:DURATION=0.25000,URI="00001.3.m4s?token=abc"
#EXTINF:1.000000,
00001.m4s?token=abc
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:01.000Z
#EXT-X-PART:DURATION=0.25000,URI="00002.0.m4s?token=abc",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI="00002.1.m4s?token=abc"
#EXT-X-PART:DURATION=0.25000,URI="00002.2.m4s?token=abc"
#EXT-X-PART:DURATION=0.25000,URI="00002.3.m4s?token=abc"
#EXTINF:1.000000,
00002.m4s?token=abc
#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:02.000Z
#EXT-X-PART:DURATION=0.25000,URI="00003.0.m4s?token=abc",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI="00003.1.m4s?token=abc"
#EXT-X-PART:DURATION=0.25000,URI="00003.2.m4s?token=abc"
#EXT-X-PART:DURATION=0.25000,URI="00003.3.m4s?token=abc"
#EXTINF:1.000000,
00003.m4s?token=abc
#EXT-X-PART:DURATION=0.25000,URI="00004.0.m4s?token=abc",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.25000,URI="00004.1.m4s?token=abc"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="00004.2.m4s?token=abc"
#EXT-X-RENDITION-REPORT:URI="../180p/index.m3u8?token=abc",LAST-MSN=4,LAST-PART=1
"""


def test_part_target_covers_parts_the_muxer_rounded_up():
    live = _live()
    live.parts["180p"].append(Part(4, 2, 267, False))  # 8 frames at 30 fps for a 0.25 s target
    assert part_target_duration(live) == 0.267
    assert "#EXT-X-PART-INF:PART-TARGET=0.267" in render_live_media_playlist(live, "360p")


def test_preload_hint_after_a_segment_completes():
    live = _live(parts_in_progress=0)
    assert next_part(live, live.presentation.tracks[0]) == (4, 0)
    body = render_live_media_playlist(live, "360p")
    assert body.endswith('00003.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="00004.0.m4s"\n'
                         '#EXT-X-RENDITION-REPORT:URI="../180p/index.m3u8",LAST-MSN=3,LAST-PART=3\n')


def test_ended_stream_has_no_ll_tags():
    body = render_live_media_playlist(_live(ended=True), "360p")
    assert "PART" not in body and "SERVER-CONTROL" not in body and body.endswith("#EXT-X-ENDLIST\n")


def _reconstruct(full_prev: str, delta: str) -> str:
    """A client's merge of a delta update (RFC 8216bis §6.2.5.1): the skipped segments come from the previous playlist."""
    import m3u8

    previous, update = m3u8.loads(full_prev), m3u8.loads(delta)
    skipped = update.skip.skipped_segments
    first = update.media_sequence
    kept = [s for s in previous.segments][first - previous.media_sequence:][:skipped]
    return [s.uri for s in kept] + [s.uri for s in update.segments]


def test_delta_update_skips_before_the_boundary_and_reconstructs():
    live = _live(segments=10)
    full = render_live_media_playlist(live, "360p")
    delta = render_live_media_playlist(live, "360p", skip=True)
    # 10 s listed, CAN-SKIP-UNTIL 6 s: the 4 segments that end before the boundary are skipped.
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n" in delta
    assert "00004.m4s" not in delta and "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.000Z\n" in delta
    import m3u8

    assert _reconstruct(full, delta) == [s.uri for s in m3u8.loads(full).segments]
    # Too short to skip anything: the delta is the full playlist.
    assert render_live_media_playlist(_live(), "360p", skip=True) == render_live_media_playlist(_live(), "360p")


def test_ll_playlist_parses_in_m3u8():
    import m3u8

    playlist = m3u8.loads(render_live_media_playlist(_live(), "360p"))
    assert playlist.server_control.can_block_reload == "YES"
    assert float(playlist.server_control.part_hold_back) == 0.75
    assert float(playlist.part_inf.part_target) == 0.25
    assert [s.uri for s in playlist.segments] == ["00001.m4s", "00002.m4s", "00003.m4s", None][:len(playlist.segments)]
    assert [p.uri for p in playlist.segments[0].parts] == [f"00001.{i}.m4s" for i in range(4)]
    assert playlist.segments[0].parts[0].independent == "YES"
    assert playlist.preload_hint.uri == "00004.2.m4s"
    assert [(r.uri, r.last_msn, r.last_part) for r in playlist.rendition_reports] == [("../180p/index.m3u8", 4, 1)]
