"""Images from a real asset through the origin: sizes, times, caching, signing, bounds."""

from __future__ import annotations

import io
import re
from itertools import pairwise

import av
import pytest

from core.media.images import plan_storyboard


class Gray:
    """A decoded picture's luma, without numpy: `shape` (height, width), crops, mean, mean difference."""

    def __init__(self, width: int, height: int, rows: list[bytes]) -> None:
        self.shape = (height, width)
        self.rows = rows

    @classmethod
    def of(cls, frame) -> Gray:
        gray = frame.reformat(format="gray")
        plane = gray.planes[0]
        data = bytes(plane)
        return cls(gray.width, gray.height,
                   [data[y * plane.line_size:y * plane.line_size + gray.width] for y in range(gray.height)])

    def crop(self, x: int, y: int, w: int, h: int) -> Gray:
        return Gray(w, h, [row[x:x + w] for row in self.rows[y:y + h]])

    def mean(self) -> float:
        return sum(sum(r) for r in self.rows) / (self.shape[0] * self.shape[1])

    def diff(self, other: Gray) -> float:
        assert self.shape == other.shape
        return sum(abs(a - b) for ra, rb in zip(self.rows, other.rows) for a, b in zip(ra, rb)) / (
            self.shape[0] * self.shape[1])


def _decode(body: bytes) -> list[Gray]:
    with av.open(io.BytesIO(body)) as container:
        return [Gray.of(f) for f in container.decode(video=0)]


def _get(ready, path: str, **params):
    return ready.client.get(f"/play/{ready.public_id}/{path}", params=params)


@pytest.mark.parametrize(
    ("params", "size"),
    [
        pytest.param({}, (640, 360), id="source-size"),
        pytest.param({"width": "320"}, (320, 180), id="width-keeps-aspect"),
        pytest.param({"width": "300"}, (320, 180), id="width-snaps-up-to-320"),
        pytest.param({"height": "90"}, (160, 90), id="height-keeps-aspect"),
        pytest.param({"width": "200", "height": "200"}, (240, 135), id="preserve-fits-inside-240"),
        pytest.param({"width": "200", "height": "200", "fit_mode": "stretch"}, (240, 240), id="stretch"),
        pytest.param({"width": "240", "height": "240", "fit_mode": "crop"}, (240, 240), id="crop"),
        pytest.param({"width": "240", "height": "240", "fit_mode": "smartcrop"}, (240, 240), id="smartcrop"),
        pytest.param({"width": "240", "height": "240", "fit_mode": "pad"}, (240, 240), id="pad"),
    ],
)
def test_thumbnail_size(ready, params, size):
    r = _get(ready, "thumbnail.jpg", time="1.5", **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    (frame,) = _decode(r.content)
    assert (frame.shape[1], frame.shape[0]) == size


def test_pad_puts_black_bars_above_and_below(ready):
    r = _get(ready, "thumbnail.jpg", time="1", width="240", height="240", fit_mode="pad")
    (frame,) = _decode(r.content)
    # a 240x135 picture centred in 240x240: black above and below
    assert frame.crop(0, 0, 240, 45).mean() < 25 and frame.crop(0, 195, 240, 45).mean() < 25
    assert frame.crop(0, 70, 240, 100).mean() > 40


def test_different_times_give_different_images(ready):
    frames = [_decode(_get(ready, "thumbnail.jpg", time=t, width="320").content)[0] for t in ("0.5", "2.5", "4.5")]
    assert frames[0].diff(frames[1]) > 3
    assert frames[1].diff(frames[2]) > 3
    again = _decode(_get(ready, "thumbnail.jpg", time="2.5", width="320").content)[0]
    assert again.diff(frames[1]) == 0  # same request, same stored picture
    snapped = _get(ready, "thumbnail.jpg", time="3.2", width="300")  # 3 s and 320 px, like time=2.5 (→ 3)
    assert snapped.headers["etag"] == _get(ready, "thumbnail.jpg", time="2.5", width="320").headers["etag"]


def test_time_past_the_end_is_clamped_to_the_last_frame(ready):
    r = _get(ready, "thumbnail.jpg", time="9999", width="160")
    assert r.status_code == 200, r.text
    assert len(_decode(r.content)) == 1


def test_webp_thumbnail_decodes(ready):
    r = _get(ready, "thumbnail.webp", time="3", width="240")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp" and r.content[:4] == b"RIFF" and r.content[8:12] == b"WEBP"
    (frame,) = _decode(r.content)
    assert frame.shape[1] == 240


def test_animated_webp_is_short_and_small(ready):
    r = _get(ready, "animated.webp", start="1", end="3", width="160", fps="5")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp" and r.content[8:12] == b"WEBP"
    assert b"ANIM" in r.content[:64]  # the animation chunk of an animated WebP
    assert len(r.content) < 200_000


def test_images_are_cached_and_served_like_segments(ready):
    storage = ready.pipeline.storage
    first = _get(ready, "thumbnail.jpg", time="2", width="100")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = first.headers["etag"]
    assert etag.startswith('"') and "last-modified" in first.headers
    stored = [k for k in storage.list(f"media/{ready.id}/images") if "-t200-120x68-" in k]  # 100 px → 120
    assert len(stored) == 1
    mtime = storage.stat(stored[0]).mtime
    # Equal parameters, written differently, are one image: no second ffmpeg run.
    second = _get(ready, "thumbnail.jpg", time="2.000", width="110", fit_mode="preserve")
    assert second.headers["etag"] == etag and storage.stat(stored[0]).mtime == mtime
    assert ready.client.get(f"/play/{ready.public_id}/thumbnail.jpg?time=2&width=100",
                            headers={"If-None-Match": etag}).status_code == 304
    part = ready.client.get(f"/play/{ready.public_id}/thumbnail.jpg?time=2&width=100", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and len(part.content) == 10
    head = ready.client.head(f"/play/{ready.public_id}/thumbnail.jpg?time=2&width=100")
    assert head.status_code == 200 and head.headers["etag"] == etag


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("time=abc", id="time-not-a-number"),
        pytest.param("time=-1", id="time-negative"),
        pytest.param("time=nan", id="time-nan"),
        pytest.param("width=0", id="width-zero"),
        pytest.param("width=1921", id="width-too-big"),
        pytest.param("height=12.5", id="height-fraction"),
        pytest.param("fit_mode=zoom", id="fit-mode-unknown"),
    ],
)
def test_garbage_parameters_are_400(ready, query):
    r = ready.client.get(f"/play/{ready.public_id}/thumbnail.jpg?{query}")
    assert r.status_code == 400, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json()["error"]["code"] == "bad_request"


def test_animated_bounds(ready):
    assert _get(ready, "animated.webp", start="3", end="2").status_code == 400
    assert _get(ready, "animated.webp", width="641").status_code == 400
    assert _get(ready, "animated.webp", fps="31").status_code == 400


def test_unknown_playback_id_is_404(ready):
    assert ready.client.get("/play/nosuchid000/thumbnail.jpg").status_code == 404
    assert ready.client.get(f"/play/{ready.public_id}/thumbnail.png").status_code == 404


def test_signed_playback_needs_a_token(ready):
    for path in ("thumbnail.jpg", "storyboard.vtt", "storyboard.jpg", "animated.webp", "download.mp4"):
        assert ready.client.get(f"/play/{ready.signed_id}/{path}").status_code in (401, 403), path
    token = ready.client.post("/v1/playback-tokens", json={"playback_id": ready.signed_id}).json()["token"]
    r = ready.client.get(f"/play/{ready.signed_id}/thumbnail.jpg", params={"time": "1", "token": token})
    assert r.status_code == 200
    # A response lives no longer than its token.
    max_age = int(re.search(r"max-age=(\d+)", r.headers["cache-control"])[1])
    assert 0 < max_age <= 3600
    vtt = ready.client.get(f"/play/{ready.signed_id}/storyboard.vtt", params={"token": token}).text
    assert f"storyboard.jpg?token={token}#xywh=" in vtt


def _cues(vtt: str) -> list[tuple[float, float, str]]:
    def secs(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    found = re.findall(r"^(\S+) --> (\S+)\n(.+)$", vtt, re.MULTILINE)
    return [(secs(a), secs(b), target) for a, b, target in found]


def test_storyboard_covers_the_whole_duration_and_matches_its_sheet(ready):
    r = _get(ready, "storyboard.vtt")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/vtt")
    assert r.text.startswith("WEBVTT\n\n")
    cues = _cues(r.text)
    duration = ready.presentation().duration
    assert cues[0][0] == 0
    assert all(a[1] == b[0] for a, b in pairwise(cues)), "cues must be contiguous"
    assert cues[-1][1] >= duration - 0.001 and len(cues) >= 5
    sheet = _get(ready, "storyboard.jpg")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/jpeg"
    (image,) = _decode(sheet.content)
    height, width = image.shape
    boxes = [tuple(int(v) for v in t.split("#xywh=")[1].split(",")) for _, _, t in cues]
    assert all(t.startswith("storyboard.jpg#xywh=") for _, _, t in cues)
    assert max(x + w for x, y, w, h in boxes) == width
    assert max(y + h for x, y, w, h in boxes) == height
    assert len(set(boxes)) == len(boxes)  # one tile per cue
    # Tiles are real frames: the first and a later one differ.
    x0, y0, w, h = boxes[0]
    x1, y1, _, _ = boxes[len(boxes) // 2]
    assert image.crop(x0, y0, w, h).diff(image.crop(x1, y1, w, h)) > 3
    plan = plan_storyboard(ready.presentation())
    assert (width, height) == plan.sheet_size


def test_storyboard_is_made_by_the_worker_not_on_request(ready):
    storage = ready.pipeline.storage
    plan = plan_storyboard(ready.presentation())
    key = f"media/{ready.id}/images/{plan.name}"
    assert storage.exists(key)  # made by the transcode, before the asset was ready
    sheet = storage.get_bytes(key)
    storage.delete(key)
    try:
        for path in ("storyboard.vtt", "storyboard.jpg"):
            r = _get(ready, path)
            assert r.status_code == 404 and "made by the transcode" in r.json()["error"]["message"], path
        assert not storage.exists(key)  # a request never makes it
    finally:
        storage.put_bytes(key, sheet)
    assert _get(ready, "storyboard.vtt").status_code == 200


def test_storyboard_is_cut_by_the_encode_not_by_a_second_decode(ready):
    # The worker's ffmpeg lines (core.media.runner logs each argv): the sheet the origin serves is an
    # output of the ladder's own ffmpeg (core.media.images.StoryboardTap); no ffmpeg decodes a finished
    # rung again to tile it.
    plan = plan_storyboard(ready.presentation())
    lines = [line for line in ready.pipeline.log.read_text().splitlines() if "ffmpeg: " in line]
    encodes = [line for line in lines if " -f dash " in line]
    assert encodes and all(" -f dash " in line for line in lines if "tile=" in line), lines
    assert plan.name in encodes[0] and "[sb]fps=1/" in encodes[0]
    assert ready.pipeline.storage.exists(f"media/{ready.id}/images/{plan.name}")
