"""Request classification: which kind of object a `/play/{playback_id}/…` path names.

The origin serves exactly four kinds of path below a playback id, and
nothing else: the HLS multivariant playlist (`master.m3u8`), the DASH MPD
(`manifest.mpd`), a rendition's HLS media playlist (`{rendition}/index.m3u8`)
and a rendition's init or media segment (`layout.SEGMENT_PATH`). Everything
is matched against fixed patterns *after* the server percent-decoded the
path, so `%2e%2e`, `%2f` and double encodings can only ever fail to match;
text that no honest client sends (control characters, backslashes, dot
segments, overlong names) is refused outright with 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from core.errors import BadRequest, NotFound
from core.layout import SEGMENT_PATH
from core.media.manifests import MEDIA_PLAYLIST_NAME
from core.media.model import is_audio_rendition_id

MAX_PATH_CHARS = 200  # rendition (40) + "/" + file name: far below this
PLAYBACK_ID = re.compile(r"^[a-z0-9]{1,40}$")
MASTER_PLAYLIST = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"
_MEDIA_PLAYLIST = re.compile(r"^(?P<rendition>[a-z0-9][a-z0-9-]{0,39})/" + re.escape(MEDIA_PLAYLIST_NAME) + "$")
_HOSTILE = re.compile(r"[\x00-\x1f\x7f\\%]")


class Kind(str, Enum):
    MASTER = "master"  # HLS multivariant playlist
    MEDIA_PLAYLIST = "media_playlist"  # HLS media playlist of one rendition
    MPD = "mpd"
    SEGMENT = "segment"  # init or media segment

    @property
    def is_manifest(self) -> bool:
        return self is not Kind.SEGMENT


@dataclass(frozen=True)
class Target:
    """What a path below the playback id names."""

    kind: Kind
    rendition: str | None = None
    file: str | None = None  # segments only: `init.mp4`, `00001.m4s`, …

    @property
    def relative(self) -> str | None:
        """The segment's path relative to the asset's media prefix."""
        return f"{self.rendition}/{self.file}" if self.file else None


def check_playback_id(playback_id: str) -> str:
    if not PLAYBACK_ID.match(playback_id):
        raise NotFound("no such playback id")
    return playback_id


def classify(path: str) -> Target:
    """Classify the (already percent-decoded) path below `/play/{playback_id}/`.

    BadRequest for hostile text, NotFound for anything the origin does not serve.
    """
    if len(path) > MAX_PATH_CHARS:
        raise BadRequest("path is too long")
    if _HOSTILE.search(path):
        raise BadRequest("path holds a control character, a backslash or a percent sign")
    if path.startswith("/") or any(part in (".", "..") for part in path.split("/")):
        raise BadRequest("path must be relative, without '.' or '..' segments")
    if path == MASTER_PLAYLIST:
        return Target(Kind.MASTER)
    if path == DASH_MANIFEST:
        return Target(Kind.MPD)
    if m := _MEDIA_PLAYLIST.match(path):
        return Target(Kind.MEDIA_PLAYLIST, rendition=m["rendition"])
    if m := SEGMENT_PATH.match(path):
        return Target(Kind.SEGMENT, rendition=m["rendition"], file=m["file"])
    raise NotFound(f"nothing to serve at {path!r}")


def segment_content_type(target: Target) -> str:
    """`video/mp4`, `audio/mp4`, `video/webm` or `audio/webm` for a segment target."""
    assert target.file is not None
    kind = "audio" if is_audio_rendition_id(target.rendition or "") else "video"
    container = "webm" if target.file.endswith(".webm") else "mp4"
    return f"{kind}/{container}"
