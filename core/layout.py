"""Where things live in storage. Every key is built here, nowhere else.

- `sources/{asset_id}/original` — the upload as received; never modified by the
  pipeline, removed only when the asset is deleted.
- `media/{asset_id}/` — what the origin serves: `{rendition}/init.mp4`,
  `{rendition}/00001.m4s` (or `.webm`), and `presentation.json`, the model the
  manifests are rendered from (not itself served).
- `sources/{asset_id}/analysis.json` — the per-title analysis' measurements.
- `staging/{asset_id}/{job_id}/` — scratch for codec families encoded after the
  first; published into `media/` atomically when the family is complete.
"""

from __future__ import annotations

import re

PRESENTATION = "presentation.json"

# What the origin may serve from a media prefix: a rendition's init or media segment, or a
# low-latency live stream's partial segment (`00042.3.m4s`: part 3 of segment 42).
SEGMENT_PATH = re.compile(
    r"^(?P<rendition>[a-z0-9][a-z0-9-]{0,39})/(?P<file>init\.(?:mp4|webm)|\d{5}(?:\.\d{1,3})?\.m4s|\d{5}\.webm)$")


def source_key(asset_id: str) -> str:
    return f"sources/{asset_id}/original"


def added_audio_source_key(asset_id: str, rendition_id: str) -> str:
    """The file an audio track added after the fact (a dub) was encoded from."""
    return f"sources/{asset_id}/{rendition_id}"


def analysis_key(asset_id: str) -> str:
    """The per-title analysis' measurements (core/services/quality.py): a retry plans the same ladder from them."""
    return f"sources/{asset_id}/analysis.json"


def content_key_key(asset_id: str) -> str:
    """The asset's content key, wrapped under the key master (never served: outside `media/`)."""
    return f"keys/{asset_id}/content-key.json"


def keys_prefix(asset_id: str) -> str:
    return f"keys/{asset_id}"


def source_prefix(asset_id: str) -> str:
    return f"sources/{asset_id}"


def media_prefix(asset_id: str) -> str:
    return f"media/{asset_id}"


def media_key(asset_id: str, relative: str) -> str:
    return f"media/{asset_id}/{relative}"


def presentation_key(asset_id: str) -> str:
    return f"media/{asset_id}/{PRESENTATION}"


def staging_prefix(asset_id: str, job_id: str) -> str:
    return f"staging/{asset_id}/{job_id}"


def overlay_key(overlay_id: str) -> str:
    """A watermark picture uploaded to /v1/overlays (frame plugins read it by id)."""
    return f"overlays/{overlay_id}.png"


def asset_prefixes(asset_id: str) -> list[str]:
    """Everything an asset owns (what DELETE removes)."""
    return [media_prefix(asset_id), source_prefix(asset_id), f"staging/{asset_id}", f"keys/{asset_id}"]
