"""Time-to-playable benchmark (not run by CI): upload a long source, wait until it plays.

    .venv/bin/python bench/playable.py [--sources footage-720p-600,footage-1080p-600,footage-720p-3600]
                                       [--repeat 5] [--configs default,poll0.1,seg2,poll0.1+seg2]
                                       [--compare-tree /tmp/main-snapshot]

Target (issue #20): upload complete -> `playable` in under 3 s (median of 5)
for 10-minute 720p and 1080p real footage and a 60-minute source, on the
default (chunked) path, on a 2-core machine.

What it does, per source and config:
1. Makes (once, cached in --cache-dir) each source, named KIND-HEIGHTp-SECONDS:
   - `footage`: real film footage a package ships, the Megamind trailer clip
     of Debian's `opencv-doc` (/usr/share/doc/opencv-doc/examples/data/Megamind.avi:
     11.3 s of 720x528 23.976 fps MPEG-4 with AC-3 stereo; `apt-get install
     opencv-doc`, or --footage PATH). It is cropped to 16:9, scaled to the
     height, made 24 fps (a 60 s chunk must be a whole number of frames, or the
     source is not chunked), looped 5x into a ~56 s piece encoded once (x264
     ultrafast CRF 23, AAC 128k), then that piece is repeated by stream copy
     (`-stream_loop`) to the length, which takes seconds.
   - `testsrc`: testsrc2 + a sine, x264 ultrafast ~1 Mbit/s, 30 fps (the old default).
2. Starts what `abr dev` starts, on the embedded defaults in a temp
   ABR_DATA_DIR: the schema is migrated, then `python -m cli.main api` (uvicorn)
   and `python -m cli.main worker --queues transcode,default --concurrency 1`
   (SQLite database, kombu SQLAlchemy broker on SQLite, local storage),
   loopback on a free port, and waits for /healthz and the worker's `ready`.
3. Uploads with httpx (multipart, as `abr upload` would). Times kept:
   `start` (request started), `sent` (httpx read the file to EOF: the last
   body chunk is handed to the socket; on loopback that is the last byte
   sent), `201` (response received; the API stores the body, probes it with
   PyAV, creates the rows and enqueues before answering).
4. Polls every 50 ms, in two threads: GET /v1/assets/{id} until
   `playable` is true, and the origin's /play/{pid}/master.m3u8 until it
   answers 200 with a variant whose media playlist lists a segment and whose
   init and first segment both answer 200 (what a player needs to start).
5. A third thread watches the data dir every 5 ms for the break-down:
   work/<id>/ (the worker claimed the job: broker dispatch done), work/<id>/f0c0/
   (chunked) or work/<id>/family-0/ (unchunked): second probe + plan done,
   ffmpeg about to start; the first file ffmpeg writes there, each track's
   first segment in storage, and the first presentation.json.
6. DELETEs the asset (the worker notices within ~1 s and stops ffmpeg), waits
   until the worker is idle, repeats; then stops both processes (process
   groups) and removes the temp dir.

Reported: every run's break-down, then per source and config the median,
min and max of upload-complete (`sent`) -> `playable` over the runs.

Configs (each on a fresh stack):
  default        the product as shipped (4 s segments, the broker polling the worker sets)
  pollX          worker started through a wrapper that sets kombu's virtual
                 `Transport.polling_interval = X` before Celery starts (the
                 SQLA transport cannot take it in broker_transport_options:
                 it passes them to create_engine, which raises)
  segN           upload settings {"segment_duration": N} (API setting, >= 1)
  firstN         ABR_FIRST_SEGMENT_DURATION=N for the API and worker (first0: every segment equal;
                 first1: 1 s; without it, the tree's default: 0.5 s since the short first
                 segment)
  combined with '+', e.g. poll0.1+seg2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import imageio_ffmpeg

ROOT = Path(__file__).resolve().parent.parent
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
API_KEY = "bench-playable-key-0123456789"
POLL_S = 0.05
WORKER_WRAPPER = (
    "import sys, kombu.transport.virtual.base as b; b.Transport.polling_interval = float(sys.argv[1]); "
    "from cli.main import main; sys.exit(main(sys.argv[2:]))"
)


# -- source ---------------------------------------------------------------------------------------


FOOTAGE = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")  # Debian `opencv-doc`
SOURCE_SPEC = re.compile(r"^(?P<kind>footage|testsrc)-(?P<height>\d{3,4})p-(?P<seconds>\d+)$")
BASE = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]


def make_source(cache: Path, spec: str, footage: Path = FOOTAGE) -> Path:
    """The source named `spec` (KIND-HEIGHTp-SECONDS), made once under `cache`: a ~60 s piece encoded
    once, then repeated by stream copy (`-stream_loop`), which takes seconds instead of encoding it all."""
    m = SOURCE_SPEC.match(spec)
    if m is None:
        raise SystemExit(f"bad source {spec!r}: use KIND-HEIGHTp-SECONDS, KIND footage or testsrc")
    kind, height, duration = m["kind"], int(m["height"]), float(m["seconds"])
    width = (height * 16 // 9 + 1) // 2 * 2
    path = cache / f"{spec}.mp4"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    piece, tmp = cache / f"piece-{kind}-{height}p.mp4", path.with_suffix(".tmp.mp4")
    t = time.monotonic()
    if not piece.exists():
        if kind == "footage":
            if not footage.is_file():
                raise SystemExit(f"no footage at {footage}: `apt-get install opencv-doc` (Debian ships the "
                                 "Megamind trailer clip in it), or pass --footage PATH")
            # 5 loops of the 11.26 s clip cut to exactly 56 s (1344 frames, 2625 AAC frames), both streams from
            # 0: the copies then join without a gap and the whole file reads as exactly 24 fps. Crop 720x528 to
            # 16:9, scale, 24 fps (a 60 s chunk is then 1440 frames: chunkable).
            inputs = ["-stream_loop", "4", "-i", str(footage), "-t", "56"]
            vf = ["-vf", f"crop=iw:trunc(iw*9/16/2)*2,scale={width}:{height}:flags=bicubic,fps=24,setsar=1,"
                         "setpts=N/24/TB", "-af", "aresample=48000,asetpts=N/SR/TB"]
            video = ["-crf", "23", "-g", "48"]
        else:
            inputs = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=30",
                      "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "60"]
            vf = ["-map", "0:v", "-map", "1:a"]
            video = ["-b:v", "1M", "-g", "60"]
        subprocess.run([*BASE, *inputs, *vf, "-c:v", "libx264", "-preset", "ultrafast", *video,
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000",
                        str(piece)], check=True, timeout=1800)
    piece_s = float(probe_duration(piece))
    loops = max(0, int(-(-duration // piece_s)) - 1)
    # Video and audio looped as two inputs: `-stream_loop` shifts each repeat by its input's longest stream,
    # and the AAC priming frame makes the audio 21 ms longer, which would leave a gap in the video (not CFR).
    video, audio = piece.with_suffix(".video.mp4"), piece.with_suffix(".audio.mp4")
    subprocess.run([*BASE, "-i", str(piece), "-map", "0:v", "-c", "copy", str(video)], check=True, timeout=600)
    subprocess.run([*BASE, "-i", str(piece), "-map", "0:a", "-c", "copy", str(audio)], check=True, timeout=600)
    subprocess.run([*BASE, "-stream_loop", str(loops), "-i", str(video), "-stream_loop", str(loops), "-i", str(audio),
                    "-map", "0:v", "-map", "1:a", "-t", str(duration), "-c", "copy", "-movflags", "+faststart",
                    str(tmp)], check=True, timeout=1800)
    video.unlink()
    audio.unlink()
    tmp.rename(path)
    print(f"made {path} ({path.stat().st_size / 1e6:.0f} MB, {path.stat().st_size * 8 / duration / 1e6:.1f} "
          f"Mbit/s) in {time.monotonic() - t:.0f} s", flush=True)
    return path


def probe_duration(path: Path) -> float:
    from core.media.probe import probe

    return probe(path).duration


# -- the stack ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    data: Path
    url: str
    procs: list[subprocess.Popen]
    worker_log: Path

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # whatever is left in the group (pool, ffmpeg)
            except ProcessLookupError:
                pass
            p.wait()


def start_stack(data: Path, poll: float | None, tree: Path = ROOT, extra_env: dict[str, str] | None = None) -> Stack:
    data.mkdir(parents=True)
    port = free_port()
    env = dict(os.environ, ABR_DATA_DIR=str(data), ABR_HOST="127.0.0.1", ABR_PORT=str(port),
               ABR_API_KEYS=API_KEY, ABR_RATE_LIMIT="0", ABR_ENV="development", **(extra_env or {}))
    subprocess.run([sys.executable, "-m", "cli.main", "migrate"], cwd=tree, env=env, check=True,
                   capture_output=True, timeout=120)
    api_log, worker_log = data.parent / "api.log", data.parent / "worker.log"
    procs = []
    with open(api_log, "wb") as alog, open(worker_log, "wb") as wlog:
        procs.append(subprocess.Popen([sys.executable, "-m", "cli.main", "api"], cwd=tree, env=env,
                                      stdout=alog, stderr=subprocess.STDOUT, start_new_session=True))
        worker = ["worker", "--queues", "transcode,default", "--concurrency", "1"]
        argv = ([sys.executable, "-c", WORKER_WRAPPER, str(poll), *worker] if poll is not None
                else [sys.executable, "-m", "cli.main", *worker])
        procs.append(subprocess.Popen(argv, cwd=tree, env=env, stdout=wlog, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    stack = Stack(data, f"http://127.0.0.1:{port}", procs, worker_log)
    try:
        deadline = time.monotonic() + 90
        api_ok = worker_ok = False
        while time.monotonic() < deadline and not (api_ok and worker_ok):
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a process exited:\n" + api_log.read_text()[-2000:] + worker_log.read_text()[-2000:])
            if not api_ok:
                try:
                    api_ok = httpx.get(f"{stack.url}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    pass
            worker_ok = worker_ok or re.search(r"\bready\.", worker_log.read_text(errors="replace")) is not None
            time.sleep(0.1)
        if not (api_ok and worker_ok):
            raise RuntimeError(f"stack not ready (api {api_ok}, worker {worker_ok}):\n" + worker_log.read_text()[-3000:])
    except BaseException:
        stack.stop()
        raise
    return stack


# -- one measurement ------------------------------------------------------------------------------


class EofTimedFile:
    """A binary file whose read() notes when it first returns b'' (httpx has read the whole body)."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.eof_at: float | None = None

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        if not data and self.eof_at is None:
            self.eof_at = time.monotonic()
        return data

    def seek(self, *a):
        return self._fh.seek(*a)

    def tell(self):
        return self._fh.tell()

    def fileno(self):
        return self._fh.fileno()

    def close(self):
        self._fh.close()


@dataclass
class Marks:
    t: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, name: str, when: float | None = None) -> None:
        with self.lock:
            self.t.setdefault(name, time.monotonic() if when is None else when)


def watch_fs(data: Path, marks: Marks, stop: threading.Event, known: set[str]) -> None:
    work, media = data / "work", data / "storage" / "media"
    asset = None
    while not stop.is_set():
        if asset is None and work.is_dir():
            new = [d for d in os.listdir(work) if d not in known]
            if new:
                asset = new[0]
                marks.set("worker_claimed")
        if asset is not None:
            fam = work / asset / "f0c0"
            if not fam.is_dir():
                fam = work / asset / "family-0"
            if "ffmpeg_start" not in marks.t and fam.is_dir():
                marks.set("ffmpeg_start")
            for piece in (fam, work / asset / "audio"):
                try:
                    names = os.listdir(piece)
                except FileNotFoundError:
                    continue
                if names and piece == fam:
                    marks.set("ffmpeg_first_file")
                # What ffmpeg wrote, before the worker moves it (the dash muxer renames a finished file into
                # place): each output stream's init segment and first media segment, named by piece and stream.
                for n in names:
                    if m := re.fullmatch(r"(init|seg)-(\d+)(-00001)?\.m4s", n):
                        if m[1] == "init" or m[3]:
                            marks.set(f"{m[1]}:{piece.name}/{m[2]}")
            m = media / asset
            if m.is_dir():
                if "presentation_written" not in marks.t and (m / "presentation.json").exists():
                    marks.set("presentation_written")
                for track in os.listdir(m):
                    if f"seg1:{track}" not in marks.t and (m / track).is_dir() and \
                            any(n.startswith("00001.") for n in os.listdir(m / track)):
                        marks.set(f"seg1:{track}")
        time.sleep(0.005)


def poll_asset(client: httpx.Client, asset_id: str, marks: Marks, stop: threading.Event,
               until_ready: bool = False) -> None:
    """Until `playable` (or errored); with `until_ready`, on until `ready`, polled every 0.5 s once playable
    (a long encode: minutes, so the finer poll would only load the API)."""
    while not stop.is_set():
        r = client.get(f"/v1/assets/{asset_id}")
        if r.status_code == 200:
            body = r.json()
            if body["status"] == "processing":
                marks.set("status_processing")
            if body["status"] == "errored":
                marks.set("errored")
                return
            if body["playable"]:
                marks.set("asset_playable")
                if not until_ready:
                    return
            if body["status"] == "ready":
                marks.set("asset_ready")
                return
        time.sleep(0.5 if until_ready and "asset_playable" in marks.t else POLL_S)


def poll_master(client: httpx.Client, pid: str, marks: Marks, stop: threading.Event) -> None:
    """Until a player could start: a video variant (RESOLUTION) whose media playlist lists a segment, the
    audio group's playlists too, and each one's init and first segment answer 200."""
    base = f"/play/{pid}/"

    def playable(uri: str) -> bool:
        m = client.get(base + uri.split("?")[0])
        if m.status_code != 200 or "#EXTINF" not in m.text:
            return False
        init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', m.text)
        seg = next(ln for ln in m.text.splitlines() if ln and not ln.startswith("#"))
        folder = uri.rsplit("/", 1)[0] + "/" if "/" in uri else ""
        return all(client.get(base + folder + u.split("?")[0]).status_code == 200
                   for u in ([init.group(1)] if init else []) + [seg])

    while not stop.is_set():
        r = client.get(base + "master.m3u8")
        if r.status_code == 200 and "#EXT-X-STREAM-INF" in r.text:
            marks.set("master_has_variant")
            lines = r.text.splitlines()
            variants = [lines[i + 1] for i, ln in enumerate(lines)
                        if ln.startswith("#EXT-X-STREAM-INF") and "RESOLUTION=" in ln]
            audio = re.findall(r'#EXT-X-MEDIA:TYPE=AUDIO.*?URI="([^"]+)"', r.text)
            if not variants:
                marks.set("master_without_video")  # a player would play sound only, for good
            elif all(playable(u) for u in variants[:1] + audio):
                marks.set("master_playable")
                return
        time.sleep(POLL_S)


def _profile_label(cmd: str, thread: str) -> str:
    """What a thread is, for the --profile break-down: ffmpeg's threads by piece and name, the rest by process."""
    argv0 = cmd.split(" ", 1)[0]
    if "ffmpeg" in argv0:
        piece = "f0c0" if "/f0c0/" in cmd else "audio" if "/audio/" in cmd else "other"
        return f"ffmpeg {piece} {thread}"
    if " api" in cmd:
        return "api"
    if "ffmpeg" in cmd:
        return "other: " + cmd[:60]
    return "worker" if "worker" in cmd else "other: " + cmd[:60]


def profile_report(sampler, t: dict[str, float]) -> dict:
    """Chunk 0's ffmpeg from its exec: each stream's init and first segment, CPU by thread until the last first
    segment, and the whole stack's CPU from 201 until playable, with what the rest of the machine used."""
    start = sampler.first_seen("/f0c0/")
    out: dict = {"ffmpeg_exec_from_201": round(start - t["201"], 3) if start else None,
                 "f0c0_argv": sampler.cmdline("/f0c0/")}
    if start is None:
        return out
    audio = sampler.first_seen("/audio/manifest.mpd")
    out["audio_exec_from_201"] = round(audio - t["201"], 3) if audio else None
    out["files_from_ffmpeg_exec"] = {k: round(v - start, 3) for k, v in sorted(t.items(), key=lambda kv: kv[1])
                                     if k.startswith(("init:", "seg:"))}
    firsts = [v for k, v in t.items() if k.startswith("seg:f0c0/")]
    if firsts:
        end = max(firsts)
        cpu = sampler.window(start, end, _profile_label)
        out["cpu_exec_to_last_first_segment"] = {"wall": round(end - start, 3),
                                                 **{k: round(v, 3) for k, v in sorted(cpu.items())}}
        # Each of chunk 0's ffmpeg threads until its first segments: on a CPU, waiting for one, or blocked.
        inits = [v for k, v in t.items() if k.startswith("init:f0c0/")]
        keep = lambda name: name.startswith("ffmpeg f0c0 ")  # noqa: E731
        if inits:
            out["threads_exec_to_init"] = sampler.states(start, min(inits), _profile_label, keep)
            out["threads_init_to_last_first_segment"] = sampler.states(min(inits), end, _profile_label, keep)
    if "asset_playable" in t:
        cpu = sampler.window(t["201"], t["asset_playable"], _profile_label)
        out["cpu_201_to_playable"] = {"wall": round(t["asset_playable"] - t["201"], 3),
                                      **{k: round(v, 3) for k, v in sorted(cpu.items())}}
    return out


def measure_once(stack: Stack, source: Path, segment: float | None, timeout: float, profile: bool = False,
                 settings: dict | None = None, until_ready: bool = False) -> dict:
    """One upload, timed until playable (`until_ready`: until ready too), then deleted. `settings`: more
    upload settings (e.g. {"ladder": "fixed"}); `timeout` counts from the 201."""
    marks = Marks()
    sampler = None
    if profile:
        from bench.procprof import Sampler

        sampler = Sampler({p.pid for p in stack.procs})
        sampler.start()
    stop = threading.Event()
    watch_stop = threading.Event()  # the 5 ms watcher: stopped at playable when waiting for ready (minutes of CPU)
    work = stack.data / "work"
    known = set(os.listdir(work)) if work.is_dir() else set()
    watcher = threading.Thread(target=watch_fs, args=(stack.data, marks, watch_stop, known), daemon=True)
    watcher.start()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    load = os.getloadavg()
    with httpx.Client(base_url=stack.url, headers=headers, timeout=120) as client, \
            httpx.Client(base_url=stack.url, timeout=30) as player:
        fh = EofTimedFile(source)
        settings = {**({"segment_duration": segment} if segment else {}), **(settings or {})}
        data = {"settings": json.dumps(settings)} if settings else {}
        t_start = time.monotonic()
        r = client.post("/v1/assets", files={"file": (source.name, fh, "video/mp4")}, data=data)
        t_201 = time.monotonic()
        fh.close()
        if r.status_code != 201:
            stop.set()
            watch_stop.set()
            raise RuntimeError(f"upload failed: {r.status_code} {r.text}")
        asset = r.json()
        asset_id, pid = asset["id"], asset["playback_ids"][0]["id"]
        marks.set("start", t_start)
        marks.set("sent", fh.eof_at)
        marks.set("201", t_201)
        threads = [threading.Thread(target=poll_asset, args=(client, asset_id, marks, stop, until_ready),
                                    daemon=True),
                   threading.Thread(target=poll_master, args=(player, pid, marks, stop), daemon=True)]
        for t in threads:
            t.start()
        if until_ready:
            # Playable first (the master poll ends there), said at once: ready can be an hour later.
            threads[1].join(timeout=max(0.1, t_201 + timeout - time.monotonic()))
            time.sleep(0.05)
            watch_stop.set()
            print(f"[{asset_id}] playable: " + json.dumps({k: round(v - t_201, 3) for k, v in marks.t.items()}),
                  flush=True)
        for t in threads:
            t.join(timeout=max(0.1, t_201 + timeout - time.monotonic()))
        time.sleep(0.05)
        stop.set()
        watch_stop.set()
        watcher.join(timeout=2)
        if sampler is not None:
            sampler.stop()
        # Stop the encode (the worker sees the asset gone within ~1 s) and wait for the worker to be idle.
        client.delete(f"/v1/assets/{asset_id}")
        deadline = time.monotonic() + 60
        while (work / asset_id).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        # The chunk tasks it sent are still queued ahead of the next upload (one per minute of source): the
        # worker drops each ("not needed"), a broker round trip apiece. Wait for the queue to drain, so the
        # next run's dispatch is its own.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and \
                'abr_queue_depth{queue="transcode"} 0.0' not in client.get("/metrics").text:
            time.sleep(0.2)
    t = marks.t
    rel = {k: round(v - t["201"], 3) for k, v in sorted(t.items(), key=lambda kv: kv[1])}
    out = {"asset": asset_id, "load1": round(load[0], 2), "marks_from_201": rel,
           "upload_s": round(t["sent"] - t["start"], 3), "sent_to_201_s": round(t["201"] - t["sent"], 3),
           "monotonic_201": t["201"]}
    for name in ("asset_playable", "master_playable", "asset_ready"):
        if name in t:
            out[f"{name}_from_201"] = round(t[name] - t["201"], 3)
            out[f"{name}_from_sent"] = round(t[name] - t["sent"], 3)
            out[f"{name}_from_start"] = round(t[name] - t["start"], 3)
    segs = [v for k, v in t.items() if k.startswith("seg1:")]
    if "worker_claimed" in t:
        out["dispatch_s"] = round(t["worker_claimed"] - t["201"], 3)
    if "worker_claimed" in t and "ffmpeg_start" in t:
        out["probe_plan_s"] = round(t["ffmpeg_start"] - t["worker_claimed"], 3)
    if "ffmpeg_start" in t and segs:
        out["first_segments_s"] = round(max(segs) - t["ffmpeg_start"], 3)
    if segs and "asset_playable" in t:
        out["publish_to_api_s"] = round(t["asset_playable"] - max(segs), 3)
    if sampler is not None:
        out["profile"] = profile_report(sampler, t)
    return out


# -- main -----------------------------------------------------------------------------------------


def parse_config(name: str) -> tuple[float | None, float | None, dict[str, str]]:
    """(broker polling interval, upload segment_duration, extra worker environment) of a config name."""
    poll = segment = None
    env: dict[str, str] = {}
    for part in name.split("+"):
        if part == "default":
            continue
        if m := re.fullmatch(r"poll([\d.]+)", part):
            poll = float(m.group(1))
        elif m := re.fullmatch(r"seg([\d.]+)", part):
            segment = float(m.group(1))
        elif m := re.fullmatch(r"first([\d.]+)", part):
            env["ABR_FIRST_SEGMENT_DURATION"] = m.group(1)
        else:
            raise SystemExit(f"unknown config part {part!r}")
    return poll, segment, env


def probe_time(source: Path) -> float:
    from core.media.probe import probe

    t = time.monotonic()
    probe(source)
    return time.monotonic() - t


def spread(values: list[float]) -> str:
    if not values:
        return "no run became playable"
    return (f"median {statistics.median(values):.2f} s, min {min(values):.2f}, max {max(values):.2f} "
            f"(n={len(values)}: {', '.join(f'{v:.2f}' for v in values)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", default="footage-720p-600,footage-1080p-600,footage-720p-3600",
                    help="comma separated KIND-HEIGHTp-SECONDS, KIND footage or testsrc")
    ap.add_argument("--footage", type=Path, default=FOOTAGE, help="the clip footage sources loop")
    ap.add_argument("--repeat", type=int, default=5, help="uploads per source and config (default 5)")
    ap.add_argument("--configs", default="default", help="comma separated, e.g. default,poll0.1,seg2,poll0.1+seg2")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "abr-bench-cache")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for playable per upload")
    ap.add_argument("--target", type=float, default=3.0)
    ap.add_argument("--profile", action="store_true",
                    help="sample CPU by process and thread from /proc (bench/procprof.py) and report, per run, "
                         "chunk 0's ffmpeg from its exec: each stream's init and first segment, and the CPU "
                         "until the last first segment")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="run the API and worker from this source tree (cwd first on sys.path), e.g. a "
                         "`git archive HEAD` snapshot while the working tree is mid-change (default: this repo)")
    ap.add_argument("--compare-tree", type=Path, default=None,
                    help="also run this tree (e.g. a `git archive main` snapshot), uploads alternating between "
                         "the two stacks, and report both")
    args = ap.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    for c in configs:
        parse_config(c)
    specs = [x for x in args.sources.split(",") if x]
    sources = {spec: make_source(args.cache_dir, spec, args.footage) for spec in specs}

    trees = {"": args.tree.resolve()}
    if args.compare_tree:
        trees = {" [this]": args.tree.resolve(), " [compare]": args.compare_tree.resolve()}
    results: dict[str, list[dict]] = {}
    for spec, source in sources.items():
        print(f"source {source} ({source.stat().st_size / 1e6:.0f} MB); in-process PyAV probe "
              f"{probe_time(source):.2f} s; cpus {os.cpu_count()}; load {os.getloadavg()}", flush=True)
        for c in configs:
            poll, segment, extra_env = parse_config(c)
            roots = {label: Path(tempfile.mkdtemp(prefix="abr-bench-playable-")) for label in trees}
            stacks: dict[str, Stack] = {}
            try:
                for label, tree in trees.items():
                    stacks[label] = start_stack(roots[label] / "data", poll, tree, extra_env)
                    results[f"{spec} {c}{label}"] = []
                # With --compare-tree, the two stacks take turns upload by upload (both idle meanwhile),
                # so a change in the machine's load falls on both alike.
                for i in range(args.repeat):
                    for label, stack in stacks.items():
                        key = f"{spec} {c}{label}"
                        r = measure_once(stack, source, segment, args.timeout, args.profile)
                        results[key].append(r)
                        print(f"[{key}] run {i + 1}: " + json.dumps(r), flush=True)
                for label in stacks:
                    # From each run's work directory (watch_fs): f0c0/ is chunk 0 of the chunked path,
                    # family-0/ the unchunked encode. Not from the worker's "chunks x N families sent"
                    # line: that comes after the per-title analysis beside chunk 0, which the DELETE
                    # after `playable` cuts short, so a chunked 10-minute 720p run often never logs it.
                    paths = ["chunked" if any("f0c0" in k for k in r["marks_from_201"]) else
                             "UNCHUNKED" if any("family-0" in k for k in r["marks_from_201"]) else "unknown"
                             for r in results[f"{spec} {c}{label}"]]
                    print(f"[{spec} {c}{label}] worker paths by run: {', '.join(paths)}", flush=True)
            finally:
                for stack in stacks.values():
                    stack.stop()
                for root in roots.values():
                    shutil.rmtree(root, ignore_errors=True)

    print(f"\n{'source config':28s} {'load':>5s} {'upload':>7s} {'sent->201':>9s} {'dispatch':>8s} "
          f"{'probe+plan':>10s} {'1st segs':>8s} {'->api':>6s} | {'playable from: start':>20s} {'sent':>6s} "
          f"{'201':>6s} {'master':>7s}")
    for key, runs in results.items():
        for r in runs:
            print(f"{key:28s} {r['load1']:5.2f} {r['upload_s']:7.2f} {r['sent_to_201_s']:9.2f} "
                  f"{r.get('dispatch_s', float('nan')):8.2f} {r.get('probe_plan_s', float('nan')):10.2f} "
                  f"{r.get('first_segments_s', float('nan')):8.2f} {r.get('publish_to_api_s', float('nan')):6.2f} | "
                  f"{r.get('asset_playable_from_start', float('nan')):20.2f} "
                  f"{r.get('asset_playable_from_sent', float('nan')):6.2f} "
                  f"{r.get('asset_playable_from_201', float('nan')):6.2f} "
                  f"{r.get('master_playable_from_sent', float('nan')):7.2f}")
    summary = {}
    for key, runs in results.items():
        api = [r["asset_playable_from_sent"] for r in runs if "asset_playable_from_sent" in r]
        master = [r["master_playable_from_sent"] for r in runs if "master_playable_from_sent" in r]
        median = statistics.median(api) if len(api) == len(runs) and api else float("inf")
        summary[key] = {"asset_playable_from_sent": api, "master_playable_from_sent": master, "median": median}
        print(f"{key}: upload complete -> asset playable: {spread(api)}; -> master plays: {spread(master)}; "
              f"target median < {args.target:g} s: {'MET' if median < args.target else 'MISSED'}")
    print(f"load after: {os.getloadavg()}")
    print("JSON " + json.dumps({"runs": results, "summary": summary}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
