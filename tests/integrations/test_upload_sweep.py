"""Expired direct uploads: rows expired and partial files removed by the sweep, without anyone asking."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlsplit

from sqlmodel import Session

from core.db.models import utcnow
from core.db.models_integrations import Upload
from core.services.uploads import data_path, sweep
from tests.helpers import app_client

TUS = {"Tus-Resumable": "1.0.0"}


def test_sweep_expires_rows_and_removes_only_dead_files(engine, tmp_path):
    now = utcnow()
    rows = {
        "fresh": Upload(status="uploading", expires_at=now + timedelta(hours=1)),
        "abandoned": Upload(status="uploading", expires_at=now - timedelta(seconds=1)),
        "never_started": Upload(status="waiting", expires_at=now - timedelta(seconds=1)),
        "finished": Upload(status="complete", expires_at=now - timedelta(days=1)),
    }
    with Session(engine, expire_on_commit=False) as s:
        s.add_all(rows.values())
        s.commit()
    ids = {name: row.id for name, row in rows.items()}
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for name in ("fresh", "abandoned", "finished"):
        data_path(uploads, ids[name]).write_bytes(b"partial")
    (uploads / "not-an-upload").write_bytes(b"someone else's")

    expired, removed = sweep(engine, uploads)
    assert expired == 2
    assert sorted(removed) == sorted([ids["abandoned"], ids["finished"]])
    assert sorted(p.name for p in uploads.iterdir()) == sorted([ids["fresh"], "not-an-upload"])
    with Session(engine) as s:
        assert {name: s.get(Upload, i).status for name, i in ids.items()} == {
            "fresh": "uploading", "abandoned": "expired", "never_started": "expired", "finished": "complete"}
    assert sweep(engine, uploads) == (0, [])
    assert sweep(engine, tmp_path / "nowhere") == (0, [])


def test_the_api_sweeps_at_start(tmp_path):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env) as client:
        up = client.post("/v1/uploads", json={}).json()
        r = client.post(urlsplit(up["url"]).path, headers={**TUS, "Upload-Length": "1000"})
        assert r.status_code == 201, r.text
        engine = client.app.state.ctx.engine
        with Session(engine) as s:  # the client went away for longer than the URL lives
            row = s.get(Upload, up["id"])
            row.expires_at = utcnow() - timedelta(seconds=1)
            s.add(row)
            s.commit()
    partial = tmp_path / "data" / "uploads" / up["id"]
    assert partial.is_file()
    with app_client(env) as client:  # the next API start sweeps
        deadline = time.monotonic() + 10
        while partial.exists():
            assert time.monotonic() < deadline, "the partial upload was never removed"
            time.sleep(0.05)
        with Session(client.app.state.ctx.engine) as s:
            assert s.get(Upload, up["id"]).status == "expired"
