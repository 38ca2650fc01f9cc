"""Live streaming: push (RTMP via nginx) and pull sources → live ABR ladder → live HLS/DASH with DVR.

- `state` — the state machine every live stream follows.
- `ingest` — the nginx-rtmp configuration and the secret of its callbacks.
- `encode` — the live ffmpeg command (built on `core.media.encode`).
- `window` — the live presentation: sliding DVR window, periods, wall clock.
- `publisher` — segments as ffmpeg closes them → storage → `live.json`.
- `session` — the long-running loop: probe, encode, reconnect, end.
- `recording` — the finished stream as a VOD asset (no re-encode).
- `origin` — what `/play/{id}/…` serves for a live playback id.
"""
