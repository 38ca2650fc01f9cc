"""The live ffmpeg command: a live input, the VOD encoder's ladder, low-latency options, a growing timeline.

Built on `core.media.encode.build_encode_argv` (decode once, `split` → one
`scale` per rung, closed GOPs forced at every segment boundary, CMAF via the
dash muxer), with what live needs on top:

- input: small probe, no input buffering, a read timeout, and a protocol
  whitelist per scheme (an HLS source must not make us open `file:` URLs);
- encoder: `-tune zerolatency` (x264/x265: no lookahead, no B-frames, frames
  leave the encoder as soon as they are encoded), x264's LIVE_X264_PRESET
  (measured below), `-lag-in-frames 0` (VP8);
- audio: `aresample=async=1:first_pts=0` pads a late-starting or gappy
  source with silence so audio and video start together;
- timeline: `-output_ts_offset` starts a reconnected source where the
  previous one ended and `movflags=+frag_discont` writes that time into each
  fragment's `tfdt` (instead of an edit list in the init segment), so every
  session's init segment is byte-identical and the whole stream, reconnects
  included, is one continuous timeline (which is what lets the recording be
  served as VOD without re-encoding). The first session starts at
  FIRST_OFFSET, not 0: AAC's priming frame would otherwise get a negative
  `tfdt`.
- the dash muxer keeps only a small window in its own (unused) manifest;
  the publisher moves every segment out the moment it is complete.
- low latency (`part_target`): `-frag_type duration -frag_duration` cuts
  every segment into CMAF fragments of about the part target (rounded to
  whole frames by the muxer) and `-streaming 1` writes each fragment to the
  growing segment file as soon as it is closed, where the publisher picks
  it up as an LL-HLS part (core/media/cmaf_parts.py). Keyframes stay where
  the VOD encoder forces them, at every segment start on every rung, so the
  first part of each segment is the only independent one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from core.media.encode import EncodeJob, _number, build_decode_argv, build_encode_argv

FIRST_OFFSET = 0.1  # seconds; see the module docstring
# x264 preset of the live ladder (H.264), in place of the VOD encoder's veryfast: a live encode must keep
# up with the clock on every rung at once, beside whatever else the worker's machine runs. Measured with
# bench/live_encode_cpu.py (the live argv alone, LL parts, 1280x720p25 → 720p/480p/360p at the ladder's
# bitrates, 2-core machine shared with other work at load 7-30: CPU seconds, not wall). CPU is per second
# of media (the share of a core needed to keep up); quality is the 720p rung (2.74 Mbit/s) against the
# encoder's input, PSNR and VMAF v0.6.1, 10 s of testsrc2 plain / with temporal noise (a camera's):
#   preset      CPU s per media s (bench picture)      PSNR dB         VMAF
#   veryfast    0.49 (0.477-0.499, 6 runs)              44.97 / 41.60   97.46 / 95.31
#   superfast   0.38 (0.358-0.396, 4 runs)  <- chosen   44.59 / 41.18   97.27 / 94.95
#   ultrafast   0.23 (0.228-0.230, 2 runs)              43.61 / 39.57   97.04 / 95.36
# With zerolatency (no lookahead, no mbtree, no B-frames) superfast is veryfast less motion search and
# sub-pixel refinement: 22 % less CPU for 0.2-0.4 VMAF and 0.4 dB, under the 0.5 VMAF the VOD presets
# refused at (core/media/rungs.py). Ultrafast halves the CPU again but drops CABAC and the deblocking
# filter: 1.4-2.0 dB (VMAF, blind to the blocking noise, barely moves). LL parts cost nothing measurable
# (0.492 vs 0.499 without `-frag_duration`), nor do 2 slice threads per rung (0.49) or one decoder thread
# (0.48): the preset is the lever. In the whole latency bench (bench/live_latency.py, hls-ll, 40 s, the
# machine shared at load 22-30, alternated) superfast kept up in 2 of 3 runs (capture -> part p95 0.79,
# 0.82, 3.46 s), veryfast in 0 of 2 (p50 9.8 and 7.0 s behind). x265 keeps the VOD preset.
LIVE_X264_PRESET = "superfast"
MUXER_WINDOW = 6  # segments ffmpeg lists in its own MPD
MUXER_EXTRA_WINDOW = 60  # segments ffmpeg keeps before deleting (we have moved them long before)
PROBE_SIZE = 1_000_000  # bytes
ANALYZE_US = 1_500_000  # bounds a slow start (RTSP, HLS, SRT)
ANALYZE_RTMP_US = 1_500_000  # 0.5 s missed the video of a fresh publisher (its first keyframe comes later)
READ_TIMEOUT_US = 5_000_000  # a source silent this long counts as dropped

_WHITELISTS = {
    "rtmp": "rtmp,rtmps,tcp,tls",
    "rtmps": "rtmp,rtmps,tcp,tls",
    "rtsp": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "rtsps": "rtsp,rtsps,rtp,srtp,udp,tcp,tls",
    "srt": "srt,udp",
    "http": "http,https,tcp,tls,crypto,hls,httpproxy",
    "https": "http,https,tcp,tls,crypto,hls,httpproxy",
}
SCHEMES = tuple(_WHITELISTS)


def input_args(url: str) -> list[str]:
    """Options before `-i` for a live source at `url`."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _WHITELISTS:
        raise ValueError(f"unsupported live source scheme {scheme!r}")
    # FLV (RTMP) announces every stream and its parameters up front; others may need longer.
    analyze = ANALYZE_RTMP_US if scheme in ("rtmp", "rtmps") else ANALYZE_US
    # MPEG-TS over HTTP: the SRT listener's relay of a pushed stream (core/live/srt_ingest.py), not HLS.
    ts_over_http = scheme in ("http", "https") and urlsplit(url).path.endswith(".ts")
    args = ["-fflags", "nobuffer", "-flags", "low_delay",
            "-probesize", str(PROBE_SIZE), "-analyzeduration", str(analyze),
            "-protocol_whitelist", "http,tcp" if ts_over_http else _WHITELISTS[scheme]]
    if scheme in ("rtmp", "rtmps"):
        args += ["-rtmp_live", "live", "-rw_timeout", str(READ_TIMEOUT_US)]
    elif scheme in ("rtsp", "rtsps"):
        args += ["-rtsp_transport", "tcp", "-timeout", str(READ_TIMEOUT_US)]
    elif scheme == "srt" or ts_over_http:
        args += ["-rw_timeout", str(READ_TIMEOUT_US)]
    elif urlsplit(url).path.lower().endswith((".m3u8", ".m3u")):  # HLS: start at the live edge
        args += ["-live_start_index", "-1", "-rw_timeout", str(READ_TIMEOUT_US)]
    else:  # anything else over HTTP(S) (MPEG-TS, FLV): an HLS-only option would fail the open
        args += ["-rw_timeout", str(READ_TIMEOUT_US)]
    return args + ["-i", url]


def build_live_argv(ffmpeg: str, job: EncodeJob, *, source_url: str, offset: float,
                    input_options: list[str] | None = None, part_target: float | None = None) -> list[str]:
    """The live ffmpeg argument list (pure): `job.source` is ignored, `source_url` is read instead.

    `input_options` (ending in `-i …`) replace the source's input options: the
    worker encodes from its reader's pipe (core/live/reader.py).
    """
    base = build_encode_argv(ffmpeg, replace(job, vod_rung_tuning=False))  # every rung LIVE_X264_PRESET
    at = base.index("-protocol_whitelist")
    if base[at + 2] != "-i":
        raise AssertionError("build_encode_argv changed its input options")
    head, tail = base[:at], base[at + 4:]
    inputs = input_options if input_options is not None else input_args(source_url)
    return head + ["-stats_period", "0.5"] + inputs + _live_tail(tail, offset, part_target)


def build_live_decode_argv(ffmpeg: str, job: EncodeJob, *, source_url: str, audio_fifo: str | None,
                           input_options: list[str] | None = None) -> list[str]:
    """Frame plugins on a live source: the one reader of it, raw frames on stdout (pure).

    `input_options` as for build_live_argv (the worker decodes from its reader's pipe).
    The audio is not decoded here: its packets are copied into a NUT stream on
    `audio_fifo`, which the encoder reads, so it never passes through Python and
    keeps its timestamps.
    """
    argv = build_decode_argv(ffmpeg, job)
    at = argv.index("-protocol_whitelist")
    inputs = input_options if input_options is not None else input_args(source_url)
    argv = argv[:at] + inputs + argv[at + 4:]
    if audio_fifo is not None and job.audio is not None:
        argv += ["-map", "0:a:0", "-c:a", "copy", "-f", "nut", audio_fifo]
    return argv


def build_live_raw_argv(ffmpeg: str, job: EncodeJob, *, audio_fifo: str, offset: float,
                        part_target: float | None = None) -> list[str]:
    """The live encoder fed by the frame plugins: raw frames on stdin, the audio from the decoder's FIFO (pure)."""
    base = build_encode_argv(ffmpeg, replace(job, source=Path(audio_fifo), vod_rung_tuning=False))
    at = base.index("-probesize")  # -probesize N -f rawvideo … -i pipe:0
    head = base[:at] + ["-stats_period", "0.5"]
    raw_end = base.index("pipe:0") + 1
    rest = base[raw_end:]
    if rest[:3] == ["-protocol_whitelist", "file,pipe", "-vn"]:
        rest = ["-protocol_whitelist", "file,pipe", "-f", "nut", "-i", rest[4]] + rest[5:]
        inputs, rest = rest[:6], rest[6:]
    else:
        inputs = []
    return head + base[at:raw_end] + inputs + _live_tail(rest, offset, part_target)


def part_target(settings: dict) -> float | None:
    """A stream's part target in seconds, None unless its `latency_mode` is "low" (streams from before LL: standard)."""
    if settings.get("latency_mode") != "low":
        return None
    return float(settings.get("part_target") or 0.25)


def part_args(part_target: float | None) -> list[str]:
    """The dash muxer's options for LL parts (none for a standard-latency stream)."""
    if part_target is None:
        return []
    return ["-frag_type", "duration", "-frag_duration", _number(part_target), "-streaming", "1"]


def _live_tail(tail: list[str], offset: float, part_target: float | None = None) -> list[str]:
    out = []
    i = 0
    while i < len(tail):
        arg = tail[i]
        out.append(arg)
        if arg == "-preset" and tail[i - 1] in ("libx264", "libx265"):
            out += [LIVE_X264_PRESET if tail[i - 1] == "libx264" else tail[i + 1], "-tune", "zerolatency"]
            i += 2
            continue
        if arg == "libvpx":
            out += ["-lag-in-frames", "0"]
        if arg == "-map" and ":a:" in tail[i + 1] and "-af" not in out:
            # One `-af` for every audio output stream (no stream specifier): each track of a
            # multi-language source is padded the same way.
            out += [tail[i + 1], "-af", "aresample=async=1:first_pts=0"]
            i += 2
            continue
        i += 1
    f = out.index("-f")
    manifest = out[-1]
    # One -format_options (a second would replace the first): movflags joins an encrypted
    # stream's CENC options (core/media/encode.py).
    options = ["movflags=+frag_discont"]
    if "-format_options" in out:
        at = out.index("-format_options")
        options.insert(0, out[at + 1])
        del out[at:at + 2]
        f = out.index("-f")
    return out[:f] + ["-output_ts_offset", _number(offset)] + out[f:-1] + [
        "-format_options", ":".join(options),
        "-window_size", str(MUXER_WINDOW), "-extra_window_size", str(MUXER_EXTRA_WINDOW),
        *part_args(part_target),
        manifest,
    ]
