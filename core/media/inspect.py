"""Read what ffmpeg produced (demux only, never decode): codec strings, timescales, segment times.

Manifests are written from these facts, not from what was asked for.
fMP4 media segments (moof+mdat) and the dash muxer's WebM media segments
(a bare Matroska Cluster: no EBML header, no Tracks) are both unreadable on
their own, so a segment is read as init + segment bytes, exactly as a player's
MediaSource sees it.
"""

from __future__ import annotations

import io
from pathlib import Path

import av

from core.errors import FFmpegError
from core.media.model import Segment


_HEVC_PROFILE_SPACE = ("", "A", "B", "C")
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_TIMESTAMP_SCALE_ID = b"\x2a\xd7\xb1"
_WEBM_CODECS = {b"V_VP8": "vp8"}


def read_init(init_path: Path) -> tuple[str, int]:
    """(RFC 6381 codecs string, timescale) of the single stream in an init segment."""
    data = Path(init_path).read_bytes()
    if data.startswith(_EBML_MAGIC):
        return _read_webm_init(data)
    with _open(data, init_path) as container:
        stream = container.streams[0]
        ctx = stream.codec_context
        return codecs_string(ctx.name, bytes(ctx.extradata or b"")), stream.time_base.denominator


def read_segment(init_path: Path, segment_path: Path, number: int) -> Segment:
    """Start, duration (in the track's timescale) and size of one media segment.

    start is the earliest presentation time in the segment, duration runs to
    the end of its last frame (pts + duration): with closed GOPs that is the
    next segment's start. AAC's priming frame (negative pts in the first
    segment, hidden by the edit list) is clamped to 0.
    """
    data = Path(segment_path).read_bytes()
    starts, ends = [], []
    with _open(Path(init_path).read_bytes() + data, segment_path) as container:
        stream = container.streams[0]
        try:
            for packet in container.demux(stream):
                if packet.pts is None or not packet.size:
                    continue  # the flush packet at the end
                starts.append(packet.pts)
                ends.append(packet.pts + (packet.duration or 0))
        except av.FFmpegError as exc:
            raise FFmpegError(f"segment {Path(segment_path).name} is unreadable: {exc}") from exc
    if not starts:
        raise FFmpegError(f"segment {Path(segment_path).name} holds no media")
    start = max(0, min(starts))
    return Segment(number=number, start=start, duration=max(ends) - start, size=len(data))


def _read_webm_init(data: bytes) -> tuple[str, int]:
    """The dash muxer's WebM init (EBML header, Segment of unknown size, Info, Tracks).

    libavformat refuses to open it without a Cluster, so the two facts we need
    are read from the EBML elements directly: CodecID and TimestampScale.
    """
    codec = next((name for tag, name in _WEBM_CODECS.items() if b"\x86" + bytes([0x80 | len(tag)]) + tag in data), None)
    if codec is None:
        raise FFmpegError("the WebM init segment holds no VP8 track")
    scale_ns = 1_000_000  # Matroska's default TimestampScale (1 ms)
    at = data.find(_TIMESTAMP_SCALE_ID)
    if at >= 0:
        size_byte = data[at + 3]
        length = size_byte & 0x7F if size_byte & 0x80 else 0  # 1-byte size vint is what muxers write
        if 0 < length <= 8:
            scale_ns = int.from_bytes(data[at + 4 : at + 4 + length], "big")
    return codec, 1_000_000_000 // scale_ns


def codecs_string(codec: str, extradata: bytes) -> str:
    """RFC 6381 `codecs` value from a decoder name and its extradata (avcC, hvcC, av1C, AudioSpecificConfig)."""
    if codec == "h264":
        if len(extradata) < 4 or extradata[0] != 1:
            raise FFmpegError("the H.264 init segment has no avcC configuration")
        return "avc1." + extradata[1:4].hex()  # profile, constraint flags, level
    if codec == "hevc":
        return _hvc1(extradata)
    if codec in ("av1", "libdav1d", "libaom-av1"):  # PyAV names the decoder it would use
        return _av01(extradata)
    if codec == "aac":
        return f"mp4a.40.{_aac_object_type(extradata)}"
    if codec in ("vp8", "libvpx"):
        return "vp8"
    raise FFmpegError(f"no codecs string known for {codec}")


def _hvc1(hvcc: bytes) -> str:
    """ISO/IEC 14496-15 annex E: hvc1.<space><profile>.<compat reversed>.<tier><level>.<constraints>."""
    if len(hvcc) < 13 or hvcc[0] != 1:
        raise FFmpegError("the H.265 init segment has no hvcC configuration")
    profile_space, tier, profile_idc = hvcc[1] >> 6, (hvcc[1] >> 5) & 1, hvcc[1] & 0x1F
    compat = int.from_bytes(hvcc[2:6], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()  # trailing zero bytes are left out
    parts = [
        "hvc1",
        f"{_HEVC_PROFILE_SPACE[profile_space]}{profile_idc}",
        f"{reversed_compat:X}",
        f"{'H' if tier else 'L'}{hvcc[12]}",
        *(f"{b:X}" for b in constraints),
    ]
    return ".".join(parts)


def _av01(av1c: bytes) -> str:
    """AV1 in ISOBMFF §5: av01.<profile>.<level><tier>.<bit depth>, the short form.

    The av1C box copies the sequence header's seq_profile, seq_level_idx_0,
    seq_tier_0 and the bit-depth flags into its first three bytes. The optional
    fields (monochrome, chroma subsampling, colour) are all left out, which
    means 4:2:0 and BT.709-or-unspecified: what SVT-AV1 writes from yuv420p.
    """
    if len(av1c) < 4 or av1c[0] != 0x81:  # marker 1, version 1
        raise FFmpegError("the AV1 init segment has no av1C configuration")
    profile, level = av1c[1] >> 5, av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    high_bitdepth, twelve_bit = av1c[2] & 0x40, av1c[2] & 0x20
    depth = (12 if twelve_bit and profile == 2 else 10) if high_bitdepth else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"


def _aac_object_type(asc: bytes) -> int:
    if not asc:
        return 2  # no config: assume AAC-LC, what ffmpeg's aac encoder writes
    object_type = asc[0] >> 3
    if object_type == 31 and len(asc) >= 2:  # escape: 32 + next 6 bits
        object_type = 32 + (((asc[0] & 0x07) << 3) | (asc[1] >> 5))
    return object_type


def _open(data: bytes, name):
    try:
        return av.open(io.BytesIO(data), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise FFmpegError(f"{Path(name).name} is not a readable media segment: {exc}") from exc
