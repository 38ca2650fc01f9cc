"""Import a source from a URL: recorded by the API, fetched by the worker.

Fetching is the worker's job (it can take minutes); the API only checks the
URL's shape and records the asset. Server-side request forgery: every hop
goes through the checked, pinned client of `core.net` (public addresses only
unless `allow_private` is set), redirects are followed by hand so each target
is checked, and size and time are bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
from sqlmodel import Session

from core import events
from core.db.models import Asset, Job, PlaybackId
from core.errors import BadRequest, TooLarge, Unprocessable
from core.net import PinnedRequest, check_url_shape, pin, safe_client
from core.services.assets import DESCRIPTIVE, AssetSettings, describe, name_from_url

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class ImportRequest:
    url: str
    settings: AssetSettings


def create_import(session: Session, request: ImportRequest) -> Asset:
    check_url_shape(request.url)
    settings = request.settings.model_dump(exclude=DESCRIPTIVE)
    settings["input_url"] = request.url
    asset = Asset(status="queued", settings=settings)
    describe(asset, name=request.settings.name or name_from_url(request.url),
             passthrough=request.settings.passthrough, meta=request.settings.meta)
    session.add(asset)
    session.add(PlaybackId(asset_id=asset.id, policy=request.settings.playback_policy))
    session.add(Job(asset_id=asset.id, kind="transcode"))
    session.commit()
    session.refresh(asset)
    events.emit(session.get_bind(), events.ASSET_CREATED, asset_id=asset.id)
    return asset


def fetch(url: str, dest: Path, *, max_bytes: int, timeout: float, allow_private: bool = False) -> int:
    """Download `url` to `dest`; returns the size. Raises a domain error saying why it failed.

    Streamed (flat memory), bounded in size (declared and actual) and in total
    time, at most MAX_REDIRECTS redirects, every hop resolved once, checked and
    connected to by address.
    """
    deadline = time.monotonic() + timeout
    with safe_client(httpx.Timeout(min(30.0, timeout), connect=min(10.0, timeout))) as client:
        for _ in range(MAX_REDIRECTS + 1):
            pinned = pin(url, allow_private=allow_private)
            try:
                size = _download(client, pinned, url, dest, max_bytes=max_bytes, deadline=deadline, timeout=timeout)
            except httpx.TimeoutException as exc:
                raise Unprocessable(f"input_url took longer than {timeout:.0f} s to download") from exc
            except httpx.HTTPError as exc:
                raise Unprocessable(f"input_url could not be fetched: {exc}") from exc
            if isinstance(size, str):
                url = size  # a redirect: check the next hop like the first
                continue
            return size
    raise BadRequest(f"input_url redirected more than {MAX_REDIRECTS} times")


def _download(client: httpx.Client, pinned: PinnedRequest, url: str, dest: Path, *, max_bytes: int,
              deadline: float, timeout: float) -> int | str:
    """The size written, or the absolute URL of a redirect."""
    with client.stream("GET", pinned.url, headers=pinned.headers, extensions=pinned.extensions) as response:
        if response.is_redirect:
            return urljoin(url, response.headers.get("location", ""))
        if response.status_code != 200:
            raise Unprocessable(f"input_url answered HTTP {response.status_code}")
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"input_url is larger than the limit of {max_bytes} bytes")
        size = 0
        with open(dest, "wb") as out:
            # Each read, however small, is checked against the deadline: a server trickling a byte
            # now and then must not hold a worker (a sized iter_bytes waits for a full chunk).
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"input_url is larger than the limit of {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise Unprocessable(f"input_url took longer than {timeout:.0f} s to download")
                out.write(chunk)
        return size
