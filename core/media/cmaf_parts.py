"""The complete CMAF fragments (`moof` + `mdat`) at the front of a growing segment file: LL-HLS parts.

The live encoder (dash muxer, `-streaming 1 -frag_type duration`) appends one
fragment per part target to `seg-….m4s.tmp` and flushes it; a fragment is
complete once its whole `mdat` is on disk. Each complete fragment is one
partial segment (RFC 8216bis §4.4.4.9): its bytes run from the end of the
previous one (the first also carries the segment's `styp`), so the parts of a
segment concatenated are the segment, byte for byte.

Only the box headers are read (ISO/IEC 14496-12): `tfdt` for the decode time,
`trun`/`tfhd` for the sample count, durations and the first sample's flags
(`sample_is_non_sync_sample`, bit 16): a part whose first sample is a sync
sample is INDEPENDENT=YES.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NON_SYNC = 0x10000  # sample_is_non_sync_sample in the sample flags word


@dataclass(frozen=True)
class Fragment:
    offset: int  # first byte of the part in the segment file
    size: int  # bytes, through the end of the fragment's mdat
    decode_time: int  # tfdt baseMediaDecodeTime, in the track's timescale
    duration: int  # sum of the sample durations, same timescale
    independent: bool  # the first sample is a sync sample (a keyframe; every audio sample)


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, box end) of each whole box in data[start:end]; stops at a partial one."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                return
            size = struct.unpack_from(">Q", data, at + 8)[0]
            header = 16
        if size < header or at + size > end:
            return
        yield kind, at + header, at + size
        at += size


def _traf(data: bytes, start: int, end: int, default_duration: int) -> tuple[int, int, bool]:
    """(decode time, duration, independent) of a track fragment."""
    decode_time, duration, independent = 0, 0, False
    sample_duration, sample_flags = default_duration, 0
    for kind, body, box_end in _boxes(data, start, end):
        version_flags = struct.unpack_from(">I", data, body)[0]
        version, flags = version_flags >> 24, version_flags & 0xFFFFFF
        if kind == b"tfhd":
            at = body + 8  # version/flags, track_ID
            if flags & 0x1:
                at += 8  # base_data_offset
            if flags & 0x2:
                at += 4  # sample_description_index
            if flags & 0x8:
                sample_duration = struct.unpack_from(">I", data, at)[0]
                at += 4
            if flags & 0x10:
                at += 4  # default_sample_size
            if flags & 0x20:
                sample_flags = struct.unpack_from(">I", data, at)[0]
        elif kind == b"tfdt":
            decode_time = struct.unpack_from(">Q" if version == 1 else ">I", data, body + 4)[0]
        elif kind == b"trun":
            count = struct.unpack_from(">I", data, body + 4)[0]
            at = body + 8
            if flags & 0x1:
                at += 4  # data_offset
            first_flags = None
            if flags & 0x4:
                first_flags = struct.unpack_from(">I", data, at)[0]
                at += 4
            for i in range(count):
                d = sample_duration
                if flags & 0x100:
                    d = struct.unpack_from(">I", data, at)[0]
                    at += 4
                if flags & 0x200:
                    at += 4  # size
                f = sample_flags
                if flags & 0x400:
                    f = struct.unpack_from(">I", data, at)[0]
                    at += 4
                if flags & 0x800:
                    at += 4  # composition time offset
                if i == 0:
                    independent = not ((first_flags if first_flags is not None else f) & NON_SYNC)
                duration += d
    return decode_time, duration, independent


def complete_fragments(data: bytes, start: int = 0, *, default_duration: int = 0) -> list[Fragment]:
    """The fragments that are whole in `data` (a segment file's bytes), from byte `start` on.

    `start` is where the previous call's last fragment ended (0 for a new
    segment). `default_duration` is the init segment's `trex` default, used
    when neither `tfhd` nor `trun` carries sample durations.
    """
    out: list[Fragment] = []
    moof: tuple[int, int] | None = None
    part_start = start
    for kind, body, end in _boxes(data, start, len(data)):
        if kind == b"moof":
            moof = (body, end)
        elif kind == b"mdat" and moof is not None:
            decode_time, duration, independent = 0, 0, True
            for inner, inner_body, inner_end in _boxes(data, *moof):
                if inner == b"traf":
                    decode_time, duration, independent = _traf(data, inner_body, inner_end, default_duration)
                    break
            out.append(Fragment(part_start, end - part_start, decode_time, duration, independent))
            part_start, moof = end, None
    return out
