"""Manifest writers: HLS playlists and the DASH MPD, rendered per request from a `Presentation`.

The origin parses the request into a `ManifestFilter` and a query (the
playback token), filters the presentation and renders; nothing here touches
storage, the database or the web framework.
"""

from core.media.manifests.dash import render_mpd
from core.media.manifests.hls import (
    MEDIA_PLAYLIST_NAME,
    build_media_playlist,
    build_multivariant_playlist,
    media_playlist_uri,
    render_media_playlist,
    render_multivariant_playlist,
)
from core.media.manifests.select import ManifestFilter, append_query

HLS_CONTENT_TYPE = "application/vnd.apple.mpegurl"
DASH_CONTENT_TYPE = "application/dash+xml"

__all__ = [
    "DASH_CONTENT_TYPE",
    "HLS_CONTENT_TYPE",
    "MEDIA_PLAYLIST_NAME",
    "ManifestFilter",
    "append_query",
    "build_media_playlist",
    "build_multivariant_playlist",
    "media_playlist_uri",
    "render_media_playlist",
    "render_mpd",
    "render_multivariant_playlist",
]
