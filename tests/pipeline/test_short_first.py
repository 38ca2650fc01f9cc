"""The single-worker path: nothing served before every track has a segment; a short first segment end to end.

Source: 9 s 480x360 30 fps with a 440 Hz tone (two rungs, 360p and 240p, and AAC);
segment 4 s. The whole-asset task runs in this process on the embedded
defaults (SQLite, local storage, no chunking) with a storage that records every
presentation.json it is given, i.e. every state the origin could have served.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction

import pytest

from core.media.ffmpeg import find_ffmpeg
from core.media.model import Presentation
from core.services.transcode import AssetTranscode, PipelineConfig
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.helpers import app_client, upload_asset

pytestmark = pytest.mark.timeout(180)
SEGMENT, SECONDS, FPS = 4, 9, 30


class RecordingStorage:
    """The API's storage, with every presentation.json written kept in order."""

    def __init__(self, inner, asset_id: str) -> None:
        self.inner, self.key = inner, f"media/{asset_id}/presentation.json"
        self.presentations: list[Presentation] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        self.inner.put_bytes(key, data, content_type=content_type)
        if key == self.key:
            self.presentations.append(Presentation.from_dict(json.loads(data)))


def _run(tmp_path, clips, first: float | None):
    source = clips("short-first", duration=SECONDS, width=480, height=360, fps=FPS)
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as client:
        created = upload_asset(client, source, {"segment_duration": SEGMENT})
        ctx = client.app.state.ctx
        storage = RecordingStorage(ctx.storage, created["id"])
        config = PipelineConfig(ffmpeg=find_ffmpeg(), work_dir=tmp_path / "work", first_segment_duration=first)
        AssetTranscode(ctx.engine, storage, config, created["id"]).run()
        yield client, created, storage


@pytest.fixture
def equal_segments(tmp_path, clips):
    yield from _run(tmp_path, clips, None)


@pytest.fixture
def short_first(tmp_path, clips):
    yield from _run(tmp_path, clips, 1.0)


def _first_served_has_every_track(storage: RecordingStorage) -> None:
    first = storage.presentations[0]
    ids = {t.id for t in first.tracks if t.segments}
    # Two rungs and the audio: a master playlist of fewer is loaded once and never reloaded by a player.
    assert ids == {"h264-360p", "h264-240p", "audio"}, f"first presentation served lists only {sorted(ids)}"


def test_unchunked_master_waits_for_every_rendition_and_the_audio(equal_segments):
    client, created, storage = equal_segments
    _first_served_has_every_track(storage)
    assert client.get(f"/v1/assets/{created['id']}").json()["status"] == "ready"


def test_short_first_segment_end_to_end(short_first):
    client, created, storage = short_first
    _first_served_has_every_track(storage)
    presentation = storage.presentations[-1]
    assert presentation.complete
    video = presentation.video_tracks
    assert [t.id for t in video] == ["h264-360p", "h264-240p"]
    # Keyframes at 0, 1, 4, 8: segments of 1, 3, 4 and 1 s, on the same frames in every rung.
    for track in video:
        seconds = [Fraction(s.duration, track.timescale) for s in track.segments]
        assert seconds == [1, 3, 4, 1], seconds
    assert len({tuple((s.start, s.duration) for s in t.segments) for t in video}) == 1
    # The audio, in the same ffmpeg, is cut with the video: its first segment is as short and as early.
    audio = presentation.audio
    seconds = [s.duration / audio.timescale for s in audio.segments]
    assert len(seconds) == 4 and abs(seconds[0] - 1) < 0.2, seconds  # cut where the interleaved audio is

    pid = created["playback_ids"][0]["id"]
    mpd = client.get(f"/play/{pid}/manifest.mpd")
    assert mpd.status_code == 200
    validate_mpd(mpd.text)
    timeline = re.search(r'<Representation id="h264-360p".*?<SegmentTimeline>(.*?)</SegmentTimeline>', mpd.text,
                         re.S).group(1)
    scale = video[0].timescale
    assert re.findall(r'<S (?:t="0" )?d="(\d+)" />', timeline) == [str(scale * n) for n in (1, 3, 4, 1)]
    playlist = client.get(f"/play/{pid}/h264-360p/index.m3u8").text
    assert "#EXT-X-TARGETDURATION:4\n" in playlist
    assert re.findall(r"#EXTINF:([\d.]+),", playlist) == ["1.000000", "3.000000", "4.000000", "1.000000"]
    segment = client.get(f"/play/{pid}/{video[0].segment_uri(1)}")
    assert segment.status_code == 200 and len(segment.content) == video[0].segments[0].size
