from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from core.media.encode import EncodeJob, build_encode_argv, stream_map
from core.media.images import StoryboardTap
from core.media.model import Ladder, Rendition

SRC, OUT = Path("/in/src.mp4"), Path("/out/job")
AUDIO = Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000)
HEAD = [
    "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
    "-protocol_whitelist", "file,pipe", "-i", "/in/src.mp4", "-map_metadata", "-1", "-map_chapters", "-1",
]  # fmt: skip


def tail(sets: str, seg: str = "4") -> list[str]:
    return [
        "-fflags", "+bitexact", "-f", "dash", "-seg_duration", seg, "-use_template", "1", "-use_timeline", "1",
        "-dash_segment_type", "auto",
        "-init_seg_name", "init-$RepresentationID$.$ext$",
        "-media_seg_name", "seg-$RepresentationID$-$Number%05d$.$ext$",
        "-adaptation_sets", sets, "/out/job/manifest.mpd",
    ]  # fmt: skip


def video(codec: str, *sizes: tuple[int, int, int]) -> Ladder:
    return Ladder(
        codec,
        tuple(
            Rendition(f"{codec}-{h}p", codec, w, h, b, b * 3 // 2, b * 2, Fraction(30))
            for w, h, b in sizes
        ),
    )


AUDIO_ARGS = ["-map", "0:a:0", "-c:a", "aac", "-b:a", "128000", "-ac", "2", "-ar", "48000"]
KEYS_4S_30 = ["-g", "120", "-keyint_min", "120", "-force_key_frames", "expr:gte(t,n_forced*4)"]

CASES = [
    pytest.param(
        EncodeJob(SRC, OUT, video("h264", (1280, 720, 3_000_000), (854, 480, 1_500_000), (640, 360, 800_000)),
                  AUDIO, 4.0, Fraction(30)),
        HEAD + [
            "-filter_complex",
            # Cascaded: each rung scaled from the one above, lanczos (core/media/rungs.py VOD_SCALER).
            "[0:v]fps=30,split=1[s0]"
            ";[s0]scale=1280:720:flags=lanczos,setsar=1,format=yuv420p,split=2[o0][c0_1]"
            ";[c0_1]scale=854:480:flags=lanczos,setsar=1,format=yuv420p,split=2[v1][c1_2]"
            ";[c1_2]scale=640:360:flags=lanczos,setsar=1,format=yuv420p[v2];[o0]null[v0]",
            "-map", "[v0]", "-map", "[v1]", "-map", "[v2]",
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-sc_threshold", "0",
            # Slice threads by pixel share: 720p is 59 % of this ladder's pixels, round(5 x 0.59) = 3; the
            # largest rung's motion search is dia, no B-frames (rungs.LARGEST_RUNG_X264). The rungs between the
            # largest and the smallest x264 superfast (rungs.SMALL_RUNG_PRESET), no B-frames either
            # (SMALL_RUNG_X264); the smallest is spared: the family's veryfast (SPARE_SMALLEST_RUNG).
            "-x264-params:v:0", "sliced-threads=1:threads=3:stitchable=1:me=dia:bframes=0",
            "-x264-params:v:1", "sliced-threads=1:threads=1:stitchable=1:bframes=0", "-preset:v:1", "superfast",
            "-x264-params:v:2", "sliced-threads=1:threads=1:stitchable=1",
            *KEYS_4S_30,
            "-b:v:0", "3000000", "-maxrate:v:0", "4500000", "-bufsize:v:0", "6000000",
            "-b:v:1", "1500000", "-maxrate:v:1", "2250000", "-bufsize:v:1", "3000000",
            "-b:v:2", "800000", "-maxrate:v:2", "1200000", "-bufsize:v:2", "1600000",
            *AUDIO_ARGS,
        ] + tail("id=0,streams=0 id=1,streams=1 id=2,streams=2 id=3,streams=3"),
        {"0": "h264-720p", "1": "h264-480p", "2": "h264-360p", "3": "audio"},
        id="h264-3-rungs-audio",
    ),
    pytest.param(
        EncodeJob(SRC, OUT, video("h265", (1280, 720, 1_800_000)), None, 4.0, Fraction(30), threads=2),
        HEAD + [
            "-filter_complex", "[0:v]fps=30,split=1[s0];[s0]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p[v0]",
            "-map", "[v0]",
            "-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1",
            # min-keyint=1: forced keyframes are IDR wherever they fall (a short first segment's too).
            "-x265-params", "keyint=120:min-keyint=1:scenecut=0:open-gop=0:log-level=error",
            *KEYS_4S_30,
            "-b:v:0", "1800000", "-maxrate:v:0", "2700000", "-bufsize:v:0", "3600000",
            "-threads", "2",
        ] + tail("id=0,streams=0"),
        {"0": "h265-720p"},
        id="h265",
    ),
    pytest.param(
        EncodeJob(SRC, OUT, video("vp8", (640, 360, 960_000), (426, 240, 480_000)), None, 2.0, Fraction(25)),
        HEAD + [
            "-filter_complex",
            "[0:v]fps=25,split=1[s0]"
            ";[s0]scale=640:360:flags=bicubic,setsar=1,format=yuv420p,split=2[o0][c0_1]"
            ";[c0_1]scale=426:240:flags=bicubic,setsar=1,format=yuv420p[v1];[o0]null[v0]",
            "-map", "[v0]", "-map", "[v1]",
            "-c:v", "libvpx", "-deadline", "good", "-cpu-used", "5", "-auto-alt-ref", "0",
            "-g", "50", "-keyint_min", "50", "-force_key_frames", "expr:gte(t,n_forced*2)",
            "-b:v:0", "960000", "-maxrate:v:0", "1440000", "-bufsize:v:0", "1920000",
            "-b:v:1", "480000", "-maxrate:v:1", "720000", "-bufsize:v:1", "960000",
        ] + tail("id=0,streams=0 id=1,streams=1", seg="2"),
        {"0": "vp8-360p", "1": "vp8-240p"},
        id="vp8",
    ),
    pytest.param(
        # SVT-AV1: one level of parallelism (repeatable bytes), and no -maxrate (refused in VBR).
        EncodeJob(SRC, OUT, video("av1", (1280, 720, 1_800_000), (640, 360, 480_000)), AUDIO, 4.0, Fraction(30)),
        HEAD + [
            "-filter_complex",
            "[0:v]fps=30,split=1[s0]"
            ";[s0]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=2[o0][c0_1]"
            ";[c0_1]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v1];[o0]null[v0]",
            "-map", "[v0]", "-map", "[v1]",
            "-c:v", "libsvtav1", "-preset", "9", "-svtav1-params", "lp=1",
            *KEYS_4S_30,
            "-b:v:0", "1800000", "-bufsize:v:0", "3600000",
            "-b:v:1", "480000", "-bufsize:v:1", "960000",
            *AUDIO_ARGS,
        ] + tail("id=0,streams=0 id=1,streams=1 id=2,streams=2"),
        {"0": "av1-720p", "1": "av1-360p", "2": "audio"},
        id="av1-2-rungs-audio",
    ),
    pytest.param(
        EncodeJob(SRC, OUT, None, AUDIO, 4.0, None),
        HEAD + AUDIO_ARGS + tail("id=0,streams=0"),
        {"0": "audio"},
        id="audio-only",
    ),
    pytest.param(
        EncodeJob(SRC, OUT, video("h264", (320, 240, 400_000)), None, 2.5, Fraction(30000, 1001)),
        HEAD + [
            "-filter_complex",
            "[0:v]fps=30000/1001,split=1[s0];[s0]scale=320:240:flags=lanczos,setsar=1,format=yuv420p[v0]",
            "-map", "[v0]",
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-sc_threshold", "0",
            "-x264-params:v:0", "sliced-threads=1:threads=4:stitchable=1",
            "-g", "75", "-keyint_min", "75", "-force_key_frames", "expr:gte(t,n_forced*2.5)",
            "-b:v:0", "400000", "-maxrate:v:0", "600000", "-bufsize:v:0", "800000",
        ] + tail("id=0,streams=0", seg="2.5"),
        {"0": "h264-240p"},
        id="video-only-29.97",
    ),
    pytest.param(
        # A 1 s first segment: keyframes at 0, 1, 4, 8, ...; the video cuts at each (seg_duration half the
        # shortest interval, min(1, 4 - 1) / 2); the audio keeps 4 s of its own (and is cut with the video).
        EncodeJob(SRC, OUT, video("h264", (640, 360, 800_000), (426, 240, 400_000)), AUDIO, 4.0, Fraction(30),
                  first_segment_duration=1.0),
        HEAD + [
            "-filter_complex",
            "[0:v]fps=30,split=1[s0]"
            ";[s0]scale=640:360:flags=lanczos,setsar=1,format=yuv420p,split=2[o0][c0_1]"
            ";[c0_1]scale=426:240:flags=lanczos,setsar=1,format=yuv420p[v1];[o0]null[v0]",
            "-map", "[v0]", "-map", "[v1]",
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-sc_threshold", "0",
            # Two sizes: 360p is 69 % of the pixels, round(5 x 0.69) = 3 slices; the smaller is not spared, and
            # at superfast (no lookahead) it keeps one slice thread (rungs.NO_LOOKAHEAD_PRESETS), not its 2.
            "-x264-params:v:0", "sliced-threads=1:threads=3:stitchable=1:me=dia:bframes=0",
            "-x264-params:v:1", "sliced-threads=1:threads=1:stitchable=1:bframes=0", "-preset:v:1", "superfast",
            "-g", "120", "-keyint_min", "120",
            "-force_key_frames", "expr:gte(t,if(lt(n_forced,2),n_forced*1,(n_forced-1)*4))",
            "-b:v:0", "800000", "-maxrate:v:0", "1200000", "-bufsize:v:0", "1600000",
            "-b:v:1", "400000", "-maxrate:v:1", "600000", "-bufsize:v:1", "800000",
            *AUDIO_ARGS,
        ] + tail("id=0,seg_duration=0.5,streams=0 id=1,seg_duration=0.5,streams=1 id=2,streams=2"),
        {"0": "h264-360p", "1": "h264-240p", "2": "audio"},
        id="h264-short-first",
    ),
    pytest.param(
        # 3 s first of 4: the second segment (1 s) is the shortest interval.
        EncodeJob(SRC, OUT, video("h265", (640, 360, 500_000)), None, 4.0, Fraction(25), first_segment_duration=3.0),
        HEAD + [
            "-filter_complex", "[0:v]fps=25,split=1[s0];[s0]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v0]",
            "-map", "[v0]",
            "-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1",
            "-x265-params", "keyint=100:min-keyint=1:scenecut=0:open-gop=0:log-level=error",
            "-g", "100", "-keyint_min", "100",
            "-force_key_frames", "expr:gte(t,if(lt(n_forced,2),n_forced*3,(n_forced-1)*4))",
            "-b:v:0", "500000", "-maxrate:v:0", "750000", "-bufsize:v:0", "1000000",
        ] + tail("id=0,seg_duration=0.5,streams=0"),
        {"0": "h265-360p"},
        id="h265-short-first-3-of-4",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("job", "argv", "streams"), CASES)
def test_build_encode_argv(job, argv, streams):
    assert build_encode_argv("ffmpeg", job) == argv
    assert stream_map(job) == streams


def test_job_needs_something_to_encode():
    with pytest.raises(ValueError):
        build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, None, None, 4.0, None))


def test_every_input_of_a_windowed_encode_is_whitelisted():
    """Chunked audio reads the source a second time; that open gets the same `file,pipe` whitelist."""
    job = EncodeJob(SRC, OUT, video("h264", (320, 240, 400_000)), AUDIO, 2.0, Fraction(30), start=0.0, length=8.0)
    argv = build_encode_argv("ffmpeg", job)
    inputs = [i for i, a in enumerate(argv) if a == "-i"]
    assert len(inputs) == 2
    for at in inputs:
        opts = argv[:at]
        since_last_input = opts[max((j for j, a in enumerate(opts) if a == "-i"), default=-1) + 1:]
        assert since_last_input[since_last_input.index("-protocol_whitelist") + 1] == "file,pipe"


def test_more_audio_tracks_map_their_source_streams_exact():
    default = Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48000, language="fr",
                        default=True, source_stream=1)
    english = Rendition("audio-2", "aac", bitrate=128_000, channels=2, sample_rate=48000, language="en")
    mono = Rendition("audio-3", "aac", bitrate=64_000, channels=1, sample_rate=44100, source_stream=2)
    job = EncodeJob(SRC, OUT, None, default, 4.0, None, more_audio=(english, mono))
    assert build_encode_argv("ffmpeg", job) == HEAD + [
        "-map", "0:a:1", "-c:a", "aac", "-b:a", "128000", "-ac", "2", "-ar", "48000",
        # Per output audio stream: the specific specifier overrides the plain one above.
        "-map", "0:a:0", "-b:a:1", "128000", "-ac:a:1", "2", "-ar:a:1", "48000",
        "-map", "0:a:2", "-b:a:2", "64000", "-ac:a:2", "1", "-ar:a:2", "44100",
    ] + tail("id=0,streams=0 id=1,streams=1 id=2,streams=2")
    assert stream_map(job) == {"0": "audio", "1": "audio-2", "2": "audio-3"}


def test_more_audio_needs_a_default_track():
    with pytest.raises(ValueError, match="more_audio"):
        build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, video("h264", (640, 360, 800_000)), None, 4.0,
                                              Fraction(30), more_audio=(AUDIO,)))


def test_capped_crf_rung_exact():
    """A per-title CRF rung: -crf under the table's cap; -b:v is the cap's nominal rate (the init's btrt)."""
    crf = Rendition("h264-480p", "h264", 854, 480, 412_000, 2_250_000, 3_000_000, Fraction(30), crf=24.5)
    abr = Rendition("h264-360p", "h264", 640, 360, 800_000, 1_200_000, 1_600_000, Fraction(30))
    argv = build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, Ladder("h264", (crf, abr)), None, 4.0, Fraction(30)))
    rate = argv.index("-force_key_frames") + 2
    assert argv[rate:argv.index("-fflags")] == [
        "-crf:v:0", "24.5", "-b:v:0", "1500000", "-maxrate:v:0", "2250000", "-bufsize:v:0", "3000000",
        "-b:v:1", "800000", "-maxrate:v:1", "1200000", "-bufsize:v:1", "1600000",
    ]  # fmt: skip


def test_av1_capped_crf_rung_exact():
    """SVT-AV1's capped CRF: -crf with -maxrate (no -b:v: the encoder would not open); VBR rungs keep no maxrate."""
    crf = Rendition("av1-720p", "av1", 1280, 720, 1_673_000, 3_375_000, 4_500_000, Fraction(30), crf=33.2)
    vbr = Rendition("av1-360p", "av1", 640, 360, 600_000, 900_000, 1_200_000, Fraction(30))
    argv = build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, Ladder("av1", (crf, vbr)), None, 4.0, Fraction(30)))
    rate = argv.index("-force_key_frames") + 2
    assert argv[rate:argv.index("-fflags")] == [
        "-crf:v:0", "33.2", "-maxrate:v:0", "3375000", "-bufsize:v:0", "4500000",
        "-b:v:1", "600000", "-bufsize:v:1", "1200000",
    ]  # fmt: skip


@pytest.mark.parametrize(("codec", "first", "segment"), [
    ("vp8", 1.0, 4.0),  # libvpx may place keyframes of its own: equal segments
    ("av1", 1.0, 4.0),
    ("h264", 4.0, 4.0),  # not shorter
    ("h264", 6.0, 4.0),
    ("h264", 0.0, 4.0),
    ("h264", None, 4.0),
])
def test_no_short_first_segment_where_it_does_not_apply(codec, first, segment):
    job = EncodeJob(SRC, OUT, video(codec, (640, 360, 800_000)), None, segment, Fraction(30),
                    first_segment_duration=first)
    argv = build_encode_argv("ffmpeg", job)
    assert not job.short_first
    assert argv[argv.index("-force_key_frames") + 1] == "expr:gte(t,n_forced*4)"
    assert argv[argv.index("-adaptation_sets") + 1] == "id=0,streams=0"


def test_a_later_chunk_cannot_take_a_short_first_segment():
    """Its forced keyframes count from the chunk's start: a short first would cut mid-asset."""
    job = EncodeJob(SRC, OUT, video("h264", (320, 240, 400_000)), None, 2.0, Fraction(30), start=8.0, length=8.0,
                    output_ts_offset=8.0, first_segment_duration=1.0)
    with pytest.raises(ValueError, match="shorter first segment"):
        build_encode_argv("ffmpeg", job)


def test_x264_lookahead_goes_into_every_rungs_params_exact():
    """Chunk 0 of a chunked encode takes a shorter lookahead (core/services/chunked.py FAST_START_LOOKAHEAD)."""
    job = EncodeJob(SRC, OUT, video("h264", (1280, 720, 3_000_000), (640, 360, 800_000)), None, 4.0, Fraction(30),
                    x264_lookahead=5)
    argv = build_encode_argv("ffmpeg", job)
    params = [argv[i + 1] for i, a in enumerate(argv) if a.startswith("-x264-params")]
    assert params == ["sliced-threads=1:threads=4:stitchable=1:rc-lookahead=5:me=dia:bframes=0",
                      "sliced-threads=1:threads=1:stitchable=1:rc-lookahead=5:bframes=0"]
    without = build_encode_argv("ffmpeg", replace(job, x264_lookahead=None))
    assert [a for a in without if "rc-lookahead" in a] == []


def test_a_small_rung_preset_goes_into_the_argv_exact(monkeypatch):
    from core.media import rungs

    job = EncodeJob(SRC, OUT, video("h264", (1280, 720, 3_000_000), (640, 360, 800_000)), None, 4.0, Fraction(30))
    argv = build_encode_argv("ffmpeg", job)
    assert [a for i, a in enumerate(argv) if argv[i - 1].startswith("-preset")] == ["veryfast", "superfast"]
    assert argv[argv.index("-preset:v:1") - 2:argv.index("-preset:v:1") + 2] == [
        "-x264-params:v:1", "sliced-threads=1:threads=1:stitchable=1:bframes=0", "-preset:v:1", "superfast"]
    # Other families keep their one preset; None: every rung the family's.
    h265 = build_encode_argv("ffmpeg", replace(job, ladder=video("h265", (1280, 720, 3_000_000), (640, 360, 800_000))))
    assert [a for a in h265 if a.startswith("-preset")] == ["-preset"]
    monkeypatch.setattr(rungs, "SMALL_RUNG_PRESET", None)
    assert [a for a in build_encode_argv("ffmpeg", job) if a.startswith("-preset")] == ["-preset"]


def _rung_settings(argv: list[str]) -> list[tuple[str, str]]:
    """(x264-params, preset) of each video rung in an encode argv."""
    n = sum(1 for a in argv if a.startswith("-x264-params:v:"))
    return [(argv[argv.index(f"-x264-params:v:{i}") + 1],
             argv[argv.index(f"-preset:v:{i}") + 1] if f"-preset:v:{i}" in argv else "veryfast") for i in range(n)]


def test_some_rungs_of_a_whole_ladder_are_encoded_as_in_it(monkeypatch):
    from core.media import rungs

    monkeypatch.setattr(rungs, "SMALL_RUNG_PRESET", "superfast")
    whole = video("h264", (1920, 1080, 5_000_000), (1280, 720, 3_000_000), (640, 360, 800_000))
    some = Ladder("h264", whole.renditions[1:])
    full = _rung_settings(build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, whole, None, 4.0, Fraction(30))))
    alone = _rung_settings(build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, some, None, 4.0, Fraction(30))))
    within = _rung_settings(build_encode_argv(
        "ffmpeg", EncodeJob(SRC, OUT, Ladder("h264", some.renditions, within=whole.renditions), None, 4.0,
                            Fraction(30))))
    assert within == full[1:] == [("sliced-threads=1:threads=1:stitchable=1:bframes=0", "superfast"),
                                  ("sliced-threads=1:threads=1:stitchable=1", "veryfast")]  # the smallest: spared
    # 720p, the largest of two: its share of the pixels, and the largest rung's options.
    assert alone[0] == ("sliced-threads=1:threads=4:stitchable=1:me=dia:bframes=0", "veryfast")


def test_per_title_trials_encode_each_rung_as_the_ladder_will(monkeypatch, tmp_path):
    """A trial of some sizes (crf_trials' steps 3-4) gets each rung's preset and threads from the whole ladder."""
    from core.media import analysis, rungs

    monkeypatch.setattr(rungs, "SMALL_RUNG_PRESET", "superfast")
    ran: list[list[str]] = []

    class Stop(Exception):
        pass

    def fake_run(argv, **kw):
        ran.append(argv)
        raise Stop

    monkeypatch.setattr(analysis, "run_ffmpeg", fake_run)
    whole = video("h264", (1920, 1080, 5_000_000), (1280, 720, 3_000_000), (640, 360, 800_000))
    trials = analysis._Trials("ffmpeg", SRC, whole, [analysis.Sample(10.0, 2.0)], segment_duration=4.0,
                              work_dir=tmp_path, size=(1920, 1080), cancel=None, timeout=None, nice=0)
    for subset in (whole.renditions, whole.renditions[1:]):
        with pytest.raises(Stop):
            trials.measure(tuple(replace(r, crf=23.0) for r in subset), "crf")
    full, some = (_rung_settings(argv) for argv in ran)
    assert some == full[1:] == [("sliced-threads=1:threads=1:stitchable=1:bframes=0", "superfast"),
                                ("sliced-threads=1:threads=1:stitchable=1", "veryfast")]
    assert full[0] == ("sliced-threads=1:threads=3:stitchable=1:me=dia:bframes=0", "veryfast")


def test_the_storyboard_is_a_second_output_cut_from_a_rungs_picture_exact():
    tap = StoryboardTap(2, "storyboard-h264-360p-i1000-160x90-10x1.jpg",
                        "fps=1/1,scale=160:90:flags=bicubic,setsar=1,tile=10x1")
    ladder = video("h264", (1280, 720, 3_000_000), (854, 480, 1_500_000), (640, 360, 800_000))
    without = build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, ladder, AUDIO, 4.0, Fraction(30)))
    argv = build_encode_argv("ffmpeg", EncodeJob(SRC, OUT, ladder, AUDIO, 4.0, Fraction(30), storyboard=tap))
    graph = argv[argv.index("-filter_complex") + 1]
    # The smallest rung's picture is split once more, to the sheet's chain; everything else is as without.
    assert graph == (
        "[0:v]fps=30,split=1[s0]"
        ";[s0]scale=1280:720:flags=lanczos,setsar=1,format=yuv420p,split=2[o0][c0_1]"
        ";[c0_1]scale=854:480:flags=lanczos,setsar=1,format=yuv420p,split=2[v1][c1_2]"
        ";[c1_2]scale=640:360:flags=lanczos,setsar=1,format=yuv420p,split=2[v2][sb]"
        ";[sb]fps=1/1,scale=160:90:flags=bicubic,setsar=1,tile=10x1[vsb]"
        ";[o0]null[v0]"
    )
    at = argv.index("-filter_complex") + 1
    assert argv[:at] + argv[at + 1:len(without)] == without[:at] + without[at + 1:]
    assert argv[len(without):] == [
        "-map", "[vsb]", "-map_metadata", "-1", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3",
        "-pix_fmt", "yuvj420p", "-f", "image2", "-update", "1", "/out/job/" + tap.name,
    ]  # fmt: skip


def test_a_storyboard_needs_a_whole_video_encode():
    tap = StoryboardTap(0, "s.jpg", "fps=1/1")
    ladder = video("h264", (640, 360, 800_000))
    for job in (EncodeJob(SRC, OUT, None, AUDIO, 4.0, None, storyboard=tap),
                EncodeJob(SRC, OUT, ladder, None, 4.0, Fraction(30), start=8.0, length=8.0, storyboard=tap),
                EncodeJob(SRC, OUT, ladder, None, 4.0, Fraction(30), storyboard=replace(tap, rung=1))):
        with pytest.raises(ValueError, match="storyboard"):
            build_encode_argv("ffmpeg", job)
