"""`abr upload FILE…`: direct uploads over tus, resumable across runs.

Each file gets `POST /v1/uploads`, then a tus creation and PATCHes in chunks
with a progress bar on stderr. The upload URL is remembered in a small state
file keyed by the file's absolute path, size and mtime, so running the same
command again after an interruption continues from the server's offset.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

import httpx

from cli.assets_cmd import (
    EXIT_FAILED,
    EXIT_USAGE,
    ApiClient,
    CliError,
    client_command,
    client_options,
    watch_asset,
)

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 8 * 1024 * 1024


def state_path() -> Path:
    root = os.environ.get("ABR_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "abr")
    return Path(root) / "uploads.json"


def _state_key(path: Path, api_url: str) -> str:
    st = path.stat()
    return f"{api_url}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _load_state() -> dict:
    try:
        return json.loads(state_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_state(state: dict) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)


def _remember(key: str, value: dict | None) -> None:
    state = _load_state()
    if value is None:
        state.pop(key, None)
    else:
        state[key] = value
    _save_state(state)


class Progress:
    def __init__(self, name: str, total: int, enabled: bool) -> None:
        self.name, self.total, self.enabled = name, max(total, 1), enabled
        self.started, self.last = time.monotonic(), 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.2):
            return
        self.last = now
        frac = done / self.total
        rate = done / max(now - self.started, 1e-6) / 1e6
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.name[:30]:30} [{bar:30}] {frac * 100:5.1f}% {rate:7.1f} MB/s")
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _resume_point(api: ApiClient, saved: dict | None) -> tuple[dict, int] | None:
    """The remembered upload and its server offset, if it can still be continued."""
    if not saved:
        return None
    try:
        r = api.http.head(saved["tus_url"], headers=TUS)
    except httpx.HTTPError:
        return None
    if r.status_code != 200 or "upload-offset" not in r.headers:
        return None
    return saved, int(r.headers["upload-offset"])


def upload_file(api: ApiClient, path: Path, *, settings: dict, chunk_size: int = CHUNK,
                progress: bool = True) -> dict:
    """Upload one file; returns the upload resource (`GET /v1/uploads/{id}`) once complete."""
    size = path.stat().st_size
    key = _state_key(path, api.base)
    resumed = _resume_point(api, _load_state().get(key))
    if resumed:
        saved, offset = resumed
        print(f"{path.name}: resuming upload {saved['id']} at {offset} of {size} bytes", file=sys.stderr)
    else:
        created = api.request("POST", "/v1/uploads", json={"settings": settings}, expect=201)
        meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                        (("filename", path.name), ("filetype", "application/octet-stream")))
        r = api.http.post(created["url"], headers={**TUS, "Upload-Length": str(size), "Upload-Metadata": meta})
        if r.status_code != 201:
            raise CliError(f"tus creation failed: HTTP {r.status_code} {r.text[:200]}", EXIT_FAILED)
        saved = {"id": created["id"], "tus_url": r.headers.get("location") or created["url"]}
        offset = 0
        _remember(key, saved)
    bar = Progress(path.name, size, progress)
    with open(path, "rb") as fh:
        fh.seek(offset)
        while offset < size:
            chunk = fh.read(chunk_size)
            r = api.http.patch(saved["tus_url"], content=chunk, headers={
                **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
                timeout=httpx.Timeout(300.0, connect=10.0))
            if r.status_code != 204:
                raise CliError(f"upload failed at byte {offset}: HTTP {r.status_code} {r.text[:200]}", EXIT_FAILED)
            offset = int(r.headers["upload-offset"])
            bar.update(offset)
    bar.update(size, force=True)
    _remember(key, None)
    return api.request("GET", f"/v1/uploads/{saved['id']}")


@client_command
def cmd_upload(args) -> int:
    api = ApiClient.from_args(args)
    settings = {"codecs": [c.strip() for c in args.codecs.split(",") if c.strip()]} if args.codecs else {}
    worst = 0
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise CliError(f"{name}: no such file", EXIT_USAGE)
        upload = upload_file(api, path, settings=settings, chunk_size=args.chunk_size, progress=not args.quiet)
        if upload["status"] != "complete":
            err = (upload.get("error") or {}).get("message", upload["status"])
            print(f"{path.name}: upload {upload['id']} {upload['status']}: {err}", file=sys.stderr)
            worst = max(worst, EXIT_FAILED)
            continue
        print(upload["asset_id"], flush=True)
        if args.wait:
            result = watch_asset(api, upload["asset_id"], quiet=args.quiet)
            worst = max(worst, result)
            if result == 0:
                print(playback_lines(api.base, api.request("GET", f"/v1/assets/{upload['asset_id']}")),
                      file=sys.stderr, flush=True)
    return worst


def playback_lines(base: str, asset: dict) -> str:
    """Where a finished asset plays: the player page, HLS and DASH (stderr, so stdout stays the asset id)."""
    name = asset.get("name") or asset["id"]
    if not asset.get("playback_ids"):
        return f"{name}: ready (no playback id)"
    pid = asset["playback_ids"][0]
    root = f"{base}/play/{pid['id']}"
    playback = asset.get("playback") or {}
    lines = [f"{name} is ready:",
             f"  player  {playback.get('player') or base + '/player/' + pid['id']}",
             f"  HLS     {playback.get('hls') or root + '/master.m3u8'}",
             f"  DASH    {playback.get('dash') or root + '/manifest.mpd'}"]
    if pid.get("policy") == "signed":
        lines.append(f"  signed: add ?token=… from `abr token {pid['id']}`")
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser("upload", help="upload files as assets (tus, resumable)")
    p.add_argument("files", nargs="+", metavar="FILE")
    client_options(p)
    p.add_argument("--codecs", help="comma separated: h264,h265,vp8,av1")
    p.add_argument("--wait", action="store_true", help="wait until each asset is ready (exit 1 if one errored)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--chunk-size", type=int, default=CHUNK, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_upload)
