"""The chunked path encodes the audio beside chunk 0, not before it (issue #20: time to playable at any length).

Source: 24 s 320x240 30 fps with a 440 Hz tone; segment 2 s, chunk 8 s -> 3 chunks; a 1 s first
segment (ABR_FIRST_SEGMENT_DURATION) in chunk 0 only.
The whole-asset task runs in this process on the embedded defaults (SQLite,
local storage) with a storage that records every upload in order; the chunk
tasks it sends are then run here too, one after the other.

Ordering, not timing: the storage holds the audio's second segment until a
video segment of chunk 0 has been uploaded. Encoding the audio beside chunk 0
lets chunk 0 get there; the old order (the whole source's audio first, then
chunk 0) never could, and the hold runs out (HOLD_S) with no video uploaded.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from core.errors import Cancelled, FFmpegError
from core.media.encode import EncodeJob
from core.media.family import encode_family
from core.media.ffmpeg import find_ffmpeg
from core.media.model import Presentation
from core.services import chunked as chunked_module
from core.services.chunked import ChunkPolicy
from core.services.transcode import AssetTranscode, ChunkRun, PipelineConfig
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.helpers import app_client, upload_asset

pytestmark = pytest.mark.timeout(240)
SEGMENT, CHUNK, SECONDS, RATE = 2, 8, 24, 48000
HOLD_S = 60.0  # far longer than chunk 0's first segment takes on a loaded 2-core machine


class RecordingStorage:
    """The API's storage, with every upload recorded in order and the audio's 2nd segment held (see above)."""

    def __init__(self, inner, asset_id: str) -> None:
        self.inner, self.media = inner, f"media/{asset_id}/"
        self.uploads: list[str] = []
        self.presentations: list[Presentation] = []
        self.video_uploaded = threading.Event()
        self.held_for_video: bool | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def put_file(self, key: str, path: Path, *, move: bool = False) -> None:
        if key == f"{self.media}audio/00002.m4s":
            self.held_for_video = self.video_uploaded.wait(HOLD_S)
        self.inner.put_file(key, path, move=move)
        with self._lock:
            self.uploads.append(key)
        if re.fullmatch(rf"{self.media}h264-[^/]+/\d{{5}}\.m4s", key):
            self.video_uploaded.set()

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        self.inner.put_bytes(key, data, content_type=content_type)
        if key == f"{self.media}presentation.json":
            with self._lock:
                self.presentations.append(Presentation.from_dict(json.loads(data)))


@pytest.fixture
def chunked_asset(tmp_path, clips):
    source = clips("chunked-audio", duration=SECONDS, width=320, height=240, fps=30)
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as client:
        created = upload_asset(client, source, {"segment_duration": SEGMENT})
        ctx = client.app.state.ctx
        storage = RecordingStorage(ctx.storage, created["id"])
        sent: list[str] = []
        config = PipelineConfig(ffmpeg=find_ffmpeg(), work_dir=tmp_path / "work", first_segment_duration=1.0,
                                chunking=ChunkPolicy(chunk_duration=CHUNK, min_source=2 * CHUNK,
                                                     send=lambda asset_id, piece: sent.append(piece)))
        AssetTranscode(ctx.engine, storage, config, created["id"]).run()
        after_first_task = client.get(f"/v1/assets/{created['id']}").json()
        for piece in list(sent):
            ChunkRun(ctx.engine, ctx.storage, config, created["id"], piece).run()
        yield client, created, storage, sent, after_first_task, source, tmp_path


def test_chunk_0_is_published_while_the_audio_is_still_encoding(chunked_asset):
    client, created, storage, sent, after_first_task, _, _ = chunked_asset
    media = f"media/{created['id']}/"
    assert sent == ["f0c1", "f0c2"]
    assert after_first_task["playable"] and after_first_task["status"] == "processing"
    assert storage.held_for_video is True, "chunk 0 uploaded no segment while the audio was held"

    audio_segments = [i for i, k in enumerate(storage.uploads) if re.fullmatch(rf"{media}audio/\d{{5}}\.m4s", k)]
    video_segments = [i for i, k in enumerate(storage.uploads) if re.fullmatch(rf"{media}h264-[^/]+/\d{{5}}\.m4s", k)]
    assert len(audio_segments) == SECONDS // SEGMENT
    assert video_segments and video_segments[0] < audio_segments[-1]

    # The first presentation the origin could serve lists chunk 0's video beside an unfinished audio track:
    # never the audio alone (a master playlist of audio only, which players do not reload), nor video alone.
    first = storage.presentations[0]
    assert first.audio is not None and first.audio.segments and not first.audio.complete
    assert len(first.audio.segments) < SECONDS // SEGMENT
    assert first.video_tracks and all(t.segments for t in first.video_tracks)

    asset = client.get(f"/v1/assets/{created['id']}").json()
    assert asset["status"] == "ready", asset


def _ffmpeg_audio_seconds(path: Path) -> float:
    """How far `ffmpeg -i path -map 0:a -f null -` gets (its last progress report's out_time)."""
    out = subprocess.run([find_ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
                          "-map", "0:a:0", "-f", "null", "-progress", "pipe:1", "-"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return int(re.findall(r"^out_time_us=(\d+)$", out, re.M)[-1]) / 1e6


def _decode_audio(data: bytes):
    import numpy as np

    with av.open(io.BytesIO(data)) as container:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(container.streams.audio[0])])


def test_audio_is_continuous_across_the_chunk_joins(chunked_asset):
    client, created, storage, _, _, source, tmp_path = chunked_asset
    asset_id = created["id"]
    presentation = Presentation.from_dict(json.loads(storage.get_bytes(f"media/{asset_id}/presentation.json")))
    assert presentation.complete
    audio = presentation.audio
    assert audio is not None and audio.complete
    for prev, seg in zip(audio.segments, audio.segments[1:]):
        assert seg.start == prev.start + prev.duration  # contiguous: no gap, no overlap
    joined = storage.get_bytes(f"media/{asset_id}/{audio.init_uri}") + b"".join(
        storage.get_bytes(f"media/{asset_id}/{audio.segment_uri(s.number)}") for s in audio.segments)
    published = _decode_audio(joined)

    # The joined track lasts as long as the source's audio, within one AAC frame (1024 samples):
    # decoded by the ffmpeg binary, read the same way for both, and counted sample by sample.
    joined_path = tmp_path / "joined-audio.mp4"
    joined_path.write_bytes(joined)
    frame = 1024 / RATE
    assert abs(_ffmpeg_audio_seconds(joined_path) - _ffmpeg_audio_seconds(source)) <= frame
    with av.open(str(source)) as src:
        source_samples = sum(f.samples for f in src.decode(src.streams.audio[0]))
    assert abs(len(published) // audio.rendition.channels - source_samples) <= 1024

    # Sample for sample what one uninterrupted encode of the whole source gives: no gap or click at 8 s and 16 s.
    job = EncodeJob(source, tmp_path / "reference", None, audio.rendition, SEGMENT, None)
    (reference,) = encode_family(find_ffmpeg(), job, duration=None, on_progress=None, on_segment=lambda *a: None)
    ref_dir = tmp_path / "reference"
    ref = (ref_dir / "init-0.m4s").read_bytes() + b"".join(
        (ref_dir / f"seg-0-{s.number:05d}.m4s").read_bytes() for s in reference.segments)
    assert (published == _decode_audio(ref)).all()

    # The video of every chunk and the audio end together, and both manifests describe it. Chunk 0 starts
    # with the 1 s segment (1 + 1 + 2 + 2 + 2 s); the later chunks, numbered on from 6, are whole 2 s segments.
    for track in presentation.video_tracks:
        assert abs(track.duration_seconds - audio.duration_seconds) < 0.1
        assert [s.number for s in track.segments] == list(range(1, SECONDS // SEGMENT + 2))
        assert [Fraction(s.duration, track.timescale) for s in track.segments] == [1, 1] + [2] * (SECONDS // SEGMENT - 1)
        for prev, seg in zip(track.segments, track.segments[1:]):
            assert seg.start == prev.start + prev.duration
    pid = created["playback_ids"][0]["id"]
    mpd = client.get(f"/play/{pid}/manifest.mpd")
    assert mpd.status_code == 200
    validate_mpd(mpd.text)
    assert 'type="static"' in mpd.text
    master = client.get(f"/play/{pid}/master.m3u8")
    assert master.status_code == 200 and 'TYPE=AUDIO' in master.text
    audio_playlist = re.search(r'TYPE=AUDIO.*URI="([^"]+)"', master.text).group(1)
    media = client.get(f"/play/{pid}/{audio_playlist}")
    assert media.status_code == 200 and media.text.count("#EXTINF") == SECONDS // SEGMENT
    assert "#EXT-X-ENDLIST" in media.text


def test_the_first_failure_stops_the_piece_beside_it():
    stop = threading.Event()

    def fails():
        raise FFmpegError("audio: no decoder")

    def encodes():  # what run_ffmpeg does with a cancel callback: stop once asked
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if stop.is_set():
                raise Cancelled("the encode was cancelled")
            time.sleep(0.01)
        raise AssertionError("never told to stop")

    with pytest.raises(FFmpegError, match="no decoder"):
        chunked_module._alongside([encodes, fails], stop)
    assert stop.is_set()


def test_pieces_that_succeed_leave_stop_unset():
    stop, ran = threading.Event(), []
    chunked_module._alongside([lambda: ran.append(1), lambda: ran.append(2)], stop)
    assert sorted(ran) == [1, 2] and not stop.is_set()


def test_the_audio_is_held_after_its_first_segment_until_chunk_0_has_its_first_segments():
    audio_first, chunk0_first, stop = threading.Event(), threading.Event(), threading.Event()
    hold = chunked_module.audio_hold(audio_first, chunk0_first, stop, time.monotonic() + 60)
    assert not hold()  # its first segment is what `playable` needs of it: never held before that
    audio_first.set()
    assert hold()
    chunk0_first.set()
    assert not hold()
    chunk0_first.clear()
    stop.set()
    assert not hold()  # a failure beside it: it must run to see its cancel
    stop.clear()
    assert hold()
    expired = chunked_module.audio_hold(audio_first, chunk0_first, stop, time.monotonic() - 1)
    assert not expired()  # never held past the deadline, whatever chunk 0 does
