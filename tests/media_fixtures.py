"""Tiny synthetic media for tests: ffmpeg lavfi sources, made in well under a second.

`make_clip` writes a clip with the properties a test needs (rotation, sample
aspect ratio, variable frame rate, 5.1 audio, no audio, audio only...);
`truncate` cuts a file to simulate an interrupted upload.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.media.ffmpeg import find_ffmpeg

_AUDIO_CODEC = {"mp4": "aac", "mov": "aac", "mkv": "aac", "m4a": "aac", "webm": "libopus", "ts": "aac"}


def make_clip(
    path: Path,
    *,
    duration: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: int | str = 30,
    audio_channels: int | None = 2,
    video: bool = True,
    rotate: int | None = None,
    sar: str | None = None,
    vfr: bool = False,
    codec: str = "libx264",
    container: str = "mp4",
) -> Path:
    """Write a `duration`-second clip to `path` (suffix forced to `container`) and return it.

    rotate: display-matrix rotation in degrees (counter-clockwise, as
    ffmpeg's `-display_rotation`), stored as metadata, pixels untouched.
    sar: sample aspect ratio such as "4:3" (anamorphic source).
    vfr: drop 3 of every 10 frames keeping timestamps -> variable frame rate.
    """
    ffmpeg = find_ffmpeg()
    path = Path(path).with_suffix(f".{container}")
    target = path.with_name(path.stem + ".raw" + path.suffix) if rotate is not None else path
    argv = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y"]
    odd = width % 2 or height % 2
    if video:
        # testsrc2 rounds sizes to even; testsrc keeps odd ones, which need 4:4:4 in x264.
        source = "testsrc" if odd else "testsrc2"
        argv += ["-f", "lavfi", "-i", f"{source}=size={width}x{height}:rate={fps}:duration={duration}"]
    if audio_channels:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}"]
    if video:
        filters = []
        if sar:
            filters.append(f"setsar={sar.replace(':', '/')}")
        if vfr:
            filters.append("select='not(between(mod(n\\,10)\\,3\\,5))'")
        if filters:
            argv += ["-vf", ",".join(filters)]
        if vfr:
            argv += ["-fps_mode", "vfr"]
        argv += ["-c:v", codec, "-pix_fmt", "yuv444p" if odd else "yuv420p", "-g", "30"]
        argv += ["-preset", "ultrafast"] if codec in ("libx264", "libx265") else []
        argv += ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"] if codec.startswith("libvpx") else []
        argv += ["-x265-params", "log-level=error"] if codec == "libx265" else []
    if audio_channels:
        argv += ["-c:a", _AUDIO_CODEC[container], "-ac", str(audio_channels), "-b:a", "64k"]
    argv += [str(target)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    if rotate is not None:
        # Rotation must be metadata only (a phone's file): set it while remuxing.
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-display_rotation", str(rotate),
             "-i", str(target), "-c", "copy", str(path)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        target.unlink()
    return path


def make_multi_audio_clip(path: Path, *, duration: float = 2.0, tracks=(("eng", "English", 440),
                          ("fre", "Français", 660), ("spa", "Español", 880)), width: int = 160,
                          height: int = 96, mono: bool = False) -> Path:
    """A small MP4 with one video stream and one audio stream per (language tag, title, tone Hz)."""
    ffmpeg = find_ffmpeg()
    path = Path(path).with_suffix(".mp4")
    argv = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={duration}"]
    for _, _, tone in tracks:
        argv += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration={duration}"]
    argv += ["-map", "0:v"] + [a for i in range(len(tracks)) for a in ("-map", f"{i + 1}:a")]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
             "-c:a", "aac", "-b:a", "48k", "-ac", "1" if mono else "2"]
    for i, (language, title, _) in enumerate(tracks):
        argv += [f"-metadata:s:a:{i}", f"language={language}", f"-metadata:s:a:{i}", f"title={title}"]
    subprocess.run([*argv, str(path)], check=True, capture_output=True, timeout=60)
    return path


def truncate(path: Path, fraction: float) -> Path:
    """Keep the first `fraction` of the file's bytes (an interrupted upload)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * fraction)])
    return Path(path)


def clip_maker(root: Path):
    """`make(name, **make_clip_kwargs) -> Path`, each clip generated once under `root` (session fixtures)."""
    made: dict[str, Path] = {}

    def make(name: str, **kwargs) -> Path:
        if name not in made:
            made[name] = make_clip(root / name, **kwargs)
        return made[name]

    return make
