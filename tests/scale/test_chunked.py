"""Two worker processes, PostgreSQL, Redis and an S3-compatible bucket: one chunked asset, seamless.

Source: 24 s 320x240 30 fps with a 440 Hz tone; segment 2 s, chunk 8 s -> 3 chunks; the default
short first segment (ABR_FIRST_SEGMENT_DURATION) in chunk 0. The chunked result is compared segment
for segment with a single-process encode of the same source (the unchunked path's encode step,
same argv builder, same first segment).
"""

from __future__ import annotations

import io
import re
import urllib.request
from fractions import Fraction

import av
import pytest

from core.media.encode import EncodeJob
from core.media.family import encode_family
from core.media.ffmpeg import find_ffmpeg
from core.media.probe import probe
from core.services.assets import AssetSettings, plan_asset
from core.config import Settings
from core.services.transcode import families_for
from tests.scale.conftest import start_cluster

pytestmark = pytest.mark.timeout(240)
SEGMENT, FPS, SECONDS = 2, 30, 24
FIRST = Settings.model_fields["first_segment_duration"].default  # the workers run on the defaults


@pytest.fixture
def chunked_run(services_env, tmp_path, scale_clips):
    source = scale_clips("long", duration=SECONDS, width=320, height=240, fps=FPS)
    stack, cluster = start_cluster(services_env, tmp_path, [("worker-a", "transcode,default"),
                                                            ("worker-b", "transcode,default")])
    with stack:
        created = cluster.upload(source, {"segment_duration": SEGMENT})
        asset = cluster.wait(created["id"])
        assert asset["status"] == "ready", asset
        yield cluster, created, source, tmp_path


def reference_tracks(source, out_dir):
    """The single-worker encode of the same source: one ffmpeg for the family, audio in it."""
    ladders, audio = plan_asset(probe(source), AssetSettings(segment_duration=SEGMENT))
    family = families_for(ladders, audio)[0]
    job = EncodeJob(source, out_dir, family.ladder, family.audio, SEGMENT, family.ladder.renditions[0].frame_rate,
                    first_segment_duration=FIRST)
    return {t.id: t for t in encode_family(find_ffmpeg(), job, duration=None, on_progress=None,
                                           on_segment=lambda *a: None)}


def decode_all(cluster, asset_id, track):
    data = cluster.storage.get_bytes(f"media/{asset_id}/{track.init_uri}")
    data += b"".join(cluster.storage.get_bytes(f"media/{asset_id}/{track.segment_uri(s.number)}")
                     for s in track.segments)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams[0]
        if track.rendition.is_audio:
            return [f.samples for f in container.decode(stream)], stream.time_base
        return [f.pts for f in container.decode(stream)], stream.time_base


def test_two_workers_encode_one_chunked_asset_seamlessly(chunked_run):
    cluster, created, source, tmp_path = chunked_run
    asset_id = created["id"]

    # Both workers encoded chunks; every chunk was encoded exactly once.
    logs = [p.read_text() for p in cluster.logs]
    pieces = [set(re.findall(rf"asset {asset_id}: encoding (f\dc\d)", text)) for text in logs]
    assert all(pieces), f"a worker encoded no chunk: {pieces}"
    assert sorted(pieces[0] | pieces[1]) == ["f0c0", "f0c1", "f0c2"] and not pieces[0] & pieces[1]
    assert any("assets.encode_chunk" in text for text in logs)
    # Each worker downloaded the source from the bucket into its own work dir (nothing shared on disk).
    assert not (tmp_path / "worker-a" / "storage").exists() and not (tmp_path / "worker-b" / "storage").exists()

    presentation = cluster.presentation(asset_id)
    assert presentation.complete
    reference = reference_tracks(source, tmp_path / "reference")
    assert [t.id for t in presentation.tracks] == list(reference)
    frame = Fraction(1, FPS)
    for track in presentation.video_tracks:
        ref = reference[track.id]
        assert len(track.segments) == len(ref.segments) == SECONDS // SEGMENT + (0 < FIRST < SEGMENT)
        assert track.codecs == ref.codecs and track.timescale == ref.timescale
        for got, want in zip(track.segments, ref.segments):
            assert got.number == want.number
            assert abs(Fraction(got.start - want.start, track.timescale)) < frame
            assert abs(Fraction(got.duration - want.duration, track.timescale)) < frame
        # The init segment every chunk's segments are decoded with: decodable across both joins.
        pts, time_base = decode_all(cluster, asset_id, track)
        assert len(pts) == SECONDS * FPS
        steps = {round((b - a) * time_base * FPS, 6) for a, b in zip(pts, pts[1:])}
        assert steps == {1}, f"timestamps jump at a join: {steps}"

    audio = presentation.audio
    assert audio is not None and audio.complete
    for prev, seg in zip(audio.segments, audio.segments[1:]):
        assert seg.start == prev.start + prev.duration  # contiguous: no gap, no overlap
    samples, _ = decode_all(cluster, asset_id, audio)
    assert abs(sum(samples) - SECONDS * 48000) <= 1024  # one AAC frame of priming at most
    assert abs(audio.duration_seconds - reference[audio.id].duration_seconds) < 0.05

    # The origin serves it from the bucket.
    pid = created["playback_ids"][0]["id"]
    master = cluster.client.get(f"/play/{pid}/master.m3u8")
    assert master.status_code == 200 and "#EXT-X-STREAM-INF" in master.text
    first = presentation.video_tracks[0]
    seg = cluster.client.get(f"/play/{pid}/{first.segment_uri(first.segments[-1].number)}")
    assert seg.status_code == 200 and len(seg.content) == first.segments[-1].size
    staging = list(cluster.storage.list(f"staging/{asset_id}"))
    assert staging == [], f"staging left behind: {staging}"

    # Metrics: the API reads state from Redis and PostgreSQL; the workers serve what they encoded.
    text = cluster.client.get("/metrics").text
    assert 'abr_queue_depth{queue="transcode"} 0.0' in text
    assert 'abr_jobs{status="succeeded"} 1.0' in text
    assert re.search(r'abr_origin_requests_total\{class="segment",status="200"\} [1-9]', text)
    encoded = 0.0
    for port in cluster.metrics_ports:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        encoded += sum(float(v) for v in re.findall(r'abr_encoded_media_seconds_total\{kind="chunk"\} (\S+)', body))
    assert abs(encoded - SECONDS) < 0.5, encoded
