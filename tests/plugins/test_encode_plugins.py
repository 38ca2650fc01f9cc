"""Frame plugins through encode_family: decode once → plugins → encode the ladder; checked after decoding."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from core.media.family import encode_family
from core.media.framepipe import PluginFailed
from core.media.plugins.timecode import read_bits
from tests.core.media.test_family import Recorder, plan


def run(ffmpeg, source: Path, out: Path, plugins, *, max_rungs: int = 2):
    job, info = plan(source, "h264", out=out, max_rungs=max_rungs)
    recorder = Recorder()
    tracks = encode_family(ffmpeg, job, duration=info.duration, on_progress=None, on_segment=recorder,
                           plugins=plugins)
    return tracks, recorder, info


def frames_of(files: list[Path], fmt: str = "rgb24") -> list[np.ndarray]:
    data = b"".join(p.read_bytes() for p in files)
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format=fmt) for f in container.decode(video=0)]


def source_frames(path: Path, fmt: str = "rgb24") -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format=fmt) for f in container.decode(video=0)]


def test_watermark_in_every_rendition_every_frame_with_audio_in_sync(ffmpeg, clip, red_mark, tmp_path):
    source = clip("wm", duration=2.0, width=480, height=360)
    plugins = [{"name": "watermark", "options": {"image": str(red_mark), "position": "top-right",
                                                 "width": 0.25, "margin": 0.05}}]
    tracks, recorder, _ = run(ffmpeg, source, tmp_path / "wm", plugins)
    plain, plain_recorder, _ = run(ffmpeg, source, tmp_path / "plain", None)
    expected = len(source_frames(source))
    assert [t.id for t in tracks] == ["h264-360p", "h264-240p", "audio"]
    for track in tracks[:2]:
        frames = frames_of(recorder.files[track.id])
        assert len(frames) == expected, track.id  # frame count in == frame count out
        h, w = frames[0].shape[:2]
        # The mark: 25 % of the width, 5 % margin, top-right; its inner 3/4 is opaque red.
        size, margin = w * 0.25, w * 0.05
        x0, y0 = w - margin - size, margin
        inner = (slice(int(y0 + size * 0.2), int(y0 + size * 0.8)), slice(int(x0 + size * 0.2), int(x0 + size * 0.8)))
        border = (int(y0 + size * 0.04), int(x0 + size * 0.04))  # transparent: the picture shows through
        reference = frames_of(plain_recorder.files[track.id])
        for i, (frame, ref) in enumerate(zip(frames, reference, strict=True)):
            red = frame[inner].reshape(-1, 3).mean(axis=0)
            assert red[0] > 200 and red[1] < 60 and red[2] < 60, (track.id, i, red)
            assert np.abs(frame[border].astype(int) - ref[border].astype(int)).max() < 40, (track.id, i)
            # Away from the mark the picture is what the plain encode gives.
            assert np.abs(frame[h // 2:, : w // 2].astype(int) - ref[h // 2:, : w // 2]).mean() < 2.0
    # Audio comes from the source in both runs: same timeline; video starts where the plain one does.
    by_id = {t.id: t for t in plain}
    for track in tracks:
        ours, theirs = track.segments[0], by_id[track.id].segments[0]
        assert abs(ours.start / track.timescale - theirs.start / by_id[track.id].timescale) < 1 / 30
        assert abs(track.duration_seconds - by_id[track.id].duration_seconds) < 1 / 30


def test_timecode_bit_pattern_reads_back_every_frame_in_order(ffmpeg, clip, tmp_path):
    source = clip("tc", duration=2.0, width=320, height=240, audio_channels=None)
    plugins = [{"name": "timecode", "options": {"bit_pattern": True, "position": "top-left"}}]
    tracks, recorder, _ = run(ffmpeg, source, tmp_path / "tc", plugins, max_rungs=1)
    frames = frames_of(recorder.files[tracks[0].id], fmt="gray")
    millis = [read_bits(f, width=f.shape[1]) for f in frames]
    assert millis == [round(i * 1000 / 30) for i in range(60)]


def test_blur_faces_blurs_the_face_and_nothing_else(ffmpeg, face_clip, tmp_path):
    import cv2  # a test dependency (the `test` extra): never skipped
    tracks, recorder, _ = run(ffmpeg, face_clip, tmp_path / "blur", [{"name": "blur_faces", "options": {}}],
                              max_rungs=1)
    plain, plain_recorder, _ = run(ffmpeg, face_clip, tmp_path / "plain", None, max_rungs=1)
    source = source_frames(face_clip, fmt="gray")
    out = frames_of(recorder.files[tracks[0].id], fmt="gray")
    reference = frames_of(plain_recorder.files[plain[0].id], fmt="gray")
    assert len(out) == len(source)
    detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = detector.detectMultiScale(source[0], 1.1, 4, minSize=(24, 24))
    assert len(faces) == 1, faces  # the photo has one face
    x, y, w, h = faces[0]
    face = (slice(y, y + h), slice(x, x + w))

    def sharpness(img):
        return cv2.Laplacian(img, cv2.CV_64F).var()

    for i in (0, 7, 45, len(out) - 1):  # detection frames and tracked frames
        assert sharpness(out[i][face]) < sharpness(source[i][face]) / 4, i
        cx, cy = x + w // 2, y + h // 2  # the detector no longer finds the face there
        found = detector.detectMultiScale(out[i], 1.1, 4, minSize=(24, 24))
        assert not [f for f in found if f[0] <= cx <= f[0] + f[2] and f[1] <= cy <= f[1] + f[3]], (i, found)
        # Away from the face (below it) the picture is what the plain encode gives.
        rest = (slice(y + 2 * h, None), slice(None))
        # (up to the encoder's rate control: the blurred face costs fewer bits, the rest gets them)
        assert np.abs(out[i][rest].astype(int) - reference[i][rest]).mean() < 2.0, i
        assert np.abs(out[i][face].astype(int) - reference[i][face]).mean() > 8.0, i


def test_a_raising_plugin_stops_the_encode_with_its_name_and_message(ffmpeg, clip, tmp_path, test_plugins):
    source = clip("boom", duration=2.0, width=320, height=240)
    with pytest.raises(PluginFailed, match="frame plugin explodes failed: the model ran out of coffee"):
        run(ffmpeg, source, tmp_path / "boom", [{"name": "nothing"}, {"name": "explodes"}])


def test_no_op_plugin_keeps_every_frame(ffmpeg, clip, tmp_path, test_plugins):
    source = clip("noop", duration=1.0, width=320, height=240)
    tracks, recorder, _ = run(ffmpeg, source, tmp_path / "noop", [{"name": "nothing"}], max_rungs=1)
    assert len(frames_of(recorder.files[tracks[0].id])) == len(source_frames(source)) == 30


def test_a_corrupt_source_fails_with_the_decoders_reason(ffmpeg, clip, tmp_path, test_plugins):
    import shutil

    from core.errors import FFmpegError
    from tests.media_fixtures import truncate

    good = clip("cut", duration=2.0, width=320, height=240)
    job, info = plan(good, "h264", out=tmp_path / "cut", max_rungs=1)
    broken = truncate(shutil.copy(good, tmp_path / "broken.mp4"), 0.6)
    with pytest.raises(FFmpegError, match="truncated or corrupt"):
        encode_family(ffmpeg, replace(job, source=broken), duration=info.duration, on_progress=None,
                      on_segment=Recorder(), plugins=[{"name": "nothing"}])
