"""Encode one codec family and report each segment the moment it is complete.

The orchestrator uploads what `on_segment` hands it and rewrites the
manifests, so the first segments of every rung are playable while the rest
is still encoding.

When is a segment complete? ffmpeg's dash muxer (writing to files) writes
each segment as `<name>.tmp` and renames it to `<name>` when it closes it
(checked with FFmpeg 9.0.2 by listing the directory during an encode), so a
file under its final name is finished. The init segment is written whole
before the first media segment's file is opened, so it is reported together
with the first segment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import FFmpegError
from core.media.encode import EncodeJob, RawVideo, build_decode_argv, build_encode_argv, stream_map
from core.media.inspect import read_init, read_segment
from core.media.model import Rendition, Segment, Track
from core.media.runner import Progress, run_ffmpeg

log = logging.getLogger(__name__)

OnSegment = Callable[[Track, Path | None, Path], None]


@dataclass
class _Output:
    """What has been collected so far for one ffmpeg output stream."""

    rep_id: str  # ffmpeg's $RepresentationID$
    rendition: Rendition
    extension: str  # m4s | webm, as the dash muxer names them
    track: Track | None = None
    next_number: int = 1
    segments: list[Segment] = field(default_factory=list)


def encode_family(
    ffmpeg: str,
    job: EncodeJob,
    *,
    duration: float | None,
    on_progress: Callable[[Progress], None] | None,
    on_segment: OnSegment,
    cancel: Callable[[], bool] | None = None,
    timeout: float | None = None,
    plugins: list[dict] | None = None,
    resolve: Callable[[str], Path] | None = None,
    nice: int = 0,
    hold: Callable[[], bool] | None = None,
) -> list[Track]:
    """Run the family's encode; return its tracks (video high -> low, then audio), all complete.

    `plugins` (validated `frame_plugins` settings): the video goes decoder → plugin chain →
    encoder (core/media/pluginrun.py); `resolve` turns their resource references into files.
    `nice`: ffmpeg's niceness above the worker's (`run_ffmpeg`); not with plugins.
    `hold`: ffmpeg is stopped while it says True (`run_ffmpeg`); not with plugins.
    """
    job.out_dir.mkdir(parents=True, exist_ok=True)
    renditions = {r.id: r for r in (job.ladder.renditions if job.ladder else ())}
    for audio in job.audio_renditions:
        renditions[audio.id] = audio
    outputs = [
        _Output(rep_id, renditions[rid], "webm" if renditions[rid].codec == "vp8" else "m4s")
        for rep_id, rid in stream_map(job).items()
    ]

    def collect() -> None:
        for output in outputs:
            _collect(job.out_dir, output, on_segment)

    if plugins and job.ladder is not None:
        _run_with_plugins(ffmpeg, job, plugins, resolve, duration=duration, on_progress=on_progress,
                          cancel=cancel, timeout=timeout, poll=collect)
    else:
        run_ffmpeg(
            build_encode_argv(ffmpeg, job),
            duration=duration,
            on_progress=on_progress,
            cancel=cancel,
            timeout=timeout,
            poll=collect,
            nice=nice,
            hold=hold,
        )
    collect()  # whatever was renamed after the last poll
    tracks = []
    for output in outputs:
        if output.track is None or not output.track.segments:
            raise FFmpegError(f"ffmpeg produced no segments for {output.rendition.id}")
        output.track.complete = True
        tracks.append(output.track)
    return tracks


def plugin_job(job: EncodeJob, plugins: list[dict]) -> EncodeJob:
    """`job` with raw video between decoder and encoder: the top rung's size, the chain's pixel format."""
    from core.media.plugins import chain_format, installed

    top = job.ladder.renditions[0]
    rate = job.frame_rate or top.frame_rate
    pix_fmt = chain_format([installed()[p["name"]].cls for p in plugins])
    return replace(job, raw_video=RawVideo(top.width, top.height, pix_fmt, rate))


def _run_with_plugins(ffmpeg: str, job: EncodeJob, plugins: list[dict], resolve, **run_kwargs) -> None:
    from core.media.framepipe import build_chain
    from core.media.plugins.base import FrameFormat
    from core.media.pluginrun import run_with_plugins

    job = plugin_job(job, plugins)
    raw = job.raw_video
    chain = build_chain(plugins, FrameFormat(raw.width, raw.height, raw.pix_fmt, raw.frame_rate), resolve=resolve)
    pump = run_with_plugins(build_decode_argv(ffmpeg, job), build_encode_argv(ffmpeg, job), chain, **run_kwargs)
    if pump.frames_in != pump.frames_out:
        raise FFmpegError(f"the frame plugins passed {pump.frames_out} of {pump.frames_in} frames")
    log.info("frame plugins: %d frames through %s", pump.frames_out, ", ".join(p["name"] for p in plugins))


def _collect(out_dir: Path, output: _Output, on_segment: OnSegment) -> None:
    """Report, in order, every segment of `output` that now has its final name."""
    init_path = out_dir / f"init-{output.rep_id}.{'webm' if output.extension == 'webm' else 'm4s'}"
    while True:
        path = out_dir / f"seg-{output.rep_id}-{output.next_number:05d}.{output.extension}"
        if not path.exists():
            return
        new_init = None
        if output.track is None:
            codecs, timescale = read_init(init_path)
            container = "webm" if output.extension == "webm" else "mp4"
            output.track = Track(rendition=output.rendition, codecs=codecs, container=container, timescale=timescale)
            new_init = init_path
        segment = contiguous(output.track, read_segment(init_path, path, output.next_number))
        output.track.segments.append(segment)
        output.next_number += 1
        log.debug("segment %s/%d complete (%d bytes)", output.rendition.id, segment.number, segment.size)
        on_segment(output.track, new_init, path)


def contiguous(track: Track, segment: Segment) -> Segment:
    """Start a segment where the previous one ended.

    Frame times rounded to a coarse timescale (WebM's milliseconds at 29.97
    fps) can leave a 1-tick gap or overlap between segments, and AAC priming
    overlaps by a frame at a live reconnect; a DASH SegmentTimeline must not.
    The end stays where the media says, so the rounding never accumulates.
    """
    if not track.segments:
        return segment
    last = track.segments[-1]
    previous_end = last.start + last.duration
    if segment.start == previous_end:
        return segment
    end = segment.start + segment.duration
    return Segment(number=segment.number, start=previous_end, duration=max(1, end - previous_end), size=segment.size)
