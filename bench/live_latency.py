"""Glass-to-glass live latency, measured on the picture (not run by CI).

    .venv/bin/python bench/live_latency.py [--duration 120] [--variants hls-ll,hls-ll-cdn,dash,hls-std]
        [--segment 1] [--part 0.25] [--switch-every 20] [--size 1280x720] [--hls-catchup RATE]
        [--dash-live-delay S] [--cdn-conf FILE] [--json PATH]

One real stack in a temp dir (uvicorn API, a Celery worker on `live`,
nginx-rtmp from `abr ingest`'s config, optionally the nginx cache of
docker/nginx-cache.conf in front of the API) and one LL live stream
(`latency_mode: low`, 720p source → the 3-rung 720p/480p/360p ladder).

Sender: Python draws 1280×720 frames (a moving texture plus the clock strip
of bench/clock_pattern.py), stamps each with `time.time()` taken just before
it is handed to ffmpeg (real-time paced: frame i not before t0 + i/fps, a
late frame carries its late stamp), and pipes them as rawvideo to ffmpeg
(x264 ultrafast/zerolatency → FLV → nginx-rtmp). So the latency includes
the sender's own encode, as a camera encoder's would.

Receiver: Debian's Chromium (Playwright, the flags of tests/live/test_players.py)
plays the stream in a bare page with the vendored hls.js / dash.js. On every
frame it shows (requestVideoFrameCallback) the page draws the clock strip
into a small canvas, thresholds each block and records `Date.now()` with the
bits; the bits are decoded and checked here (same machine clock, so
latency = Date.now() − the burnt time). Per variant: p50/p95 over the
measured window (after a warm-up), frames unreadable, `waiting` events and
stalled time, and a forced rendition switch every --switch-every seconds
(hls.js `nextLevel`, dash.js `setRepresentationForTypeByIndex`: the smooth
kind an ABR algorithm makes), with the switches seen on screen (frame height).

Variants: `hls-ll` hls.js `lowLatencyMode: true` with the project player's
LL settings (read from player/web/player.js: its catch-up rate, and one
part of back-off after a stall instead of hls.js's 1 s) straight from the
API; `hls-ll-cdn` the same through the nginx cache (whose cache lock wakes
the requests waiting on one object by polling every 0.5 s, fixed in nginx's
source: docker/nginx-cache.conf); `dash` dash.js (LL settings:
live catch-up on; labelled LL only if the MPD carries `availabilityTimeOffset`);
`hls-std` hls.js with `lowLatencyMode: false` on a standard-latency stream
(2 s segments, no parts; hls.js's default 3 segments behind). Each variant
gets its own fresh stream and sender. `--size 640x360` pushes a lighter
source (its ladder: 360p/240p) when the machine cannot encode the 720p
ladder in real time.

Beside the player, a probe on the 360p rung holds LL-HLS blocking playlist
requests (`_HLS_msn`/`_HLS_part` of the preload-hinted part) and compares
each answer's arrival with the mtime of that part's file in the data dir
(the origin answers once `live.json` lists it). It also decodes every part
it sees (init + the segment's parts so far) and reads the clock of each new
frame: capture → part file written, the sender + ingest + live encoder +
publisher share of the latency. What is left of the glass-to-glass figure is
the part's fetch and the player's buffer / hold-back. Machine load
(`os.getloadavg`, `uptime`) is sampled through every variant.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.clock_pattern import COLS, ROWS, STRIP_ROWS_OF, bits_clock, draw_clock, read_clock  # noqa: E402

FPS = 25
WIDTH, HEIGHT = 1280, 720
VARIANTS = ("hls-ll", "hls-ll-cdn", "dash", "hls-std")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]
PLAUSIBLE_S = 3600.0  # a decoded clock further than this from now is a misread (the check bits let 1/64 through)


# ---------------------------------------------------------------- sender


def sender_background(width: int, height: int) -> np.ndarray:
    """A smooth texture twice as wide as the picture; a sliding window of it is the moving background."""
    y, x = np.mgrid[0:height, 0:2 * width].astype(np.float32)
    tex = 128 + 55 * np.sin(x / 23 + y / 41) + 40 * np.sin(y / 17 - x / 59)
    return np.clip(tex, 20, 230).astype(np.uint8)


def sender_argv(ffmpeg: str, url: str, *, fps: int = FPS, size: tuple[int, int] = (WIDTH, HEIGHT),
                preset: str = "ultrafast", bitrate: str = "4M") -> list[str]:
    """The sender's ffmpeg: rawvideo on stdin → x264 (a camera encoder's low-delay settings) → FLV at `url`."""
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{size[0]}x{size[1]}", "-framerate", str(fps),
            "-i", "pipe:0", "-c:v", "libx264", "-preset", preset, "-tune", "zerolatency",
            "-g", str(fps), "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", "2M", "-f", "flv", url]


class ClockSender:
    """rawvideo frames with the wall clock burnt in → ffmpeg (x264) → RTMP, paced in real time by this thread."""

    def __init__(self, url: str, ffmpeg: str, *, fps: int = FPS, size: tuple[int, int] = (WIDTH, HEIGHT),
                 log: Path | None = None) -> None:
        self.fps, (self.width, self.height) = fps, size
        argv = sender_argv(ffmpeg, url, fps=fps, size=size)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=open(log, "ab") if log else subprocess.DEVNULL)
        self.stop = threading.Event()
        self.frames = self.late = 0  # late: frames handed over more than one frame interval after their slot
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        w, h = self.width, self.height
        tex = sender_background(w, h)
        chroma = bytes([128]) * (w * h // 2)
        luma = np.empty((h, w), np.uint8)
        t0 = time.time()
        i = 0
        while not self.stop.is_set():
            due = t0 + i / self.fps
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            elif wait < -1 / self.fps:
                self.late += 1
            off = (i * 6 * w // WIDTH) % w
            luma[:] = tex[:, off:off + w]
            draw_clock(luma, int(time.time() * 1000))
            try:
                self.proc.stdin.write(luma.tobytes() + chroma)
            except (BrokenPipeError, ValueError):
                return
            self.frames += 1
            i += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- stats


def pct(values, q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def r3(x):
    return None if x is None else round(x, 3)


class LoadSampler:
    """1-minute load average every 2 s while a variant runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self.stop.wait(2)

    def close(self) -> dict:
        self.stop.set()
        self.thread.join(3)
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        return {"load1_min": min(self.samples), "load1_max": max(self.samples),
                "load1_mean": round(statistics.mean(self.samples), 2), "uptime_at_end": uptime}


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, name, CPU seconds so far) of every process (/proc; no psutil in the project)."""
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def cpu_by_group(roots: dict[str, int], *, by_name: bool = False) -> dict[str, float]:
    """CPU seconds of the process trees under `roots` (group name → pid), the rest of ours as `other`;
    `by_name`: per group and process name ("live_worker/ffmpeg"), what each group is made of."""
    procs = process_cpu()
    group_of: dict[int, str] = {}

    def group(pid: int) -> str | None:
        seen = []
        while pid and pid not in group_of:
            for name, root in roots.items():
                if pid == root:
                    group_of[pid] = name
                    break
            else:
                seen.append(pid)
                pid = procs[pid][0] if pid in procs else 0
                continue
            break
        found = group_of.get(pid)
        for p in seen:
            group_of[p] = found
        return found

    totals = dict.fromkeys(roots, 0.0)
    for pid, (_, name, cpu) in procs.items():
        g = group(pid)
        if g is not None:
            if g == "bench" and name.startswith("chrom"):
                g = "chromium"
            if by_name:
                g = f"{g}/{name}"
            totals[g] = totals.get(g, 0.0) + cpu
    return totals


# ---------------------------------------------------------------- blocking-reload probe


HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"')


class BlockingProbe:
    """Held `_HLS_msn/_HLS_part` requests for each hinted part of one rendition; see the module docstring."""

    def __init__(self, media_url: str, part_dir: Path, init: bytes) -> None:
        import httpx

        self.http = httpx.Client(timeout=15)
        self.media_url, self.part_dir, self.init = media_url, part_dir, init
        self.answer_after_write: list[float] = []  # response received − part file mtime (s)
        self.held: list[float] = []  # how long each request was held
        self.timeouts = self.missing = 0
        # Requests sent after their part was already written (the probe fell behind, e.g. decoding the
        # previous part): not blocked, so their "answer after written" is the probe's own lateness.
        self.asked_after_write = 0
        self.capture_to_part: list[float] = []  # every frame: part file mtime − its burnt clock
        self.newest_to_part: list[float] = []  # the newest frame of each part: encoder + publish delay
        self.unreadable = 0
        self._segment: tuple[int, int] | None = None  # (msn, its last part decoded)
        self._decoder = None  # the current segment's video decoder
        self.active = threading.Event()  # measure only while set (between variants it keeps the pace)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        text = self.http.get(self.media_url).text
        while not self.stop.is_set():
            hint = HINT.search(text)
            if hint is None:
                time.sleep(0.1)
                text = self.http.get(self.media_url).text
                continue
            msn, part = int(hint.group(1)), int(hint.group(2))
            asked = time.time()
            try:
                r = self.http.get(self.media_url, params={"_HLS_msn": msn, "_HLS_part": part})
            except Exception:  # noqa: BLE001 - a bench keeps going; counted as a timeout
                self.timeouts += 1
                text = self.http.get(self.media_url).text
                continue
            got = time.time()
            text = r.text
            if r.headers.get("cache-control") == "no-store":  # timed out: the part never came
                self.timeouts += 1
                continue
            path = self.part_dir / f"{msn:05d}.{part}.m4s"
            try:
                mtime = path.stat().st_mtime_ns / 1e9
                data = path.read_bytes()
            except FileNotFoundError:
                self.missing += 1
                continue
            if self.active.is_set():
                if asked >= mtime:
                    self.asked_after_write += 1
                else:
                    self.answer_after_write.append(got - mtime)
                    self.held.append(got - asked)
            self._frames(msn, part, data, mtime)

    def _frames(self, msn: int, part: int, data: bytes, mtime: float) -> None:
        import av

        if part == 0:
            self._segment = (msn, -1)
        elif self._segment != (msn, part - 1):
            # Joined mid-segment or missed a part (a late probe): frames decoded without their references
            # could show a wrong clock, so wait for the next segment's first (independent) part.
            self._segment = None
            return
        # Each frame decoded once: init + this part is a file of its own for the demuxer, and its packets go
        # to the segment's one decoder (which holds the earlier parts' references). Re-decoding the segment
        # so far on every part cost 2.5x the decoding, in the bench's own process.
        try:
            with av.open(io.BytesIO(self.init + data)) as c:
                stream = c.streams.video[0]
                if part == 0:
                    self._decoder = av.CodecContext.create(stream.codec_context.name, "r")
                    self._decoder.extradata = stream.codec_context.extradata
                    self._decoder.thread_count = 1  # frame threads would hold frames back into the next part
                frames = [f for p in c.demux(stream) if p.size for f in self._decoder.decode(p)]
        except av.FFmpegError:
            self._segment = None
            return
        self._segment = (msn, part)
        if not self.active.is_set():
            return
        clocks = [read_clock(f.to_ndarray(format="gray")) for f in frames]
        self.unreadable += sum(c is None for c in clocks)
        good = [c / 1000 for c in clocks if c is not None]
        self.capture_to_part += [mtime - c for c in good]
        if good:
            self.newest_to_part.append(mtime - max(good))

    def take(self) -> dict:
        out = {"blocked_answer_after_part_written_s": {"n": len(self.answer_after_write),
                                                       "p50": r3(pct(self.answer_after_write, 50)),
                                                       "p99": r3(pct(self.answer_after_write, 99)),
                                                       "max": r3(max(self.answer_after_write, default=None))},
               "blocked_request_held_s_p50": r3(pct(self.held, 50)),
               "blocked_timeouts": self.timeouts, "parts_gone_before_stat": self.missing,
               "asked_after_part_written": self.asked_after_write,  # left out of the figures above
               "capture_to_part_written_s": {"n": len(self.capture_to_part),
                                             "p50": r3(pct(self.capture_to_part, 50)),
                                             "p95": r3(pct(self.capture_to_part, 95))},
               "newest_frame_to_part_written_s_p50": r3(pct(self.newest_to_part, 50)),
               "probe_frames_unreadable": self.unreadable}
        self.answer_after_write, self.held, self.capture_to_part, self.newest_to_part = [], [], [], []
        self.asked_after_write = 0
        self.timeouts = self.missing = self.unreadable = 0
        return out

    def close(self) -> None:
        self.stop.set()
        self.thread.join(20)
        self.http.close()


# ---------------------------------------------------------------- the page


READER_JS = """
(() => {
  const COLS = %(cols)d, ROWS = %(rows)d, OF = %(of)d, B = 8;
  const video = document.querySelector('video');
  const S = window.S = {samples: [], waiting: 0, stalledMs: 0, waitStart: null, started: null, info: [],
                        errors: [], reader: null};
  // Reading the strip: WebCodecs copies the luma of the strip's rows straight out of the decoded frame
  // (no colour conversion, no canvas); where VideoFrame is missing, a canvas (drawImage converts the
  // picture to RGB first: 0.14 of a core at 720p25 on Chromium without a GPU against 0.03 for this;
  // bench/live_reader_cpu.py).
  const cv = document.createElement('canvas'); cv.width = COLS * B; cv.height = ROWS * B;
  const cx = cv.getContext('2d', {willReadFrequently: true});
  let buf = null;
  function bitsOfLuma(y, stride, w, h) {  // the central half of each block, 4x4 samples; video range luma
    let bits = '';
    for (let r = 0; r < ROWS; r++) for (let c = 0; c < COLS; c++) {
      const y0 = Math.floor(r * h / OF), y1 = Math.floor((r + 1) * h / OF);
      const x0 = Math.floor(c * w / COLS), x1 = Math.floor((c + 1) * w / COLS);
      let s = 0;
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
        const yy = y0 + Math.floor((y1 - y0) * (2 * i + 5) / 16), xx = x0 + Math.floor((x1 - x0) * (2 * j + 5) / 16);
        s += y[yy * stride + xx];
      }
      bits += s / 16 > 125.5 ? '1' : '0';
    }
    return bits;
  }
  function bitsOfCanvas(w, h) {
    cx.drawImage(video, 0, 0, w, h * ROWS / OF, 0, 0, cv.width, cv.height);
    const d = cx.getImageData(0, 0, cv.width, cv.height).data;
    let bits = '';
    for (let r = 0; r < ROWS; r++) for (let c = 0; c < COLS; c++) {
      let s = 0;
      for (let y = r * B + 2; y < r * B + 6; y++) for (let x = c * B + 2; x < c * B + 6; x++) {
        const i = (y * cv.width + x) * 4; s += d[i] + d[i + 1] + d[i + 2];
      }
      bits += s / 48 > 127.5 ? '1' : '0';
    }
    return bits;
  }
  async function onFrame(now, meta) {
    video.requestVideoFrameCallback(onFrame);
    const wall = Date.now();
    const w = video.videoWidth, h = video.videoHeight;
    if (!h) return;
    if (S.reader !== 'canvas' && typeof VideoFrame === 'function') {
      let frame = null;
      try {
        frame = new VideoFrame(video, {timestamp: 0});
        const rows = Math.min(frame.codedHeight, 2 * Math.ceil(h * ROWS / OF / 2));
        const rect = {x: 0, y: 0, width: 2 * Math.floor(frame.visibleRect.width / 2), height: rows};
        const size = frame.allocationSize({rect});
        if (!buf || buf.length < size) buf = new Uint8Array(size);
        const layout = await frame.copyTo(buf, {rect});
        S.samples.push([wall, bitsOfLuma(buf.subarray(layout[0].offset), layout[0].stride, rect.width,
                                         frame.visibleRect.height), h]);
        S.reader = 'videoframe';
        return;
      } catch (e) {
        S.errors.push('VideoFrame: ' + e); S.reader = 'canvas';
      } finally {
        if (frame) frame.close();
      }
    }
    S.samples.push([wall, bitsOfCanvas(w, h), h]);
  }
  video.requestVideoFrameCallback(onFrame);
  video.addEventListener('waiting', () => {
    if (S.started !== null && S.waitStart === null) { S.waiting++; S.waitStart = performance.now(); } });
  video.addEventListener('playing', () => {
    if (S.started === null) S.started = Date.now();
    if (S.waitStart !== null) { S.stalledMs += performance.now() - S.waitStart; S.waitStart = null; } });
  window.resetStats = () => {
    S.samples = []; S.waiting = 0; S.stalledMs = 0; S.info = []; S.errors = [];
    if (S.waitStart !== null) S.waitStart = performance.now();
  };
  window.takeStats = () => {
    let stalled = S.stalledMs;
    if (S.waitStart !== null) stalled += performance.now() - S.waitStart;
    return {samples: S.samples, waiting: S.waiting, stalledMs: stalled, info: S.info, errors: S.errors,
            llSettings: S.llSettings || null, reader: S.reader};
  };
})();
""" % {"cols": COLS, "rows": ROWS, "of": STRIP_ROWS_OF}

def player_ll_script() -> str:
    """The project player's LL-HLS settings as JS source, cut from player/web/player.js (so they cannot drift):
    `LOW_LATENCY`, `hlsLowLatencyConfig(details)`, `isLowLatencyPlaylist(details)` and `startNearEdge` (the
    one jump to the target latency as playback starts; it uses the page's globals `video` and `hls`)."""
    text = (ROOT / "player" / "web" / "player.js").read_text()
    found = [re.search(r"^  const LOW_LATENCY = \{\n.*?^  \};$", text, re.S | re.M),
             re.search(r"^  function hlsLowLatencyConfig\(details\) \{\n.*?^  \}$", text, re.S | re.M),
             re.search(r"^  const isLowLatencyPlaylist = .*;$", text, re.M),
             re.search(r"^    const startNearEdge = \(\) => \{\n.*?^    \};$", text, re.S | re.M)]
    if not all(found):
        raise RuntimeError("player/web/player.js no longer defines LOW_LATENCY, hlsLowLatencyConfig, "
                           "isLowLatencyPlaylist and startNearEdge as the bench reads them: update player_ll_script")
    return "\n".join(textwrap.dedent(m.group(0)) for m in found) + "\n"


# LL variants: hls.js as the project player drives it (player/web/player.js): lowLatencyMode, and on the
# first LL playlist the player's own settings (catch-up rate, one part of back-off after a stall instead
# of hls.js's 1 s; --hls-catchup overrides the rate) and its one jump to the target latency as playback
# starts (hls.js's catch-up only closes gaps under a target duration). Standard: hls.js's defaults.
HLS_JS = """
const video = document.querySelector('video'); video.muted = true;
const hls = window.player = new Hls({lowLatencyMode: %(ll)s});
S.llSettings = null;
hls.on(Hls.Events.LEVEL_LOADED, (e, d) => {
  if (!%(ll)s || S.llSettings || !isLowLatencyPlaylist(d.details)) return;
  const settings = hlsLowLatencyConfig(d.details);
  if (%(rate)s !== null) settings.maxLiveSyncPlaybackRate = %(rate)s;
  Object.assign(hls.config, settings);
  S.llSettings = settings;
  video.addEventListener('timeupdate', startNearEdge);
});
hls.loadSource(SOURCE); hls.attachMedia(video);
hls.on(Hls.Events.MANIFEST_PARSED, () => video.play());
hls.on(Hls.Events.ERROR, (e, d) => S.errors.push(d.details + (d.fatal ? ' (fatal)' : '')));
let step = 0;
window.forceSwitch = () => { const n = hls.levels.length; step++; hls.nextLevel = step %% n; return step %% n; };
setInterval(() => {
  const b = video.buffered.length ? video.buffered.end(video.buffered.length - 1) - video.currentTime : null;
  S.info.push({latency: hls.latency, target: hls.targetLatency, buffer: b, rate: video.playbackRate});
}, 1000);
"""

DASH_JS = """
const video = document.querySelector('video'); video.muted = true;
const player = window.player = dashjs.MediaPlayer().create();
player.updateSettings({streaming: {liveCatchup: {enabled: true}, abr: {autoSwitchBitrate: {video: false}}}});
if (LIVE_DELAY !== null) player.updateSettings({streaming: {delay: {liveDelay: LIVE_DELAY}}});
player.on(dashjs.MediaPlayer.events.ERROR, (e) => S.errors.push(JSON.stringify(e.error || e).slice(0, 200)));
player.initialize(video, SOURCE, true);
let step = 0;
window.forceSwitch = () => {
  const n = player.getRepresentationsByType('video').length; step++;
  player.setRepresentationForTypeByIndex('video', step % n, false); return step % n; };
setInterval(() => {
  const b = video.buffered.length ? video.buffered.end(video.buffered.length - 1) - video.currentTime : null;
  S.info.push({latency: player.getCurrentLiveLatency(), target: player.getTargetLiveDelay ?
               player.getTargetLiveDelay() : null, buffer: b, rate: video.playbackRate});
}, 1000);
"""


def decode_samples(samples: list) -> tuple[list[float], int, list[int]]:
    """Page samples [Date.now() ms, bits, frame height] → latencies (s), unreadable count, heights shown."""
    lat, bad, heights = [], 0, []
    for wall, bits, height in samples:
        ms = bits_clock(bits)
        if ms is None or abs(wall - ms) > PLAUSIBLE_S * 1000:
            bad += 1
            continue
        lat.append((wall - ms) / 1000)
        heights.append(height)
    return lat, bad, heights


def run_variant(browser, name: str, url: str, *, duration: float, warmup: float,
                switch_every: float, probe: BlockingProbe | None, hls_catchup: float | None = None,
                dash_live_delay: float | None = None, cpu_roots: dict[str, int] | None = None) -> dict:
    hls_lib = (ROOT / "player" / "vendor" / "hls.min.js").read_text()
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.set_content(f"<video width={WIDTH // 2} height={HEIGHT // 2} muted playsinline></video>")
        page.add_script_tag(content=READER_JS)
        if name.startswith("dash"):
            page.add_script_tag(content=(ROOT / "player" / "vendor" / "dash.all.min.js").read_text())
            body = f"const LIVE_DELAY = {json.dumps(dash_live_delay)};\n" + DASH_JS
        else:
            page.add_script_tag(content=hls_lib)
            ll = name.startswith("hls-ll")
            page.add_script_tag(content=player_ll_script())
            body = HLS_JS % {"ll": "true" if ll else "false", "rate": json.dumps(hls_catchup)}
        # Not `URL`: a page-level const would shadow window.URL (dash.js calls `new URL()`).
        page.add_script_tag(content=f"const SOURCE = {url!r};\n" + body)
        try:
            page.wait_for_function("window.S && S.samples.length > 10", timeout=60000)
        except Exception as exc:  # say what the page was doing
            state = page.evaluate("({errors: window.S ? S.errors.slice(-5) : null, ready: "
                                  "document.querySelector('video').readyState, "
                                  "t: document.querySelector('video').currentTime})")
            raise RuntimeError(f"no frames shown in 60 s: {state}; page errors {errors[:3]}") from exc
        time.sleep(warmup)  # hls.js / dash.js settle on their target latency
        page.evaluate("resetStats()")
        if probe:
            probe.take()
            probe.active.set()
        load = LoadSampler()
        cpu_roots = cpu_roots or {}
        cpu_before = cpu_by_group(cpu_roots)
        procs_before = cpu_by_group(cpu_roots, by_name=True)
        started = time.monotonic()
        switches = []
        next_switch = started + switch_every
        while (now := time.monotonic()) < started + duration:
            if switch_every and now >= next_switch:
                switches.append(page.evaluate("forceSwitch()"))
                next_switch += switch_every
            time.sleep(min(1.0, max(0.05, started + duration - now)))
        stats = page.evaluate("takeStats()")
        loadinfo = load.close()
        cpu_after = cpu_by_group(cpu_roots)
        procs_after = cpu_by_group(cpu_roots, by_name=True)
        # Cores used while measured: the live worker (its ffmpeg encoding the ladder), the sender's ffmpeg,
        # Chromium, and the rest of the bench (API, nginx, the probe, the sender's frame drawing).
        loadinfo["cores_used"] = {k: round((cpu_after.get(k, 0) - cpu_before.get(k, 0)) / duration, 2)
                                  for k in cpu_after}
        loadinfo["cores_used_by_process"] = {
            k: round((procs_after[k] - procs_before.get(k, 0)) / duration, 3) for k in sorted(procs_after)
            if procs_after[k] - procs_before.get(k, 0) >= 0.005 * duration}
        if probe:
            probe.active.clear()
    finally:
        page.close()
    lat, bad, heights = decode_samples(stats["samples"])
    shown_switches = sum(1 for a, b in zip(heights, heights[1:]) if a != b)
    info = stats["info"]
    def med(key):
        values = [i[key] for i in info if isinstance(i.get(key), (int, float))]
        return r3(statistics.median(values)) if values else None
    result = {"variant": name, "url": url, "frames": len(stats["samples"]), "frames_unreadable": bad,
              "fps_shown": round(len(stats["samples"]) / duration, 1),
              "latency_s": {"p50": r3(pct(lat, 50)), "p95": r3(pct(lat, 95)), "min": r3(min(lat, default=None)),
                            "max": r3(max(lat, default=None))},
              "waiting_events": stats["waiting"], "stalled_s": round(stats["stalledMs"] / 1000, 3),
              "switches_requested": len(switches), "switches_shown": shown_switches,
              "heights_shown": sorted(set(heights)),
              "player_reported": {"latency_s_p50": med("latency"), "target_s": med("target"),
                                  "buffer_s_p50": med("buffer"), "playback_rate_p50": med("rate")},
              "hls_ll_settings": stats.get("llSettings"), "clock_reader": stats.get("reader"),
              "player_errors": sorted(set(stats["errors"]))[:10], "page_errors": errors[:5], "load": loadinfo}
    if probe:
        result["pipeline"] = p = probe.take()
        upstream = p["capture_to_part_written_s"]["p50"]
        if upstream is not None and lat:
            # What the probe cannot see: the part's fetch, the player's buffer and its hold-back behind the edge.
            result["breakdown_s"] = {"capture_to_part_written_p50": upstream,
                                     "part_written_to_playlist_p50": p["blocked_answer_after_part_written_s"]["p50"],
                                     "player_side_p50": r3(pct(lat, 50) - upstream)}
            # A live encode that falls behind the clock shows as a capture → part delay growing past a few
            # segments: then every figure measures the machine's overload, not the pipeline.
            result["real_time"] = p["capture_to_part_written_s"]["p95"] < 3.0
    return result


# ---------------------------------------------------------------- the stack and the run


def render_table(results: list[dict]) -> str:
    rows = ["| variant | p50 | p95 | frames (unreadable) | waiting / stalled | switches asked / shown | "
            "blocked answer after part written p50 / p99 | capture → part written p50 | load1 min–max |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "skipped" in r:
            rows.append(f"| {r['variant']} | – | – | – | – | – | – | – | skipped: {r['skipped']} |")
            continue
        lat, p = r["latency_s"], r.get("pipeline", {})
        b = p.get("blocked_answer_after_part_written_s", {})
        c = p.get("capture_to_part_written_s", {})
        fmt = lambda x: "–" if x is None else f"{x:.2f} s"  # noqa: E731
        ms = lambda x: "–" if x is None else f"{x * 1000:.0f} ms"  # noqa: E731
        rows.append(f"| {r['variant']} | {fmt(lat['p50'])} | {fmt(lat['p95'])} | {r['frames']} ({r['frames_unreadable']}) "
                    f"| {r['waiting_events']} / {r['stalled_s']:.1f} s | {r['switches_requested']} / {r['switches_shown']} "
                    f"| {ms(b.get('p50'))} / {ms(b.get('p99'))} | {fmt(c.get('p50'))} "
                    f"| {r['load']['load1_min']:.1f}–{r['load']['load1_max']:.1f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120, help="measured seconds per variant")
    parser.add_argument("--warmup", type=float, default=10, help="seconds of playback before measuring")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--segment", type=float, default=1.0)
    parser.add_argument("--part", type=float, default=0.25)
    parser.add_argument("--switch-every", type=float, default=20, help="seconds between forced switches (0: none)")
    parser.add_argument("--size", default=f"{WIDTH}x{HEIGHT}",
                        help="sender picture size (the ladder follows it: 1280x720 gives 720p/480p/360p)")
    parser.add_argument("--hls-catchup", type=float, default=None,
                        help="hls.js maxLiveSyncPlaybackRate for the LL variants (default: the player's, "
                             "player/web/player.js LOW_LATENCY.hlsCatchupRate; 1: no catch-up)")
    parser.add_argument("--dash-live-delay", type=float, default=None,
                        help="dash.js streaming.delay.liveDelay (default: what the MPD asks for)")
    parser.add_argument("--cdn-conf", type=Path, default=None, help="nginx cache site config (default docker/nginx-cache.conf)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results (default: the run's temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    import shutil

    import httpx
    from playwright.sync_api import sync_playwright

    from cli.ingest import start_ingest
    from cli.migrate import upgrade
    from core.media.ffmpeg import find_ffmpeg
    from tests.conftest import free_port
    from tests.helpers import TEST_KEY, settings_from
    import tests.origin.live as origin_live
    from tests.workers.worker_proc import running_worker

    if args.cdn_conf:
        origin_live.NGINX_CONF = args.cdn_conf
    root = Path(tempfile.mkdtemp(prefix="abr-latency-bench-"))
    rtmp_port, api_port = free_port(), free_port()
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(root / "data"), "ABR_API_KEYS": TEST_KEY,
           "ABR_RTMP_PORT": str(rtmp_port), "ABR_PORT": str(api_port), "ABR_LOG_LEVEL": "WARNING"}
    settings = settings_from(env)
    upgrade(settings.resolved_database_url)
    auth = {"Authorization": f"Bearer {TEST_KEY}"}
    results: list[dict] = []
    meta = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
            "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
            "segment_duration": args.segment, "part_target": args.part, "fps": FPS, "source": args.size,
            "duration_per_variant": args.duration,
            "hls_catchup": args.hls_catchup, "dash_live_delay": args.dash_live_delay, "warmup": args.warmup,
            "switch_every": args.switch_every,
            "git": subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True,
                                  text=True).stdout.strip()}
    with ExitStack() as stack:
        # On a loaded machine the API can take longer to start than the test helper's 15 s.
        origin_live.wait_for_port = functools.partial(origin_live.wait_for_port, timeout=90)
        api, _ = stack.enter_context(origin_live.uvicorn_origin(env, port=api_port))
        worker = stack.enter_context(running_worker(env, log_path=root / "worker.log", queues="live",
                                                    concurrency=1))
        nginx = start_ingest(settings, api_url=api, prefix=root / "ingest")
        stack.callback(lambda: (nginx.terminate(), nginx.wait(10)))
        origin_live.wait_for_port(rtmp_port, proc=nginx)
        cdn = None
        if "hls-ll-cdn" in variants:
            cdn = stack.enter_context(origin_live.nginx_cache(root / "cdn", upstream=api[7:]))
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                     args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        ctx = {"api": api, "auth": auth, "rtmp": f"rtmp://127.0.0.1:{rtmp_port}/live", "root": root,
               "ffmpeg": find_ffmpeg(), "worker": worker.pid}
        for name in variants:
            if name not in VARIANTS:
                raise SystemExit(f"unknown variant {name}")
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {duration_text(args)} …", flush=True)
            try:
                res = one_variant(name, args, ctx, browser, cdn, meta)
            except Exception as exc:  # noqa: BLE001 - one variant failing must not lose the others' figures
                res = {"variant": name, "skipped": f"{type(exc).__name__}: {str(exc)[:300]}"}
            results.append(res)
            print(json.dumps(res, indent=1)[:3000], flush=True)
    table = render_table(results)
    out = {"meta": meta, "results": results, "table": table}
    path = args.json or root / "results.json"
    path.write_text(json.dumps(out, indent=1))
    print("\n" + table)
    print(f"\nload before: {meta['uptime_before']}\nresults: {path}")
    if not args.keep and args.json:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def one_variant(name: str, args, ctx: dict, browser, cdn: str | None, meta: dict) -> dict:
    """A fresh stream (and sender) per variant: a backlog one variant built (an overloaded machine) is not
    inherited by the next. `hls-std` plays a standard-latency stream (2 s segments, no parts), what a
    stream without `latency_mode: low` gets; the others the LL stream."""
    import httpx

    api, auth = ctx["api"], ctx["auth"]
    if name == "hls-std":
        body = {"latency_mode": "standard", "segment_duration": 2, "record": False}
    else:
        body = {"latency_mode": "low", "segment_duration": args.segment, "part_target": args.part, "record": False}
    r = httpx.post(f"{api}/v1/live-streams", json=body, headers=auth)
    r.raise_for_status()
    stream = r.json()
    with ExitStack() as stack:
        stack.callback(lambda: httpx.post(f"{api}/v1/live-streams/{stream['id']}/stop", headers=auth))
        w, h = (int(x) for x in args.size.split("x"))
        sender = ClockSender(f"{ctx['rtmp']}/{stream['stream_key']}", ctx["ffmpeg"], size=(w, h),
                             log=ctx["root"] / "sender.log")
        stack.callback(sender.close)
        master_url = stream["playback"]["hls"]
        low = body["latency_mode"] == "low"
        media_url, master, lines = None, "", []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the lowest rung listed (LL: with its parts)
            try:
                master = httpx.get(master_url).text
                lines = [ln for ln in master.splitlines() if ln.endswith(".m3u8") and not ln.startswith("#")]
                if lines:
                    media_url = master_url.rsplit("/", 1)[0] + "/" + lines[-1]
                    text = httpx.get(media_url).text
                    if ("#EXT-X-PRELOAD-HINT" in text) if low else text.count("#EXTINF") >= 2:
                        break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"no playlist after 60 s: {media_url}\n{(ctx['root'] / 'worker.log').read_text()[-2000:]}")
        meta.setdefault("masters", {})[name] = master
        probe = None
        if low:
            rendition = lines[-1].rsplit("/", 1)[0]
            text = httpx.get(media_url).text
            init_uri = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text).group(1)
            init = httpx.get(media_url.rsplit("/", 1)[0] + "/" + init_uri).content
            part_dir = None
            deadline = time.monotonic() + 10
            while part_dir is None and time.monotonic() < deadline:  # where the storage keeps its parts
                found = [p for p in (ctx["root"] / "data").rglob(f"{rendition}/*.*.m4s") if stream["id"] in str(p)]
                part_dir = found[0].parent if found else None
                time.sleep(0.2)
            if part_dir is not None:
                probe = BlockingProbe(media_url, part_dir, init)
                stack.callback(probe.close)
        url = master_url
        mpd_ll = None
        if name == "hls-ll-cdn":
            url = master_url.replace(api, cdn)
        elif name == "dash":
            url = stream["playback"]["dash"]
            mpd_ll = "availabilityTimeOffset" in httpx.get(url).text
        roots = {"bench": os.getpid(), "live_worker": ctx["worker"], "sender_ffmpeg": sender.proc.pid}
        res = run_variant(browser, name, url, duration=args.duration, warmup=args.warmup,
                          switch_every=args.switch_every, probe=probe, hls_catchup=args.hls_catchup,
                          dash_live_delay=args.dash_live_delay, cpu_roots=roots)
        if mpd_ll is not None:
            res["variant"] = "dash-ll" if mpd_ll else "dash (MPD without LL)"
        res["stream"] = body
        res["sender"] = {"frames": sender.frames, "late_frames": sender.late}
        return res


def duration_text(args) -> str:
    return f"{args.warmup:.0f} s warm-up, {args.duration:.0f} s measured"


if __name__ == "__main__":
    sys.exit(main())
