"""The API side of frame plugins: the listing, settings validation (422), overlays, and assets through a worker."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest

from core.media.ffmpeg import find_ffmpeg
from core.services.transcode import AssetTranscode, PipelineConfig
from tests.helpers import app_client, upload_asset
from tests.pipeline.conftest import pipeline  # noqa: F401  (fixture: API + a real worker process)


@pytest.fixture
def client(tmp_path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as c:
        yield c


def test_listing_shows_builtins_with_option_schemas(client):
    r = client.get("/v1/frame-plugins")
    assert r.status_code == 200
    by_name = {p["name"]: p for p in r.json()["data"]}
    assert {"watermark", "timecode", "blur_faces"} <= set(by_name)
    wm = by_name["watermark"]
    assert wm["available"] and wm["pix_fmts"] == ["yuv420p", "rgb24"]
    assert wm["options_schema"]["required"] == ["image"]
    assert set(wm["options_schema"]["properties"]) == {"image", "position", "width", "margin", "opacity"}
    assert by_name["blur_faces"]["available"]  # opencv-python-headless is in the test extra


def test_overlays_accept_png_and_refuse_the_rest(client, red_mark):
    r = client.post("/v1/overlays", content=red_mark.read_bytes(), headers={"Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    overlay = r.json()
    assert overlay["id"].startswith("ov_") and (overlay["width"], overlay["height"]) == (64, 64)
    assert client.get(f"/v1/overlays/{overlay['id']}").json() == overlay
    assert client.post("/v1/overlays", content=b"GIF89a not a png").status_code == 415
    assert client.post("/v1/overlays", content=b"\x89PNG\r\n\x1a\n garbage").status_code == 415
    assert client.delete(f"/v1/overlays/{overlay['id']}").status_code == 204
    assert client.get(f"/v1/overlays/{overlay['id']}").status_code == 404
    assert client.get("/v1/overlays/../../etc").status_code == 404
    # Past the API's 1 MiB body limit but within the overlay limit: read and judged (not a PNG)…
    png_ish = b"\x89PNG\r\n\x1a\n" + bytes(2 * 1024 * 1024)
    assert client.post("/v1/overlays", content=png_ish).status_code == 415
    # …and past the overlay limit: refused.
    assert client.post("/v1/overlays", content=png_ish * 5).status_code == 413


@pytest.mark.parametrize(("plugins", "message"), [
    pytest.param([{"name": "nope"}], "no frame plugin 'nope' is installed", id="unknown"),
    pytest.param([{"name": "watermark", "options": {}}], "frame_plugins.0.options.image: Field required",
                 id="missing-option"),
    pytest.param([{"name": "watermark", "options": {"image": "ov_x", "opacity": 2}}],
                 "frame_plugins.0.options.opacity", id="out-of-range"),
    pytest.param([{"name": "timecode", "options": {"font": "comic"}}], "frame_plugins.0.options.font", id="extra"),
    pytest.param([{"name": "watermark", "options": {"image": "ov_aaaaaaaaaaaaaaaaaaaa"}}],
                 "no overlay ov_aaaaaaaaaaaaaaaaaaaa", id="missing-overlay"),
    pytest.param([{"name": "watermark", "options": {"image": "file:///etc/passwd"}}],
                 "overlay id (POST /v1/overlays) or an http(s) URL", id="file-url"),
])  # fmt: skip
def test_bad_frame_plugin_settings_are_422(client, clip, plugins, message):
    source = clip("api", duration=1.0)
    with open(source, "rb") as fh:
        r = client.post("/v1/assets", files={"file": ("a.mp4", fh, "video/mp4")},
                        data={"settings": json.dumps({"frame_plugins": plugins})})
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]["message"]


def _first_frame(storage, asset_id: str, track) -> np.ndarray:
    data = storage.get_bytes(f"media/{asset_id}/{track.init_uri}") + \
        storage.get_bytes(f"media/{asset_id}/{track.segment_uri(track.segments[0].number)}")
    with av.open(io.BytesIO(data)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_watermarked_asset_through_a_worker(pipeline, clip, red_mark):  # noqa: F811
    overlay = pipeline.client.post("/v1/overlays", content=red_mark.read_bytes()).json()
    src = clip("wm-e2e", duration=2, width=480, height=360)
    created = pipeline.upload(src, {"segment_duration": 1, "frame_plugins": [
        {"name": "watermark", "options": {"image": overlay["id"], "position": "bottom-left", "width": 0.2}}]})
    asset = pipeline.wait(created["id"])
    assert asset["status"] == "ready", asset["error"]
    p = pipeline.presentation(asset["id"])
    for track in p.video_tracks:
        frame = _first_frame(pipeline.storage, asset["id"], track)
        h, w = frame.shape[:2]
        size, margin = w * 0.2, w * 0.03
        cy, cx = int(h - margin - size / 2), int(margin + size / 2)
        r, g, b = frame[cy - 2:cy + 2, cx - 2:cx + 2].reshape(-1, 3).mean(axis=0)
        assert r > 200 and g < 60 and b < 60, (track.id, r, g, b)


def test_a_raising_plugin_marks_the_asset_errored_with_its_message(client, clip, tmp_path, test_plugins):
    created = upload_asset(client, clip("boom-api", duration=1.0),
                           {"frame_plugins": [{"name": "explodes"}]})
    ctx = client.app.state.ctx
    config = PipelineConfig(ffmpeg=find_ffmpeg(), work_dir=Path(tmp_path / "work"))
    AssetTranscode(ctx.engine, ctx.storage, config, created["id"]).run()
    asset = client.get(f"/v1/assets/{created['id']}").json()
    assert asset["status"] == "errored"
    assert asset["error"]["message"] == "frame plugin explodes failed: the model ran out of coffee"
    assert asset["error"]["code"] == "plugin_failed"


def test_live_stream_frame_plugins_are_checked_and_kept(client):
    bad = client.post("/v1/live-streams", json={"frame_plugins": [{"name": "timecode", "options": {"size": 9}}]})
    assert bad.status_code == 422 and "frame_plugins.0.options.size" in bad.text
    good = client.post("/v1/live-streams", json={"frame_plugins": [{"name": "timecode"}]})
    assert good.status_code == 201, good.text
    assert good.json()["settings"]["frame_plugins"] == [{"name": "timecode", "options": {
        "source": "source", "position": "top-left", "size": 0.05, "bit_pattern": False}}]


def test_watermark_urls_go_through_the_checked_importer(tmp_path):
    from core.errors import AbrError
    from core.services.overlays import resolver

    resolve = resolver(None, tmp_path, allow_private=False)
    with pytest.raises(AbrError) as refused:
        resolve("http://127.0.0.1:9/mark.png")  # loopback: refused before any connection
    assert refused.value.status < 500
    with pytest.raises(AbrError, match="neither an overlay id nor"):
        resolve("/etc/passwd")
