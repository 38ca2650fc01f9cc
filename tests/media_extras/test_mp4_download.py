"""The static MP4 download: remuxed (not re-encoded), faststart, served with ranges."""

from __future__ import annotations

import io
from pathlib import Path

import av

from core.media.mp4 import (
    DOWNLOAD_RELATIVE,
    build_remux_argv,
    is_faststart,
    top_level_boxes,
)


def test_remux_argv_copies_streams_with_faststart():
    assert build_remux_argv("ffmpeg", Path("v.mp4"), Path("a.mp4"), Path("o.mp4")) == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-protocol_whitelist", "file,pipe", "-i", "v.mp4", "-protocol_whitelist", "file,pipe", "-i", "a.mp4",
        "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-map_metadata", "-1", "-map_chapters", "-1",
        "-movflags", "+faststart", "-f", "mp4", "o.mp4",
    ]  # fmt: skip


def test_download_is_faststart_and_plays(ready, tmp_path):
    r = ready.client.get(f"/play/{ready.public_id}/download.mp4")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    path = tmp_path / "download.mp4"
    path.write_bytes(r.content)
    boxes = top_level_boxes(path)
    assert boxes[0] == "ftyp" and is_faststart(path), boxes
    assert "moof" not in boxes  # progressive, not fragmented
    p = ready.presentation()
    top = max((t for t in p.video_tracks if t.rendition.codec == "h264"), key=lambda t: t.rendition.height)
    with av.open(io.BytesIO(r.content)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.width, video.codec_context.height) == (top.rendition.width, top.rendition.height)
        assert audio.codec_context.name == "aac"
        assert abs(float(container.duration / 1_000_000) - p.duration) < 0.2
    # Remuxed, not re-encoded: the video bytes are the rung's segment payloads. The window is taken from the
    # segment's first sample (its IDR frame, the largest), so it lies within one sample: a window across two
    # samples can be cut by the progressive file's interleaving (an audio chunk between them).
    segment = ready.pipeline.storage.get_bytes(f"media/{ready.id}/{top.segment_uri(2)}")
    payload = segment.index(b"mdat") + 4
    sample = segment[payload + 200:payload + 1200]
    assert len(sample) == 1000 and sample in r.content
    assert ready.pipeline.storage.exists(f"media/{ready.id}/{DOWNLOAD_RELATIVE}")


def test_download_ranges_and_attachment_name(ready):
    url = f"/play/{ready.public_id}/download.mp4"
    whole = ready.client.get(url).content
    part = ready.client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    named = ready.client.head(url, params={"download": "my video"})
    assert named.headers["content-disposition"] == 'attachment; filename="my_video.mp4"'


def test_no_download_without_mp4_support(ready):
    # The fabricated signed id shares the asset; an asset without the setting has no file at all.
    storage = ready.pipeline.storage
    data = storage.get_bytes(f"media/{ready.id}/{DOWNLOAD_RELATIVE}")
    storage.delete(f"media/{ready.id}/{DOWNLOAD_RELATIVE}")
    try:
        r = ready.client.get(f"/play/{ready.public_id}/download.mp4")
        assert r.status_code == 404 and "mp4_support" in r.json()["error"]["message"]
        assert r.headers["cache-control"] == "no-store"
    finally:
        storage.put_bytes(f"media/{ready.id}/{DOWNLOAD_RELATIVE}", data)
