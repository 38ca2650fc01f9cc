"""The static MP4 download: the top H.264 rung and the shared audio, remuxed (never re-encoded).

The CMAF segments already hold the encoded pictures and sound; an init
segment followed by its media segments is a valid fragmented MP4, so the
two concatenated tracks are remuxed with `-c copy` into one progressive MP4
with the `moov` box moved before `mdat` (`-movflags +faststart`), which a
browser can start playing, and seek in, before the whole file has arrived.
"""

from __future__ import annotations

import struct
from pathlib import Path

from core.media.model import Presentation, Track

DOWNLOAD_DIR = "static"
DOWNLOAD_NAME = "download.mp4"
DOWNLOAD_RELATIVE = f"{DOWNLOAD_DIR}/{DOWNLOAD_NAME}"  # below the asset's media prefix


def download_tracks(presentation: Presentation) -> tuple[Track, Track | None] | None:
    """(top complete H.264 rung, audio) or None when there is no H.264 rung to remux."""
    video = [t for t in presentation.video_tracks if t.rendition.codec == "h264" and t.complete and t.segments]
    if not video:
        return None
    top = max(video, key=lambda t: (t.rendition.height, t.rendition.bitrate))
    audio = presentation.audio
    return top, audio if audio is not None and audio.complete and audio.segments else None


def track_files(track: Track) -> list[str]:
    """The init segment and every media segment, in order, relative to the asset root."""
    return [track.init_uri] + [track.segment_uri(s.number) for s in sorted(track.segments, key=lambda s: s.number)]


def build_remux_argv(ffmpeg: str, video: Path, audio: Path | None, out: Path) -> list[str]:
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-protocol_whitelist", "file,pipe", "-i", str(video)]  # fmt: skip
    if audio is not None:
        argv += ["-protocol_whitelist", "file,pipe", "-i", str(audio)]
    argv += ["-map", "0:v:0"]
    if audio is not None:
        argv += ["-map", "1:a:0"]
    argv += ["-c", "copy", "-map_metadata", "-1", "-map_chapters", "-1", "-movflags", "+faststart",
             "-f", "mp4", str(out)]  # fmt: skip
    return argv


def top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4 file's top-level boxes, in file order (`ftyp`, `moov`, `mdat`, …)."""
    boxes = []
    with open(path, "rb") as fh:
        while header := fh.read(8):
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            skip = size - 8
            if size == 1:
                skip = struct.unpack(">Q", fh.read(8))[0] - 16
            elif size == 0:
                boxes.append(kind.decode("latin-1"))
                break
            boxes.append(kind.decode("latin-1"))
            fh.seek(skip, 1)
    return boxes


def is_faststart(path: Path) -> bool:
    boxes = top_level_boxes(path)
    return "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat")
