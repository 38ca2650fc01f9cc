"""Example requests and answers shown by `/docs` and `/redoc` (applied by api/openapi.py).

Values are shaped like real ones (ids, URLs, times) and a test validates
every example against the schema it illustrates, so the docs cannot drift
from what the API answers.
"""

from __future__ import annotations

BASE = "https://video.example"
ASSET_ID = "as_4k2m9x7q1w8e5r3t6y0u"
PLAYBACK_ID = "q7w2e9r4t1y8u3i6o5p0a2s7"
UPLOAD_ID = "up_8d3f6h1j4k7l0z2x5c9v"
WEBHOOK_ID = "wh_2n5b8m1q4w7e0r3t6y9u"
DELIVERY_ID = "whd_6t9y2u5i8o1p4a7s0d3f"
EVENT_ID = "ev_3g6h9j2k5l8z1x4c7v0b"
LIVE_ID = "ls_5r8t1y4u7i0o3p6a9s2d"
TRACK_ID = "tt_1q4w7e0r3t6y9u2i5o8p"
OVERLAY_ID = "ov_7h2k5m8q1t4w7z0c3f6j"
CREATED = "2026-12-03T08:20:00Z"
UPDATED = "2026-12-03T08:21:12Z"
PLAY = f"{BASE}/play/{PLAYBACK_ID}"

ASSET = {
    "id": ASSET_ID, "name": "intro.mp4",
    "meta": {"title": "Welcome to the course", "creator_id": "user_42", "external_id": "lesson-1"},
    "status": "ready", "playable": True, "progress": 100.0, "progress_detail": None, "duration": 62.5,
    "source": {"container": "mov,mp4,m4a,3gp,3g2,mj2", "duration": 62.5,
               "video": {"codec": "h264", "width": 1920, "height": 1080, "frame_rate": "30/1"},
               "audio": {"codec": "aac", "channels": 2, "sample_rate": 48000}},
    "settings": {"codecs": ["h264"], "segment_duration": 4.0, "ladder": None, "playback_policy": "public",
                 "mp4_support": False},
    "renditions": [
        {"id": "h264-1080p", "codec": "h264", "width": 1920, "height": 1080, "bitrate": 5000000,
         "frame_rate": 30.0, "status": "ready"},
        {"id": "h264-720p", "codec": "h264", "width": 1280, "height": 720, "bitrate": 2800000,
         "frame_rate": 30.0, "status": "ready"},
        {"id": "audio-aac", "codec": "aac", "width": 0, "height": 0, "bitrate": 128000, "frame_rate": None,
         "status": "ready"}],
    "playback_ids": [{"id": PLAYBACK_ID, "policy": "public"}],
    "playback": {"hls": f"{PLAY}/master.m3u8", "dash": f"{PLAY}/manifest.mpd",
                 "player": f"{BASE}/player/{PLAYBACK_ID}"},
    "error": None, "passthrough": "order-1234", "created_at": CREATED, "updated_at": UPDATED,
}
UPLOAD = {"id": UPLOAD_ID, "url": f"{BASE}/tus/{UPLOAD_ID}", "status": "waiting", "asset_id": None, "error": None,
          "offset": 0, "length": None, "cors_origin": "https://app.example", "expires_at": "2026-12-04T08:20:00Z",
          "created_at": CREATED}
WEBHOOK = {"id": WEBHOOK_ID, "url": "https://hooks.example/abr", "events": ["asset.ready", "asset.errored"],
           "created_at": CREATED}
DELIVERY = {"id": DELIVERY_ID, "event_id": EVENT_ID, "event_type": "asset.ready", "status": "delivered",
            "attempts": 1, "last_status_code": 200, "last_error": None, "next_retry_at": None,
            "delivered_at": UPDATED, "created_at": CREATED}
LIVE_STREAM = {
    "id": LIVE_ID, "stream_key": "sk_Zx81qPmW3kq9yTf0bV2nLs7cR4hJd6eA", "status": "idle", "source_url": None,
    "ingest": {"rtmp": "rtmp://video.example:1935/live/sk_Zx81qPmW3kq9yTf0bV2nLs7cR4hJd6eA",
               "srt": "srt://video.example:8890?streamid=#!::r=sk_Zx81qPmW3kq9yTf0bV2nLs7cR4hJd6eA,m=publish",
               "rtmp_status": {"available": True, "reason": None},
               "srt_status": {"available": True, "reason": None}},
    "settings": {"codecs": ["h264"], "ladder": None, "segment_duration": 2.0, "dvr_window": 120.0,
                 "record": True, "srt_passphrase": None},
    "plan": None, "playback_ids": [{"id": PLAYBACK_ID, "policy": "public"}],
    "playback": {"hls": f"{PLAY}/master.m3u8", "dash": f"{PLAY}/manifest.mpd",
                 "player": f"{BASE}/player/{PLAYBACK_ID}"},
    "recording_asset_id": None, "reconnects": 0, "error": None, "passthrough": None, "connected_at": None,
    "ended_at": None, "created_at": CREATED, "updated_at": CREATED,
}
TEXT_TRACK = {"id": TRACK_ID, "asset_id": ASSET_ID, "type": "text", "text_type": "subtitles", "language": "en",
              "name": "English", "default": True, "source_format": "srt", "cues": 212,
              "url": f"{PLAY}/text/{TRACK_ID}.vtt", "created_at": CREATED}

# Path and query parameters, by name (Swagger UI pre-fills them for "Try it out").
PARAMETERS: dict[str, object] = {
    "asset_id": ASSET_ID, "playback_id": PLAYBACK_ID, "upload_id": UPLOAD_ID, "webhook_id": WEBHOOK_ID,
    "stream_id": LIVE_ID, "track_id": TRACK_ID, "limit": 25, "offset": 0, "q": "intro", "fmt": "jpg",
    "path": "h264-720p/00001.m4s", "overlay_id": OVERLAY_ID,
}

# (method, path) -> {media type: example body}
REQUESTS: dict[tuple[str, str], dict[str, object]] = {
    ("post", "/v1/assets"): {
        "multipart/form-data": {"file": "(the media file: curl -F file=@intro.mp4)",
                                "settings": '{"codecs": ["h264"], "name": "Intro", "passthrough": "order-1234"}'},
        "application/json": {"input_url": "https://media.example/talks/intro.mp4", "codecs": ["h264"],
                             "meta": {"title": "Welcome to the course", "external_id": "lesson-1"}},
    },
    ("patch", "/v1/assets/{asset_id}"): {
        "application/json": {"name": "Intro (final cut)", "meta": {"title": "Welcome to the course"}}},
    ("post", "/v1/assets/{asset_id}/text-tracks"): {
        "multipart/form-data": {"file": "(WebVTT or SRT: curl -F file=@en.srt)", "language": "en",
                                "name": "English", "default": True}},
    ("post", "/v1/assets/{asset_id}/audio-tracks"): {
        "multipart/form-data": {"file": "(media with an audio stream: curl -F file=@dub-de.m4a)", "language": "de",
                                "name": "Deutsch", "role": "dub"}},
    ("post", "/play/{playback_id}/keys/clearkey"): {
        "application/json": {"kids": ["ASNFZ4mrze8BI0VniavN7w"], "type": "temporary"}},
    ("post", "/v1/uploads"): {
        "application/json": {"cors_origin": "https://app.example", "settings": {"codecs": ["h264"]}}},
    ("post", "/v1/webhooks"): {
        "application/json": {"url": "https://hooks.example/abr", "events": ["asset.ready", "asset.errored"]}},
    ("post", "/v1/live-streams"): {"application/json": {"record": True, "dvr_window": 120}},
    ("post", "/v1/playback-tokens"): {"application/json": {"playback_id": PLAYBACK_ID, "expires_in": 3600}},
    ("post", "/v1/overlays"): {"image/png": "(the PNG: curl --data-binary @logo.png -H 'Content-Type: image/png')"},
}

_MASTER = (f"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
           f'#EXT-X-STREAM-INF:BANDWIDTH=3100000,AVERAGE-BANDWIDTH=2800000,CODECS="avc1.64001f,mp4a.40.2",'
           f'RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"\nh264-720p/index.m3u8\n')
_MPD = ('<?xml version="1.0" encoding="utf-8"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'profiles="urn:mpeg:dash:profile:isoff-live:2011" mediaPresentationDuration="PT1M2.5S">…</MPD>\n')
_VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:04.000\nstoryboard.jpg#xywh=0,0,160,90\n"
_BINARY = "(binary)"

# (method, path) -> (status, {media type: example}); JSON bodies and text as they are sent.
OVERLAY = {"id": OVERLAY_ID, "width": 400, "height": 120, "size": 18342}
RESPONSES: dict[tuple[str, str], tuple[str, dict[str, object]]] = {
    ("get", "/v1/frame-plugins"): ("200", {"application/json": {"count": 1, "data": [{
        "name": "timecode", "available": True, "description": "Burn the source timestamp or the wall clock (UTC) "
        "into each frame, optionally as a bit pattern.", "pix_fmts": ["yuv420p", "rgb24"], "batch_size": 8,
        "options_schema": {"type": "object", "properties": {
            "source": {"enum": ["source", "wall_clock"], "default": "source"},
            "bit_pattern": {"type": "boolean", "default": False}}}}]}}),
    ("post", "/v1/overlays"): ("201", {"application/json": OVERLAY}),
    ("get", "/v1/overlays/{overlay_id}"): ("200", {"application/json": OVERLAY}),
    ("get", "/healthz"): ("200", {"application/json": {"status": "ok"}}),
    ("get", "/readyz"): ("200", {"application/json": {"status": "ok", "checks": {
        "database": {"ok": True, "ms": 1.2}, "broker": {"ok": True, "ms": 2.9}, "storage": {"ok": True, "ms": 0.4},
        "ffmpeg": {"ok": True, "ms": 0.1, "detail": "/usr/bin/ffmpeg"}}}}),
    ("post", "/v1/assets"): ("201", {"application/json": {**ASSET, "status": "queued", "playable": False,
                                                          "progress": 0.0, "renditions": []}}),
    ("get", "/v1/assets"): ("200", {"application/json": {"data": [ASSET], "count": 1}}),
    ("get", "/v1/assets/{asset_id}"): ("200", {"application/json": ASSET}),
    ("patch", "/v1/assets/{asset_id}"): ("200", {"application/json": {**ASSET, "name": "Intro (final cut)"}}),
    ("get", "/v1/assets/{asset_id}/events"): ("200", {"text/event-stream": (  # api/asset_events.py
        f'retry: 2000\n\n'
        f'id: 3f9c0e6b1a2d4c5e7f80\nevent: asset\ndata: {{"id": "{ASSET_ID}", "status": "processing", '
        f'"progress": 41.5, …}}\n\n'
        f'id: 9a8b7c6d5e4f3a2b1c0d\nevent: asset\ndata: {{"id": "{ASSET_ID}", "status": "ready", '
        f'"progress": 100.0, …}}\n\n'
        f'id: 9a8b7c6d5e4f3a2b1c0d\nevent: end\ndata: {{"id": "{ASSET_ID}", "status": "ready"}}\n\n')}),
    ("post", "/v1/assets/{asset_id}/text-tracks"): ("201", {"application/json": TEXT_TRACK}),
    ("post", "/v1/assets/{asset_id}/audio-tracks"): ("202", {"application/json": {
        "id": "audio-2", "asset_id": ASSET_ID, "language": "de", "name": "Deutsch", "role": "dub",
        "status": "pending"}}),
    ("post", "/play/{playback_id}/keys/clearkey"): ("200", {"application/json": {
        "keys": [{"kty": "oct", "kid": "ASNFZ4mrze8BI0VniavN7w", "k": "(the content key, base64url)"}],
        "type": "temporary"}}),
    ("get", "/v1/assets/{asset_id}/text-tracks"): ("200", {"application/json": {"data": [TEXT_TRACK], "count": 1}}),
    ("get", "/v1/assets/{asset_id}/text-tracks/{track_id}"): ("200", {"application/json": TEXT_TRACK}),
    ("post", "/v1/uploads"): ("201", {"application/json": UPLOAD}),
    ("get", "/v1/uploads"): ("200", {"application/json": {"data": [UPLOAD], "count": 1}}),
    ("get", "/v1/uploads/{upload_id}"): ("200", {"application/json": {
        **UPLOAD, "status": "complete", "asset_id": ASSET_ID, "offset": 73400320, "length": 73400320}}),
    ("post", "/v1/webhooks"): ("201", {"application/json": {**WEBHOOK, "secret": "whsec_5Hq0Vd7XbN2mK9tR4sW1yZ8cL3fJ6gP"}}),
    ("get", "/v1/webhooks"): ("200", {"application/json": {"data": [WEBHOOK], "count": 1}}),
    ("get", "/v1/webhooks/{webhook_id}"): ("200", {"application/json": WEBHOOK}),
    ("get", "/v1/webhooks/{webhook_id}/deliveries"): ("200", {"application/json": {"data": [DELIVERY], "count": 1}}),
    ("post", "/v1/live-streams"): ("201", {"application/json": LIVE_STREAM}),
    ("get", "/v1/live-streams"): ("200", {"application/json": {"data": [LIVE_STREAM], "count": 1}}),
    ("get", "/v1/live-streams/{stream_id}"): ("200", {"application/json": LIVE_STREAM}),
    ("post", "/v1/live-streams/{stream_id}/stop"): ("200", {"application/json": {**LIVE_STREAM, "status": "ended",
                                                                                  "ended_at": UPDATED}}),
    ("post", "/v1/playback-tokens"): ("201", {"application/json": {
        "token": "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJxN3cyZTlyNHQxeTh1M2k2bzVwMGEyczciLCJleHAiOjE3OTY0NjE2MDB9.5kz0V6c2Qj8xW1yT3uR7iE9oP4aS6dF2gH0jK8lZ1xC",
        "expires_at": "2026-12-03T09:20:00Z"}}),
    ("get", "/play/time"): ("200", {"text/plain": "2026-12-03T08:20:00.123Z"}),
    ("get", "/play/{playback_id}/master.m3u8"): ("200", {"application/vnd.apple.mpegurl": _MASTER}),
    ("get", "/play/{playback_id}/manifest.mpd"): ("200", {"application/dash+xml": _MPD}),
    ("get", "/play/{playback_id}/{path}"): ("200", {  # segments, init segments, media playlists
        "video/mp4": _BINARY, "audio/mp4": _BINARY, "video/webm": _BINARY,
        "application/vnd.apple.mpegurl": "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n"
                                         '#EXT-X-MAP:URI="init.mp4"\n#EXTINF:4.000,\n00001.m4s\n'}),
    ("get", "/play/{playback_id}/keys/identity"): ("200", {"application/octet-stream": _BINARY}),
    ("get", "/play/{playback_id}/thumbnail.jpg"): ("200", {"image/jpeg": _BINARY}),
    ("get", "/play/{playback_id}/thumbnail.{fmt}"): ("200", {"image/jpeg": _BINARY, "image/webp": _BINARY}),
    ("get", "/play/{playback_id}/animated.webp"): ("200", {"image/webp": _BINARY}),
    ("get", "/play/{playback_id}/storyboard.jpg"): ("200", {"image/jpeg": _BINARY}),
    ("get", "/play/{playback_id}/storyboard.vtt"): ("200", {"text/vtt": _VTT}),
    ("get", "/play/{playback_id}/preview.mjpeg"): ("200", {"multipart/x-mixed-replace": _BINARY}),
    ("get", "/play/{playback_id}/download.mp4"): ("200", {"video/mp4": _BINARY}),
    ("get", "/play/{playback_id}/text/{track_id}.vtt"): ("200", {"text/vtt": (
        "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nWelcome to the course.\n")}),
    ("get", "/play/{playback_id}/text/{track_id}/index.m3u8"): ("200", {"application/vnd.apple.mpegurl": (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:63\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:62.500,\n../{TRACK_ID}.vtt\n"
        "#EXT-X-ENDLIST\n")}),
    ("get", "/player/{playback_id}"): ("200", {"text/html": "<!doctype html><html>… the player …</html>"}),
}

# The error body every 4xx/5xx carries: (code, a message the API really sends), per status.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "settings is not valid JSON: Expecting value"),
    401: ("unauthorized", "missing API key: send 'Authorization: Bearer <key>'"),
    403: ("forbidden", "this API key lacks the 'write' scope"),
    404: ("not_found", f"no asset {ASSET_ID}"),
    409: ("conflict", "the upload's offset changed while this request was writing"),
    412: ("unsupported_version", "Tus-Resumable must be 1.0.0"),
    413: ("too_large", "upload is larger than the limit of 21474836480 bytes"),
    415: ("invalid_media", "the file is not a video or audio file we can read, or it is truncated or damaged"),
    416: ("range_not_satisfiable", "the range starts past the end (731494 bytes)"),
    422: ("unprocessable", "limit: Input should be less than or equal to 100"),
    429: ("rate_limited", "too many requests for this API key; retry in 1 s"),
    503: ("unavailable", "the database is unavailable; retry shortly"),
}

# Routes without a key (the origin, the player, tus) name no asset or storage key in their errors.
PUBLIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "max_height must be a whole number ≥ 0, got '720p'"),
    403: ("forbidden", "this playback id is signed: add ?token=<playback token>"),
    404: ("not_found", f"no playback id {PLAYBACK_ID}"),
}

# Messages of one operation where the generic one would mislead.
ERROR_OVERRIDES: dict[tuple[str, str], dict[int, tuple[str, str]]] = {
    ("post", "/v1/assets"): {
        400: ("bad_request", "the media goes in the form field 'file', not 'video' (curl: -F file=@clip.mp4)"),
        422: ("unprocessable", "the source lasts 50000 s; the limit is 43200 s"),
    },
    ("get", "/v1/uploads/{upload_id}"): {404: ("not_found", f"no upload {UPLOAD_ID}")},
    ("patch", "/tus/{upload_id}"): {404: ("not_found", "no upload has been created at this URL yet; POST to create it")},
    ("head", "/tus/{upload_id}"): {404: ("not_found", "no upload has been created at this URL yet; POST to create it")},
    ("get", "/v1/webhooks/{webhook_id}"): {404: ("not_found", f"no webhook {WEBHOOK_ID}")},
    ("get", "/v1/live-streams/{stream_id}"): {404: ("not_found", f"no live stream {LIVE_ID}")},
    ("post", "/v1/live-streams"): {403: ("address_not_allowed", (
        "source_url's address is not allowed (loopback, private, link-local, reserved or cloud metadata); "
        "an operator can allow camera networks with ABR_LIVE_PULL_ALLOW_NETWORKS"))},
    ("post", "/v1/playback-tokens"): {404: ("not_found", f"no playback id {PLAYBACK_ID}")},
    ("get", "/play/{playback_id}/thumbnail.{fmt}"): {
        404: ("no_video", "this asset has no video (audio only), so it has no thumbnails, storyboards "
                          "or animated images")},
    ("post", "/v1/assets/{asset_id}/text-tracks"): {
        409: ("conflict", "an asset holds at most 50 text tracks; delete one first")},
}
