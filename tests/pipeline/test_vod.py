"""The VOD pipeline end to end: API upload → real worker → published presentation and media."""

from __future__ import annotations

import io
import time

import av
import pytest

from core.media.manifests.dash import render_mpd
from core.media.manifests.hls import render_media_playlist, render_multivariant_playlist
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.media_fixtures import truncate


def _decode_track(storage, asset_id, track) -> int:
    """Decode init + every segment of a track as one stream; returns frames (video) or samples (audio)."""
    data = storage.get_bytes(f"media/{asset_id}/{track.init_uri}")
    data += b"".join(storage.get_bytes(f"media/{asset_id}/{track.segment_uri(s.number)}") for s in track.segments)
    count = 0
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams[0]
        for frame in container.decode(stream):
            count += frame.samples if track.rendition.is_audio else 1
    return count


def test_h264_upload_to_ready_on_both_backends(pipeline_on, clips):
    src = clips("h264.mp4", duration=5, width=640, height=360, fps=30)
    created = pipeline_on.upload(src, {"segment_duration": 2, "passthrough": "my-ref"})
    assert created["status"] == "queued" and created["passthrough"] == "my-ref"
    assert [r["id"] for r in created["renditions"]] == ["h264-360p", "h264-240p", "audio"]
    assert created["playback"]["hls"].endswith(f"/play/{created['playback_ids'][0]['id']}/master.m3u8")

    asset = pipeline_on.wait(created["id"])
    assert asset["status"] == "ready", asset["error"]
    assert asset["playable"] and asset["progress"] == 100
    assert {r["status"] for r in asset["renditions"]} == {"ready"}
    assert asset["source"]["video"]["display_width"] == 640

    p = pipeline_on.presentation(asset["id"])
    assert p.complete
    video = p.video_tracks
    # GOPs are closed and aligned: every rung has the same segment boundaries (in seconds).
    bounds = [[(s.start / t.timescale, s.duration / t.timescale) for s in t.segments] for t in video]
    assert all(b == bounds[0] for b in bounds), bounds
    assert len(bounds[0]) == 4  # 5 s at 2 s segments after the default 0.5 s first: 0.5 + 1.5 + 2 + 1
    for track in p.tracks:
        assert track.codecs.startswith("avc1.") or track.codecs == "mp4a.40.2"
        assert _decode_track(pipeline_on.storage, asset["id"], track) > 0

    master = render_multivariant_playlist(p)
    assert 'CODECS="avc1.' in master and "RESOLUTION=640x360" in master and "FRAME-RATE=30.000" in master
    for track in video:
        assert render_media_playlist(track, ended=True).rstrip().endswith("#EXT-X-ENDLIST")
    validate_mpd(render_mpd(p))


def test_three_codec_families_share_one_audio(pipeline, clips):
    src = clips("fam.mp4", duration=3, width=320, height=240)
    created = pipeline.upload(src, {"codecs": ["h264", "h265", "vp8"], "segment_duration": 1})
    asset = pipeline.wait(created["id"], timeout=240)
    assert asset["status"] == "ready", asset["error"]
    p = pipeline.presentation(asset["id"])
    by_codec = {t.rendition.codec: t for t in p.tracks}
    assert set(by_codec) == {"h264", "h265", "vp8", "aac"}
    assert [t.rendition.is_audio for t in p.tracks].count(True) == 1  # audio encoded once
    assert by_codec["h265"].codecs.startswith("hvc1.")
    assert by_codec["vp8"].container == "webm" and by_codec["vp8"].codecs == "vp8"
    seconds = {c: [round(s.start / t.timescale, 2) for s in t.segments] for c, t in by_codec.items() if c != "aac"}
    # H.264 and H.265 start with the default short first segment (0, 0.5, 1, 2 s); VP8 keeps equal ones,
    # every boundary of which is one of theirs.
    assert seconds["h264"] == seconds["h265"] == [0, 0.5, 1, 2]
    assert seconds["vp8"] == [0, 1, 2]
    for track in p.tracks:
        assert _decode_track(pipeline.storage, asset["id"], track) > 0
    mpd = render_mpd(p)
    validate_mpd(mpd)
    assert mpd.count("<AdaptationSet") == 4
    assert "vp8" not in render_multivariant_playlist(p)  # HLS has no VP8


@pytest.mark.parametrize("kind", ["no_audio", "audio_only", "surround"])
def test_sources_without_audio_or_video_or_with_51(pipeline, clips, kind):
    kwargs = {"no_audio": dict(audio_channels=None), "audio_only": dict(video=False, container="m4a"),
              "surround": dict(audio_channels=6)}[kind]
    created = pipeline.upload(clips(f"{kind}.mp4", duration=2, **kwargs))
    asset = pipeline.wait(created["id"])
    assert asset["status"] == "ready", asset["error"]
    p = pipeline.presentation(asset["id"])
    assert (p.audio is None) == (kind == "no_audio")
    assert bool(p.video_tracks) == (kind != "audio_only")
    if p.audio is not None:
        assert p.audio.rendition.channels == 2  # 5.1 is downmixed
    render_multivariant_playlist(p)
    validate_mpd(render_mpd(p))


def test_non_media_is_refused_and_nothing_is_kept(pipeline, tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_text("this is not a video, whatever the extension says\n" * 100)
    with open(junk, "rb") as fh:
        r = pipeline.client.post("/v1/assets", files={"file": ("notes.mp4", fh, "video/mp4")})
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "invalid_media"
    assert pipeline.client.get("/v1/assets").json()["count"] == 0
    assert list(pipeline.storage.list("")) == []


def test_truncated_upload_never_stays_processing(pipeline, clips, tmp_path):
    whole = clips("whole.mp4", duration=4, width=320, height=240)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes())
    truncate(cut, 0.5)
    with open(cut, "rb") as fh:
        r = pipeline.client.post("/v1/assets", files={"file": ("cut.mp4", fh, "video/mp4")})
    if r.status_code == 201:
        asset = pipeline.wait(r.json()["id"])
        assert asset["status"] in ("ready", "errored")
        if asset["status"] == "errored":
            assert asset["error"]["message"]
    else:
        assert r.status_code in (415, 422), r.text
        assert r.json()["error"]["message"]


def test_bad_settings_are_422_and_a_misplaced_file_is_400(pipeline, clips):
    src = clips("s.mp4", duration=1)
    for settings, fragment in [({"codecs": ["av2"]}, "codecs"), ({"segment_duration": 0.1}, "segment_duration"),
                               ({"ladder": [{"height": 720, "bitrate": 1}]}, "ladder")]:
        with open(src, "rb") as fh:
            r = pipeline.client.post("/v1/assets", files={"file": ("s.mp4", fh)}, data={"settings": __import__("json").dumps(settings)})
        assert r.status_code == 422, r.text
        assert fragment in r.json()["error"]["message"]
    r = pipeline.client.post("/v1/assets", files={"other": ("x", b"123")})
    assert r.status_code == 400  # the media under another field name: say which field it goes in
    assert "'file'" in r.json()["error"]["message"]
    with open(src, "rb") as fh:
        r = pipeline.client.post("/v1/assets", files={"file": ("s.mp4", fh)}, data={"settings": "{not json"})
    assert r.status_code == 400
    assert pipeline.client.get("/v1/assets").json()["count"] == 0


def test_delete_while_processing_cancels_the_encode(pipeline, clips):
    src = clips("long.mp4", duration=40, width=640, height=360)
    created = pipeline.upload(src, {"codecs": ["h264", "vp8"]})
    pipeline.wait(created["id"], until=("processing",), timeout=60)
    time.sleep(1.5)
    assert pipeline.client.delete(f"/v1/assets/{created['id']}").status_code == 204
    assert pipeline.client.get(f"/v1/assets/{created['id']}").status_code == 404
    # the worker notices within about a second, kills ffmpeg and removes what it uploaded since
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and list(pipeline.storage.list(f"media/{created['id']}")):
        time.sleep(0.5)
    time.sleep(2)
    assert list(pipeline.storage.list(f"media/{created['id']}")) == []
    assert list(pipeline.storage.list(f"sources/{created['id']}")) == []
    assert "deleted while processing" in pipeline.log.read_text()


def test_events_stream_reports_progress_until_ready(pipeline, clips):
    created = pipeline.upload(clips("ev.mp4", duration=3))
    events = []
    with pipeline.client.stream("GET", f"/v1/assets/{created['id']}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(__import__("json").loads(line[6:]))
    assert events[-1]["status"] == "ready"
    assert any(e["status"] == "processing" or e["status"] == "queued" for e in events[:-1])
