"""Per-title ladders end to end: API upload → worker (in process) → rungs chosen by measured VMAF."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from core.media.ffmpeg import find_ffmpeg
from core.services.transcode import AssetTranscode, PipelineConfig
from tests.helpers import app_client, upload_asset

# 640x360: the fixed table gives 360p + 240p, so each per-title ladder chooses among two sizes.
LAVFI = {
    # A still test card: after the first frame there is nothing left to code.
    "static": "smptebars=size=640x360:rate=30",
    # Moving patterns under temporal grain: every frame differs everywhere.
    "motion": "testsrc2=size=640x360:rate=30,noise=alls=12:allf=t",
}


@pytest.fixture
def client(tmp_path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}) as c:
        yield c


def _source(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.mp4"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", LAVFI[name], "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "8",
                    "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


def _transcode(client, tmp_path: Path, asset_id: str) -> dict:
    ctx = client.app.state.ctx
    AssetTranscode(ctx.engine, ctx.storage, PipelineConfig(ffmpeg=find_ffmpeg(), work_dir=tmp_path / "work"),
                   asset_id).run()
    return client.get(f"/v1/assets/{asset_id}").json()


@pytest.mark.timeout(600)  # 2 analyses + 2 encodes + a full VMAF pass: ~80 s on a quiet 2-core machine
def test_static_source_gets_a_smaller_ladder_than_high_motion(client, tmp_path):
    created = {name: upload_asset(client, _source(tmp_path, name),
                                  {"ladder": "auto", "segment_duration": 2, "quality_report": name == "static"})
               for name in LAVFI}
    # At upload only the fixed table is known; the worker replaces it after measuring.
    for asset in created.values():
        assert [(r["id"], r["bitrate"], r["quality"]) for r in asset["renditions"]] == [
            ("h264-360p", 800_000, None), ("h264-240p", 400_000, None)]
    done = {name: _transcode(client, tmp_path / name, asset["id"]) for name, asset in created.items()}
    totals = {}
    for name, asset in done.items():
        assert asset["status"] == "ready", asset["error"]
        video = [r for r in asset["renditions"] if r["codec"] == "h264"]
        assert video and {r["status"] for r in video} == {"ready"}
        for r in video:
            q = r["quality"]
            assert q["samples"] == 2 and 0 <= q["vmaf_p5"] <= q["vmaf_mean"] <= 100, (name, r)
        # What was published is what the API lists, at the planned bitrates.
        presentation = client.app.state.ctx.storage.get_bytes(f"media/{asset['id']}/presentation.json")
        for r in video:
            assert f'"id":"{r["id"]}"'.encode() in presentation
        totals[name] = sum(r["bitrate"] for r in video)
    # The still picture needs far fewer bits for its best quality than grain in motion.
    assert totals["static"] < totals["motion"] / 2, totals
    assert totals["static"] < 800_000 + 400_000  # and fewer than the fixed table would have spent

    full = [r["quality"]["full"] for r in done["static"]["renditions"] if r["codec"] == "h264"]
    assert all(f is not None and f["frames"] > 0 and 0 <= f["vmaf_p5"] <= f["vmaf_mean"] <= 100 for f in full), full
    assert all(r["quality"].get("full") is None for r in done["motion"]["renditions"] if r["codec"] == "h264")


@pytest.mark.parametrize("ladder, ok", [("auto", True), ("fixed", True), ("best", False), ([], False),
                                        ([{"height": 240, "bitrate": 500_000}], True)])
def test_ladder_setting_is_checked(client, tmp_path, ladder, ok):
    src = tmp_path / "tiny.mp4"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=10", "-t", "1", "-c:v", "libx264", "-preset", "ultrafast",
                    str(src)], check=True)
    with open(src, "rb") as fh:
        r = client.post("/v1/assets", files={"file": ("tiny.mp4", fh, "video/mp4")},
                        data={"settings": json.dumps({"ladder": ladder})})
    assert r.status_code == (201 if ok else 422), r.text
    if ok:
        assert r.json()["settings"]["ladder"] == ladder
