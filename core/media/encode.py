"""Build the ffmpeg command for one codec family: decode once, encode every rung, package as DASH segments.

One process per family (H.264, H.265, VP8, AV1) decodes the source once, `split`s
the picture to a `scale` per rung, and hands every output to ffmpeg's `dash`
muxer, which writes CMAF fMP4 (H.264, H.265, AV1, AAC) or WebM (VP8) segments.
The project writes its own HLS/DASH manifests from these segments, so the
muxer's MPD is only a by-product.

Segment boundaries must be identical in every rung so players can switch at
any boundary: a keyframe is forced at every multiple of the segment duration
(`-force_key_frames`), scene-cut keyframes are off and the GOP length equals
the segment length, with closed GOPs.

A shorter first segment (`EncodeJob.first_segment_duration`, H.264/H.265): what
`playable` waits for is the first segment of every rung, and x264 makes a 1 s
segment for under a third of a 4 s one's CPU (10-min 1080p footage, four rungs,
chunk 0: 3.4 against 11.1 CPU s until every rung's first segment existed). Keyframes are then forced at
0, F, D, 2D, 3D, ... (F the first segment's duration, D the segment duration):
the grid of later boundaries stays on multiples of D, so chunk starts
(core/media/chunks.py) and every later segment are what they were, and only
the second segment is shorter (D - F). The dash muxer cuts a segment at the
first keyframe at least `seg_duration` after the segment's start (per stream),
so the video streams get a `seg_duration` shorter than every keyframe interval:
each forced keyframe, and only those (no scene cuts; the GOP is D), starts a
segment. The audio streams keep D as their own `seg_duration` (an AAC packet is
always a keyframe: a short one would cut every audio segment short); the muxer
also cuts them where it cuts the video, so in a process with video the audio's
first segment is as short and comes as early (checked with FFmpeg 9.0.2:
tests/core/media/test_family.py). A process of audio alone (the chunked path's)
makes whole segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from core.media.encryption import ContentKey
from core.media.images import StoryboardTap, sheet_output
from core.media.model import Ladder, Rendition
from core.media import rungs
from core.media.rungs import build_ladder_graph, plan_rungs

MANIFEST_NAME = "manifest.mpd"
INIT_TEMPLATE = "init-$RepresentationID$.$ext$"
MEDIA_TEMPLATE = "seg-$RepresentationID$-$Number%05d$.$ext$"

# x264: veryfast is the speed/quality knee on small machines (2 cores: 30 s
# of 1080p30 -> 4 rungs in 24 s). High profile for every rung: every MSE
# browser, iOS and smart TV made in the last decade decodes it, and it saves
# ~10 % over main at equal quality.
#
# Byte-identical retries: a job retried after a crash must write the same
# bytes under the same (immutable, CDN-cached) segment URLs. x264's frame
# threads are not repeatable when VBV is on (row-level rate control reads the
# bits of frames other threads are still encoding, so the result depends on
# timing), and their number follows the machine's cores. Sliced threads with
# a fixed count are repeatable on any machine; `-fflags +bitexact` stops the
# WebM muxer writing random track/segment UIDs.
# Sliced threads, their count planned per rung from the ladder alone (core/media/rungs.py).
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high"]
_X265 = ["-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1"]  # hvc1: Apple needs it (hev1 won't play)
# libvpx VP8, measured on this 2-core machine, 4 s 1280x720 testsrc2 -> 1 Mbit/s, -threads 2:
#   -deadline good -cpu-used 2      1.55 s  PSNR 28.74 dB
#   -deadline good -cpu-used 4      0.82 s  PSNR 28.48 dB
#   -deadline good -cpu-used 5      0.47 s  PSNR 28.46 dB   <- chosen
#   -deadline realtime -cpu-used 8  0.80 s  PSNR 28.46 dB
#   -deadline realtime -cpu-used 5  0.81 s  PSNR 28.47 dB
# good/5 is the fastest with the same quality as realtime; cpu-used 2 costs
# 3.3x the time for 0.3 dB. No alt-ref frames: they are invisible frames that
# the WebM DASH segmenter and some MSE players handle badly.
_VP8 = ["-c:v", "libvpx", "-deadline", "good", "-cpu-used", "5", "-auto-alt-ref", "0"]
# SVT-AV1 (v4.2 in the bundled ffmpeg), measured on this 2-core machine (shared, load 17-20:
# CPU seconds, not wall, are the steady figure), 4 s 1280x720 testsrc2 -> 1 Mbit/s VBR,
# bufsize 2 Mbit, lp=1, VMAF (libvmaf, vmaf_v0.6.1) against the lossless source:
#   preset 12   1.65 s CPU  VMAF 88.48  1.12 Mbit/s
#   preset 10   1.82 s CPU  VMAF 89.97  1.13 Mbit/s
#   preset 9    2.84 s CPU  VMAF 90.96  1.11 Mbit/s   <- chosen
#   preset 8    3.75 s CPU  VMAF 91.71  1.10 Mbit/s
#   preset 6    7.92 s CPU  VMAF 92.23  1.10 Mbit/s
#   (x264 veryfast, the H.264 family: 1.81 s CPU, VMAF 86.29 at 1.03 Mbit/s)
# 9 is the fastest preset SVT-AV1 means for viewing (from 10 up it warns "meant for
# automation tooling, visual artifacts may occur"), +1 VMAF over 10; 8 costs a third more
# CPU for +0.75 and 6 nearly three times for +1.3. It costs ~1.6x x264 veryfast's CPU.
#
# Byte-identical retries: SVT-AV1's output is repeatable only with one level of
# parallelism (`lp=1`): measured (640x360 + 426x240, 4 s, VBR), three runs at
# lp=1 under very different machine load gave the same bytes, while lp=2, lp=4
# and the default gave different bytes on every run (rate control that depends on
# thread timing, as x264's VBV does). CRF alone was repeatable at lp=2, but the
# ladder's contract is a bitrate. lp=1 limits each rung's encoder, not the family:
# the rungs are separate encoders that ffmpeg runs in parallel (on a many-core
# machine a single-rung encode would be slower than at SVT-AV1's default).
# SVT-AV1 refuses a max bitrate in VBR ("only supported with CRF mode"), so the
# AV1 rungs get the target and the VBV buffer, not `-maxrate`; the manifests
# carry the peak measured from the segments, as for every family.
SVTAV1_PRESET = 9
SVTAV1_PARAMS = "lp=1"
_SVTAV1 = ["-c:v", "libsvtav1", "-preset", str(SVTAV1_PRESET), "-svtav1-params", SVTAV1_PARAMS]


# Families whose keyframes this process alone places (no scene cuts, none from the encoder's own
# GOP decisions in between), so a seg_duration shorter than the GOP cuts only at the forced ones.
# VP8 (libvpx may place its own keyframes) and AV1 keep equal segments.
SHORT_FIRST_CODECS = ("h264", "h265")


@dataclass(frozen=True)
class RawVideo:
    """Raw frames on a pipe between the decoding ffmpeg, the frame plugins and the encoding ffmpeg."""

    width: int
    height: int
    pix_fmt: str  # yuv420p | rgb24 (core/media/plugins/base.py)
    frame_rate: Fraction

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 3 // (1 if self.pix_fmt == "rgb24" else 2)  # yuv420p: 1.5 bytes a pixel


@dataclass(frozen=True)
class EncodeJob:
    source: Path
    out_dir: Path
    ladder: Ladder | None  # None: audio only
    audio: Rendition | None  # None: no audio in this process (encoded once per asset)
    segment_duration: float  # seconds
    frame_rate: Fraction | None  # output rate (the ladder's), None for audio only
    threads: int = 0  # 0: ffmpeg decides
    # An input window for chunked encodes (core/media/chunks.py); off by default.
    # `start` is an accurate input seek (`-ss` before `-i`: for CFR the first
    # frame is the one at `start`), `length` limits what is read (`-t`), and
    # `output_ts_offset` shifts every output timestamp so a chunk's segments
    # continue the whole asset's timeline. With a window, audio (which is never
    # chunked) is read from a second, unwindowed input of the same file.
    start: float | None = None
    length: float | None = None
    output_ts_offset: float | None = None
    # Frame plugins: the video comes as raw frames on stdin (already at the output rate,
    # upright and square-pixelled: see build_decode_argv), the audio from `source`.
    raw_video: RawVideo | None = None
    # The asset's other audio tracks (languages, description), encoded by the same process as
    # `audio` from the source's audio stream each names (`Rendition.source_stream`).
    more_audio: tuple[Rendition, ...] = ()
    # An added track (a dub) is laid on the asset's timeline: it starts at 0 with the video, and is
    # cut or padded with silence to the asset's duration so every audio track ends together.
    pad_audio_to: float | None = None
    # Encrypted playback: every CMAF segment is CENC-encrypted (AES-CTR) under this key by the mp4
    # muxer, so one set of segment files serves every viewer; None: clear.
    content_key: ContentKey | None = None
    # The first segment's duration when shorter than `segment_duration` (see the module doc); None: all
    # segments `segment_duration`. Only for a job whose timeline starts at the asset's 0 (not a later chunk:
    # its forced keyframes count from the chunk's start) and only for SHORT_FIRST_CODECS.
    first_segment_duration: float | None = None
    # x264's rc-lookahead when not the preset's (veryfast: 10); H.264 only. Chunk 0 of a chunked encode
    # (core/services/chunked.py) takes FAST_START_LOOKAHEAD: see there.
    x264_lookahead: int | None = None
    # The VOD ladder's per-rung x264 tuning and scaler (`rungs.SMALL_RUNG_PRESET`, `SMALL_RUNG_X264`,
    # `LARGEST_RUNG_X264`, `VOD_SCALER`: measured for files). Live turns it off
    # (core/live/encode.py): a live encode has its own preset for every rung, measured for keeping up.
    vod_rung_tuning: bool = True
    # The storyboard sheet, cut by this process from one rung's picture and written to out_dir (a second
    # output after the segments); None: none (core/media/images.py StoryboardTap). Whole jobs only.
    storyboard: StoryboardTap | None = None

    @property
    def short_first(self) -> bool:
        """Whether this job's first segment is shorter than the others."""
        f = self.first_segment_duration
        return (self.ladder is not None and self.ladder.codec in SHORT_FIRST_CODECS and f is not None
                and 0 < f < self.segment_duration)

    @property
    def audio_renditions(self) -> tuple[Rendition, ...]:
        return ((self.audio,) if self.audio is not None else ()) + self.more_audio

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST_NAME


def build_encode_argv(ffmpeg: str, job: EncodeJob) -> list[str]:
    """The full ffmpeg argument list for `job` (pure: nothing is run)."""
    if job.ladder is None and job.audio is None:
        raise ValueError("an encode job needs a ladder, audio, or both")
    if job.more_audio and job.audio is None:
        raise ValueError("more_audio needs the default audio track in `audio`")
    # stdin carries the frames when there are plugins; otherwise ffmpeg must not read it.
    argv = [ffmpeg, "-hide_banner", *([] if job.raw_video else ["-nostdin"]), "-loglevel", "error", "-nostats",
            "-progress", "pipe:1", "-y"]
    argv += _inputs(job)
    audio_input = 1 if job.raw_video is not None or (job.audio is not None and _windowed(job)) else 0
    # Drop the source's metadata and chapters (phone GPS tags stay private).
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]
    if job.ladder is not None:
        argv += _video_args(job)
    if job.audio is not None:
        a = job.audio
        argv += ["-map", f"{audio_input}:a:{a.source_stream}", "-c:a", "aac", "-b:a", str(a.bitrate), "-ac", str(a.channels), "-ar", str(a.sample_rate)]
        # Each further track: its own source stream, its own settings by output audio index
        # (a more specific stream specifier wins over the plain `-b:a` above).
        for k, extra in enumerate(job.more_audio, start=1):
            argv += ["-map", f"{audio_input}:a:{extra.source_stream}", f"-b:a:{k}", str(extra.bitrate),
                     f"-ac:a:{k}", str(extra.channels), f"-ar:a:{k}", str(extra.sample_rate)]
    if job.pad_audio_to is not None:
        if job.ladder is not None or job.more_audio:
            raise ValueError("pad_audio_to is for an audio-only job of one track")
        argv += ["-af", "apad", "-t", _number(job.pad_audio_to)]
    if job.threads:
        argv += ["-threads", str(job.threads)]
    format_options = []
    if job.short_first and job.output_ts_offset:
        raise ValueError("a shorter first segment is for a job that starts the asset's timeline")
    if job.output_ts_offset:
        # The offset must land in each fragment's tfdt, not in an edit list of
        # the init segment (what the mp4 muxer does by default): with
        # frag_discont every chunk's init is byte-identical to chunk 0's and
        # its segments carry their place on the asset's timeline.
        argv += ["-output_ts_offset", _number(job.output_ts_offset)]
        format_options.append("movflags=+frag_discont")
    if job.content_key is not None:
        if job.ladder is not None and job.ladder.codec == "vp8":
            raise ValueError("encryption is CENC in CMAF (fMP4); VP8 is WebM")
        # The mp4 muxer's CENC writer: `tenc` (with the KID) in the init segment, `senc` per fragment.
        # The key is in this argv: the runner's log line redacts it (`runner.loggable_argv`).
        format_options += ["encryption_scheme=cenc-aes-ctr", f"encryption_key={job.content_key.key.hex()}",
                           f"encryption_kid={job.content_key.kid.hex()}"]
    if format_options:
        argv += ["-format_options", ":".join(format_options)]
    # One adaptation set per output stream: the dash muxer refuses rungs whose
    # aspect ratios differ in one set, and even-rounded sizes always differ a
    # little (854x480 vs 1920x1080). Its MPD is not served, so nothing is lost.
    streams = len(stream_map(job))
    # Not with a content key: under bitexact the mp4 muxer starts every track's CENC IVs at 0
    # (measured, n9.0.2), so every rendition, audio track and live session would encrypt with the
    # same AES-CTR keystream under the asset's one key. Without it each track draws a random
    # 64-bit starting IV. Each segment carries its IVs (`senc`), so a retried encode's segments
    # differ in bytes but decrypt to the same frames; the init segment is unchanged across runs.
    argv += [] if job.content_key is not None else ["-fflags", "+bitexact"]
    videos = len(job.ladder.renditions) if job.ladder is not None else 0
    # Video streams of a short-first job cut at every forced keyframe (module doc): half the shortest
    # interval between them, so the frame rounding of keyframe times (a boundary falls on the first frame
    # at or after it) never leaves an interval below it.
    video_seg = f",seg_duration={_number(_shortest_interval(job) / 2)}" if job.short_first else ""
    argv += [
        "-f", "dash",
        "-seg_duration", _number(job.segment_duration),
        "-use_template", "1",
        "-use_timeline", "1",
        "-dash_segment_type", "auto",  # per stream: VP8 -> WebM, H.264/H.265/AAC -> fMP4
        "-init_seg_name", INIT_TEMPLATE,
        "-media_seg_name", MEDIA_TEMPLATE,
        "-adaptation_sets", " ".join(f"id={i}{video_seg if i < videos else ''},streams={i}" for i in range(streams)),
        str(job.manifest_path),
    ]  # fmt: skip
    if job.storyboard is not None:
        if job.ladder is None or _windowed(job) or not 0 <= job.storyboard.rung < len(job.ladder.renditions):
            raise ValueError("a storyboard is cut from a rung of a whole video encode")
        argv += ["-map", "[vsb]", "-map_metadata", "-1", *sheet_output(job.out_dir / job.storyboard.name)]
    return argv


def _inputs(job: EncodeJob) -> list[str]:
    # Only local files: a crafted upload (playlist, reference movie) must not
    # make the worker open network URLs.
    source = ["-protocol_whitelist", "file,pipe", *_window(job), "-i", str(job.source)]
    if job.raw_video is not None:
        if _windowed(job) or job.ladder is None:
            raise ValueError("raw video input is for whole, video encodes only")
        raw = job.raw_video
        # Probe one frame, not 5 MB of them: the format is given, and a live encoder must open
        # its audio input (a FIFO the decoder is filling) without waiting seconds of frames.
        # (-nofind_stream_info would skip probing, but then the first frames go missing.)
        frames = ["-probesize", str(raw.frame_bytes), "-f", "rawvideo", "-pix_fmt", raw.pix_fmt,
                  "-video_size", f"{raw.width}x{raw.height}", "-framerate", str(raw.frame_rate), "-i", "pipe:0"]
        # The audio of the source, read by this process: it never goes through Python.
        return frames + (["-protocol_whitelist", "file,pipe", "-vn", "-i", str(job.source)] if job.audio else [])
    if job.audio is not None and _windowed(job):
        if job.output_ts_offset:
            raise ValueError("audio is encoded whole: it cannot take an output timestamp offset")
        # Options are per input: the audio input needs its own whitelist, or a
        # crafted source could make this second open reach the network.
        return source + ["-protocol_whitelist", "file,pipe", "-i", str(job.source)]
    return source


def build_decode_argv(ffmpeg: str, job: EncodeJob) -> list[str]:
    """The ffmpeg that feeds the frame plugins: decode once to `job.raw_video` frames on stdout (pure).

    It does what the first steps of the plugin-free graph do (the one rate
    conversion, autorotate, square pixels) and scales to the top rung, so the
    plugins see the picture the viewer sees at its largest. `start_time=0`
    makes frame n sit at n / rate on the source's clock (a late first frame is
    repeated back to 0), which is what keeps the audio, read by the encoder
    from the source file, in sync.
    """
    raw = job.raw_video
    if raw is None or job.ladder is None:
        raise ValueError("a decode job needs raw_video and a ladder")
    graph = (f"fps={raw.frame_rate}:start_time=0,scale={raw.width}:{raw.height}:flags=bicubic,setsar=1,"
             f"format={raw.pix_fmt}")
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-y",
            "-protocol_whitelist", "file,pipe", "-i", str(job.source),
            "-map", "0:v:0", "-vf", graph, "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", raw.pix_fmt, "pipe:1"]


def stream_map(job: EncodeJob) -> dict[str, str]:
    """ffmpeg's $RepresentationID$ (the output stream index) -> rendition id."""
    ids = [r.id for r in job.ladder.renditions] if job.ladder is not None else []
    ids += [r.id for r in job.audio_renditions]
    return {str(i): rid for i, rid in enumerate(ids)}


def _windowed(job: EncodeJob) -> bool:
    return job.start is not None or job.length is not None


def _window(job: EncodeJob) -> list[str]:
    args = ["-ss", _number(job.start)] if job.start else []
    return args + (["-t", _number(job.length)] if job.length is not None else [])


def gop_size(segment_duration: float, frame_rate: Fraction) -> int:
    return max(1, round(segment_duration * frame_rate))


def _video_args(job: EncodeJob) -> list[str]:
    ladder = job.ladder
    rate = job.frame_rate or ladder.renditions[0].frame_rate or Fraction(30)
    n = len(ladder.renditions)
    # Decode once, one fps conversion (also makes a variable-rate phone video
    # constant), then a tree of scales: each rung from the one above it
    # (core/media/rungs.py). Autorotate (on by default) has already turned the
    # picture upright. Raw frames from the plugins are already at `rate`.
    tuned = ladder.codec == "h264" and job.vod_rung_tuning
    plans = plan_rungs(ladder.renditions, rungs.SMALL_RUNG_PRESET if tuned else None,
                       within=ladder.within or None,
                       largest_x264=rungs.LARGEST_RUNG_X264 if tuned else None,
                       spare_smallest=tuned and rungs.SPARE_SMALLEST_RUNG,
                       small_x264=rungs.SMALL_RUNG_X264 if tuned else None)
    tap = (job.storyboard.rung, job.storyboard.graph) if job.storyboard is not None else None
    args = ["-filter_complex", build_ladder_graph("[0:v]" if job.raw_video else f"[0:v]fps={rate},",
                                                  ladder.renditions, plans, tap,
                                                  scaler=rungs.VOD_SCALER if tuned else rungs.SCALER)]
    for i in range(n):
        args += ["-map", f"[v{i}]"]
    gop = gop_size(job.segment_duration, rate)
    if ladder.codec == "h264":
        args += [*_X264, "-sc_threshold", "0"]
        for i, plan in enumerate(plans):
            # stitchable: the PPS's initial QP is 26 whatever the rate control, so a capped-CRF rung's
            # init segment is byte-identical to the same rung's at the fixed table's bitrate (otherwise
            # x264 writes the CRF there): chunks of one track may be encoded either way.
            lookahead = f":rc-lookahead={job.x264_lookahead}" if job.x264_lookahead is not None else ""
            more = f":{plan.x264}" if plan.x264 else ""
            args += [f"-x264-params:v:{i}", f"sliced-threads=1:threads={plan.threads}:stitchable=1{lookahead}{more}"]
            args += [f"-preset:v:{i}", plan.preset] if plan.preset else []
    elif ladder.codec == "h265":
        # min-keyint=1: x265 codes a forced keyframe closer than min-keyint to the last one as a non-IDR I frame,
        # which would miss the short first segment's keyframes (scene cuts are off, so nothing else comes
        # early). The same value for every job: x265 writes its options into the init segment, and every chunk
        # of a family must have chunk 0's init (core/services/chunked.py checks).
        params = f"keyint={gop}:min-keyint=1:scenecut=0:open-gop=0:log-level=error"
        args += [*_X265, "-x265-params", params]
    elif ladder.codec == "vp8":
        args += _VP8
    elif ladder.codec == "av1":
        args += _SVTAV1  # GOP = -g (keyframe every segment, closed: SVT-AV1's key frames), no scene cuts by default
    else:
        raise ValueError(f"unknown video codec {ladder.codec!r}")
    args += ["-g", str(gop), "-keyint_min", str(gop)]
    # Forced keyframes at every segment boundary, by time: the same in every rung.
    args += ["-force_key_frames", keyframe_expression(job)]
    for i, r in enumerate(ladder.renditions):
        maxrate = [] if ladder.codec == "av1" else [f"-maxrate:v:{i}", str(r.max_bitrate)]
        if r.crf is not None and ladder.codec == "av1":
            # Capped CRF for SVT-AV1: its CRF mode with `-maxrate` is SVT's capped CRF (max_bit_rate),
            # the one mode it takes a max bitrate in. No `-b:v`: with it the encoder refuses to open
            # (measured), so the init segment's `btrt` differs from a fixed-table rung's (avg 0, max the
            # cap): AV1 chunks of one track cannot mix the two (`plan_ladder` keeps_sizes: H.264 only).
            args += [f"-crf:v:{i}", _number(r.crf), f"-maxrate:v:{i}", str(r.max_bitrate),
                     f"-bufsize:v:{i}", str(r.buffer_size)]
            continue
        if r.crf is not None and ladder.codec == "h264":
            # Capped CRF: x264 keeps the quality constant under the VBV cap and ignores -b:v, which
            # then only fills the init segment's `btrt` box. It is the cap's nominal rate (maxrate is
            # 1.5x the table's bitrate), as a fixed-table encode of the rung writes there.
            args += [f"-crf:v:{i}", _number(r.crf), f"-b:v:{i}", str(r.max_bitrate * 2 // 3), *maxrate,
                     f"-bufsize:v:{i}", str(r.buffer_size)]
            continue
        args += [f"-b:v:{i}", str(r.bitrate), *maxrate, f"-bufsize:v:{i}", str(r.buffer_size)]
    return args


def _shortest_interval(job: EncodeJob) -> float:
    """The shortest time between two forced keyframes of a short-first job: the first or the second segment."""
    return min(job.first_segment_duration, job.segment_duration - job.first_segment_duration)


def keyframe_expression(job: EncodeJob) -> str:
    """`-force_key_frames`: every multiple of the segment duration; with a short first, 0, F, D, 2D, ... (pure)."""
    d = _number(job.segment_duration)
    if not job.short_first:
        return f"expr:gte(t,n_forced*{d})"
    # n_forced is the number of keyframes forced so far: the 2nd is at F, the (k+1)-th at (k-1) x D from then on.
    return f"expr:gte(t,if(lt(n_forced,2),n_forced*{_number(job.first_segment_duration)},(n_forced-1)*{d}))"


def _number(value: float) -> str:
    """4.0 -> '4', 2.5 -> '2.5' (no float noise in the argv)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


