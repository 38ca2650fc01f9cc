"""Hostile and broken uploads, generated at test time (nothing binary is committed).

Each `Case` is one upload: the bytes, the file name the client claims, and
what the platform must do with it:

- `refuse`: a 4xx answer with a message, before anything is stored or queued;
- `ready`:  accepted (201) and transcoded;
- `any`:    refused (4xx), or accepted and then `ready` or `errored` with a reason.

Never a 5xx, never stuck, never a worker crash, and never the content of a
local file (the canary, /etc/passwd) in any output.

Decisions recorded here:
- An animated GIF is accepted as a silent video (it is a moving picture and
  phones/screen recorders make them); a one-frame GIF is a still image and
  is refused like PNG and JPEG.
- A playlist of any kind (HLS, ffconcat, DASH) is refused whatever it points
  at: an upload must be the media itself.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.media.ffmpeg import find_ffmpeg
from tests.media_fixtures import make_clip

Expect = Literal["refuse", "ready", "any"]


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    data: bytes
    expect: Expect
    words: str = ""  # a fragment the refusal's message must contain (lower case)


def _ffmpeg(*args: str) -> None:
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   capture_output=True, timeout=60)


def _faststart(src: Path, dest: Path) -> Path:
    _ffmpeg("-i", str(src), "-c", "copy", "-movflags", "+faststart", str(dest))
    return dest


def _patch_mp4_durations(data: bytes, seconds: int) -> bytes:
    """Make mvhd, tkhd and mdhd claim `seconds`, leaving the samples as they are."""
    out = bytearray(data)
    for box in (b"mvhd", b"mdhd", b"tkhd"):
        start = 0
        while (at := out.find(box, start)) != -1:
            start = at + 4
            version = out[at + 4]
            body = at + 8  # after type, version and flags
            if box == b"tkhd":
                # tkhd: created, modified, track id, reserved, duration (no timescale: the movie's)
                scale = _movie_timescale(out)
                off = body + (16 + 4 + 4 if version == 1 else 8 + 4 + 4)
            else:
                off = body + (16 if version == 1 else 8)
                scale = struct.unpack(">I", out[off:off + 4])[0]
                off += 4
            fmt = ">Q" if version == 1 else ">I"
            struct.pack_into(fmt, out, off, scale * seconds)
    return bytes(out)


def _movie_timescale(data: bytearray) -> int:
    at = data.find(b"mvhd")
    off = at + 8 + (16 if data[at + 4] == 1 else 8)
    return struct.unpack(">I", data[off:off + 4])[0]


class _Bits:
    """Just enough of an H.264 bit writer for a sequence parameter set."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        v = value + 1
        self.u(2 * v.bit_length() - 1, v)

    def rbsp(self) -> bytes:
        bits = self.bits + [1]
        bits += [0] * (-len(bits) % 8)
        raw = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        out = bytearray()  # emulation prevention
        zeros = 0
        for b in raw:
            if zeros >= 2 and b <= 3:
                out.append(3)
                zeros = 0
            out.append(b)
            zeros = zeros + 1 if b == 0 else 0
        return bytes(out)


def h264_sps_huge() -> bytes:
    """Annex B H.264: an SPS and PPS claiming 16384x16384, then a slice of garbage."""
    sps = _Bits()
    sps.u(8, 66)  # baseline
    sps.u(8, 0)
    sps.u(8, 52)  # level 5.2
    sps.ue(0)  # sps id
    sps.ue(0)  # log2_max_frame_num - 4
    sps.ue(2)  # poc type
    sps.ue(1)  # max refs
    sps.u(1, 0)
    sps.ue(1023)  # width in MBs - 1  -> 16384
    sps.ue(1023)  # height in map units - 1 -> 16384
    sps.u(1, 1)  # frame_mbs_only
    sps.u(1, 1)
    sps.u(1, 0)  # no cropping
    sps.u(1, 0)  # no VUI
    pps = _Bits()
    pps.ue(0)
    pps.ue(0)
    pps.u(1, 0)
    pps.u(1, 0)
    pps.ue(0)
    pps.ue(0)
    pps.ue(0)
    pps.u(1, 0)
    pps.u(2, 0)
    pps.ue(26)
    pps.ue(26)
    pps.ue(0)
    pps.u(1, 0)
    pps.u(1, 0)
    pps.u(1, 0)
    start = b"\x00\x00\x00\x01"
    return start + b"\x67" + sps.rbsp() + start + b"\x68" + pps.rbsp() + start + b"\x65" + os.urandom(2000)


def y4m_huge() -> bytes:
    """A YUV4MPEG2 header claiming 16384x16384 and one (short) frame."""
    return b"YUV4MPEG2 W16384 H16384 F30:1 Ip A1:1 C420jpeg\nFRAME\n" + b"\x80" * 65536


def _png() -> bytes:
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 16 for _ in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _archive_zip(member: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("clip.mp4", member)
    return buf.getvalue()


def _archive_targz(member: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("clip.mp4")
        info.size = len(member)
        t.addfile(info, io.BytesIO(member))
    return buf.getvalue()


def build_corpus(root: Path, *, canary: Path, http_url: str) -> list[Case]:
    """Every hostile case; `canary` is a local file no output may ever contain, `http_url` a
    loopback listener that no probe or encode may ever contact."""
    root.mkdir(parents=True, exist_ok=True)
    clip = make_clip(root / "clip.mp4", duration=2, width=320, height=240)
    good = clip.read_bytes()
    fast = _faststart(clip, root / "fast.mp4").read_bytes()
    mkv = make_clip(root / "clip.mkv", duration=2, width=320, height=240, container="mkv").read_bytes()
    one_second = make_clip(root / "one.mp4", duration=1, width=320, height=240).read_bytes()

    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=2", str(root / "anim.gif"))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=1:duration=1", "-frames:v", "1", str(root / "one.gif"))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", str(root / "still.jpg"))
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "0", "-c:a", "pcm_s16le", str(root / "empty.wav"))
    # An MP4 whose only track is timed metadata (a text/data stream, no picture, no sound).
    (root / "meta.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nmetadata only\n")
    _ffmpeg("-i", str(root / "meta.srt"), "-c:s", "mov_text", str(root / "data-only.mp4"))
    # 120 audio streams from one tiny source: over the stream limit (ABR_MAX_STREAMS, 32).
    maps = [arg for _ in range(120) for arg in ("-map", "0:a")]
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.2", *maps, "-c:a", "pcm_s16le", str(root / "many.mkv"))
    many = (root / "many.mkv").read_bytes()

    passwd, secret = "/etc/passwd", str(canary)
    hls = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"

    cases = [
        Case("truncated-mp4-10pct", "cut.mp4", good[: len(good) // 10], "refuse", "truncated"),
        Case("truncated-mp4-50pct", "cut.mp4", good[: len(good) // 2], "refuse", "truncated"),
        Case("truncated-mp4-95pct", "cut.mp4", good[: len(good) * 95 // 100], "refuse", "truncated"),
        Case("truncated-faststart-5pct", "cut.mp4", fast[: len(fast) // 20], "any"),
        Case("truncated-faststart-60pct", "cut.mp4", fast[: len(fast) * 6 // 10], "any"),
        Case("zero-length", "empty.mp4", b"", "refuse", "empty"),
        Case("mkv-named-mp4", "really-mkv.mp4", mkv, "ready"),
        Case("text-named-mp4", "notes.mp4", b"just some notes, not a video\n" * 50, "refuse"),
        Case("h264-sps-16384x16384", "huge.h264", h264_sps_huge(), "refuse"),
        Case("y4m-16384x16384", "huge.y4m", y4m_huge(), "refuse"),
        Case("hls-etc-passwd", "list.m3u8", (hls + f"#EXTINF:10,\n{passwd}\n#EXT-X-ENDLIST\n").encode(), "refuse"),
        Case("hls-file-url", "list.m3u8", (hls + f"#EXTINF:10,\nfile://{secret}\n#EXT-X-ENDLIST\n").encode(),
             "refuse"),
        Case("hls-http-url", "list.m3u8", (hls + f"#EXTINF:10,\n{http_url}/seg.ts\n#EXT-X-ENDLIST\n").encode(),
             "refuse"),
        Case("hls-named-mp4", "list.mp4", (hls + f"#EXTINF:10,\n{http_url}/x.ts\n#EXT-X-ENDLIST\n").encode(),
             "refuse"),
        Case("hls-local-segments", "local.m3u8",
             (hls + "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\nseg1.ts\n#EXT-X-ENDLIST\n").encode(),
             "refuse"),
        Case("ffconcat-etc-passwd", "list.ffconcat", f"ffconcat version 1.0\nfile {passwd}\n".encode(), "refuse"),
        Case("ffconcat-canary-named-mp4", "list.mp4",
             f"ffconcat version 1.0\nfile '{secret}'\nfile '../../../../{secret}'\n".encode(), "refuse"),
        Case("concat-protocol-name", f"concat:{passwd}|{secret}", good, "ready"),
        Case("subfile-protocol-name", f"subfile,,start,0,end,0,,:{passwd}", good, "ready"),
        Case("path-traversal-name", "../../../../tmp/evil.mp4", good, "ready"),
        Case("json", "data.mp4", json.dumps({"input_url": f"file://{secret}", "a": [1, 2, 3]}).encode(), "refuse"),
        Case("html", "page.mp4", b"<!doctype html><html><body><video src='/etc/passwd'></video></body></html>",
             "refuse"),
        Case("png", "image.png", _png(), "refuse", "image"),
        Case("jpeg", "photo.jpg", (root / "still.jpg").read_bytes(), "refuse"),
        Case("gif-one-frame", "still.gif", (root / "one.gif").read_bytes(), "refuse"),
        Case("gif-animated", "anim.gif", (root / "anim.gif").read_bytes(), "ready"),
        Case("zip", "clip.zip", _archive_zip(good), "refuse"),
        Case("tar-gz", "clip.tar.gz", _archive_targz(good), "refuse"),
        Case("gzip-mp4", "clip.mp4.gz", gzip.compress(good), "refuse"),
        Case("svg", "image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><image href="file:///etc/passwd"/></svg>',
             "refuse"),
        Case("pdf-header", "doc.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" * 20,
             "refuse"),
        Case("wav-0-samples", "silence.wav", (root / "empty.wav").read_bytes(), "refuse"),
        Case("mp4-data-stream-only", "data.mp4", (root / "data-only.mp4").read_bytes(), "refuse"),
        Case("120-streams", "many.mkv", many, "refuse", "streams"),
        Case("random-bytes", "noise.mp4", os.urandom(256 * 1024), "refuse"),
        # FFmpeg's mov demuxer takes durations from the sample tables, not from mvhd/tkhd/mdhd: 1 s.
        Case("moov-says-1h-has-1s", "long.mp4", _patch_mp4_durations(one_second, 3600), "ready"),
    ]
    return cases


LOCAL_SECRETS = (b"root:x:0:0", b"root:*:0:0")  # /etc/passwd's first line, shadowed or not
