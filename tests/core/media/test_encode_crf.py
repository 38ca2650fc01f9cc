"""Capped-CRF rungs with the real x264: the CRF is applied per rung, and the init segment does not change.

The second is what lets one track's chunks be encoded partly at the fixed table's bitrate and partly at
a per-title CRF (the chunk fan-in refuses chunks whose init segments differ): `stitchable=1` keeps the
PPS's initial QP at 26 and `-b:v` the `btrt` box at the table's rate.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from core.media.encode import EncodeJob, build_encode_argv
from core.media.ffmpeg import find_ffmpeg
from core.media.ladder import plan_ladder
from core.media.model import Ladder
from core.media.runner import run_ffmpeg


def _noisy_source(ffmpeg: str, tmp_path) -> Path:
    """1 s of 320x240 15 fps test pattern with temporal noise (rate control has work to do), near lossless."""
    source = tmp_path / "src.mp4"
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=320x240:rate=15,noise=alls=10:allf=t", "-t", "1", "-c:v", "libx264",
                    "-preset", "ultrafast", "-qp", "10", str(source)], check=True)
    return source


def test_crf_rungs_change_the_media_not_the_init(tmp_path):
    ffmpeg = find_ffmpeg()
    source = _noisy_source(ffmpeg, tmp_path)
    fixed = plan_ladder(codec="h264", display_width=320, display_height=240, frame_rate=Fraction(15))
    out = {}
    for name, crf in (("fixed", None), ("crf18", 18.0), ("crf40", 40.0)):
        ladder = Ladder("h264", tuple(replace(r, crf=crf) for r in fixed.renditions))
        job = EncodeJob(source, tmp_path / name, ladder, None, 1.0, Fraction(15))
        job.out_dir.mkdir()
        run_ffmpeg(build_encode_argv(ffmpeg, job), duration=None, on_progress=None, timeout=60)
        out[name] = ((job.out_dir / "init-0.m4s").read_bytes(),
                     sum(p.stat().st_size for p in job.out_dir.glob("seg-0-*.m4s")))
    assert out["crf18"][0] == out["fixed"][0] == out["crf40"][0]
    assert out["crf40"][1] * 2 < out["crf18"][1], out  # the CRF reached the encoder: quality costs bits


def test_av1_capped_crf_reaches_svt_and_repeats_byte_for_byte(tmp_path):
    """SVT-AV1 at -crf with -maxrate: the CRF reaches the encoder and a retry writes the same bytes (lp=1)."""
    ffmpeg = find_ffmpeg()
    source = _noisy_source(ffmpeg, tmp_path)
    fixed = plan_ladder(codec="av1", display_width=320, display_height=240, frame_rate=Fraction(15))
    out = {}
    for name, crf in (("crf20", 20.0), ("crf50", 50.0), ("crf50-again", 50.0)):
        ladder = Ladder("av1", tuple(replace(r, crf=crf) for r in fixed.renditions))
        job = EncodeJob(source, tmp_path / name, ladder, None, 1.0, Fraction(15))
        job.out_dir.mkdir()
        run_ffmpeg(build_encode_argv(ffmpeg, job), duration=None, on_progress=None, timeout=120)
        out[name] = b"".join(p.read_bytes() for p in sorted(job.out_dir.glob("seg-0-*.m4s")))
    assert len(out["crf50"]) * 2 < len(out["crf20"]), {k: len(v) for k, v in out.items()}
    assert out["crf50"] == out["crf50-again"]
