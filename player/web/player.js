/* abr-origin embeddable player: hls.js, dash.js or Shaka Player behind one small UI.
 *
 * Query: engine=hls|dash|shaka|native, protocol=hls|dash, t=<start> (90, 1m30s, 1:30),
 * token=<signed playback token>, autoplay=1, muted=1, loop=1, controls=0, stats=1,
 * and manifest filters codecs=, max_height=, min_height=, max_bitrate= (passed to the origin).
 *
 * The engine is chosen by Media Source Extensions support (MediaSource/ManagedMediaSource and
 * isTypeSupported), never by canPlayType: Chromium answers "maybe" for HLS yet cannot play it.
 * Libraries load on demand from this server, each checked by its SRI hash.
 */
'use strict';
(function () {
  const config = JSON.parse(document.getElementById('abr-config').textContent);
  const params = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);
  const root = $('player');
  const video = $('video');
  const ui = {
    bigplay: $('bigplay'), spinner: $('spinner'), message: $('message'), messageTitle: $('message-title'),
    messageText: $('message-text'), messageDetail: $('message-detail'), retry: $('message-retry'), stats: $('stats'), menu: $('quality-menu'),
    seek: $('seek'), play: $('play'), mute: $('mute'), volume: $('volume'), time: $('time'),
    quality: $('quality'), qualityLabel: $('quality-label'), statsToggle: $('stats-toggle'), fullscreen: $('fullscreen'),
    liveBadge: $('live-badge'), goLive: $('golive'),
    audio: $('audio'), audioLabel: $('audio-label'), audioMenu: $('audio-menu'),
  };
  const FILTERS = ['codecs', 'max_height', 'min_height', 'max_bitrate', 'audio_lang'];
  const ENGINE_NAMES = { hls: 'hls.js', dash: 'dash.js', shaka: 'Shaka Player', native: 'native HLS' };
  const TYPES = {
    h264: 'video/mp4; codecs="avc1.42E01E"',
    av1: 'video/mp4; codecs="av01.0.05M.08"',
    vp8: 'video/webm; codecs="vp8"',
    hls: 'application/vnd.apple.mpegurl',
  };

  class PlayerError extends Error {
    constructor(title, text, retry, detail) { super(text); this.title = title; this.retry = !!retry; this.detail = detail || ''; }
  }

  const flag = (name, dflt) => {
    const v = params.get(name);
    return v === null ? dflt : !['0', 'false', 'no', 'off'].includes(v.toLowerCase());
  };
  const opts = {
    autoplay: flag('autoplay', false),
    muted: flag('muted', flag('autoplay', false)), // browsers allow muted autoplay only
    loop: flag('loop', false),
    controls: flag('controls', true),
    stats: flag('stats', false),
    start: parseTime(params.get('t')),
  };

  /** "90", "90.5", "1m30s", "1h2m", "1:30", "1:02:03" -> seconds, or null. */
  function parseTime(raw) {
    if (!raw) return null;
    if (/^\d+(\.\d+)?$/.test(raw)) return parseFloat(raw);
    let m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(raw);
    if (m && raw) return (+m[1] || 0) * 3600 + (+m[2] || 0) * 60 + (+m[3] || 0);
    m = /^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(raw);
    if (m) return (+m[1] || 0) * 3600 + +m[2] * 60 + +m[3];
    return null;
  }

  function manifestUrl(protocol) {
    const q = new URLSearchParams();
    for (const key of FILTERS) if (params.get(key)) q.set(key, params.get(key));
    if (params.get('token')) q.set('token', params.get('token')); // the manifests carry it to every child URL
    const qs = q.toString();
    const file = protocol === 'hls' ? 'master.m3u8' : 'manifest.mpd';
    // Absolute: dash.js (CMCD) and Shaka resolve against it without a base.
    return new URL(`/play/${encodeURIComponent(config.playbackId)}/${file}${qs ? `?${qs}` : ''}`, location.href).href;
  }

  // The ClearKey licence of an encrypted asset, absolute: the MPD's dashif:Laurl is relative to the MPD,
  // which not every player resolves that way.
  function licenceUrl() {
    const token = params.get('token');
    return new URL(`/play/${encodeURIComponent(config.playbackId)}/keys/clearkey${token ? `?token=${encodeURIComponent(token)}` : ''}`, location.href).href;
  }

  // ---- engine choice -------------------------------------------------------------------------

  const MediaSourceClass = window.ManagedMediaSource || window.MediaSource || null;
  const mseSupports = (type) => {
    try { return !!MediaSourceClass && MediaSourceClass.isTypeSupported(type); } catch (e) { return false; }
  };

  function chooseEngine() {
    const engine = params.get('engine');
    const protocol = params.get('protocol');
    if (engine && !(engine in ENGINE_NAMES)) {
      throw new PlayerError('Unknown engine', `engine must be one of ${Object.keys(ENGINE_NAMES).join(', ')}.`);
    }
    if (protocol && !['hls', 'dash'].includes(protocol)) {
      throw new PlayerError('Unknown protocol', 'protocol must be hls or dash.');
    }
    if (engine === 'native' || !MediaSourceClass) {
      // No MSE (older iPhones): only the browser's own HLS player can work.
      if (video.canPlayType(TYPES.hls)) return { engine: 'native', protocol: 'hls' };
      throw new PlayerError('Cannot play here', 'This browser supports neither Media Source Extensions nor HLS.');
    }
    if (engine) {
      const p = protocol || (engine === 'hls' ? 'hls' : 'dash');
      if (engine === 'hls' && p !== 'hls') throw new PlayerError('Unsupported combination', 'hls.js plays HLS only: use engine=dash or engine=shaka for DASH.');
      if (engine === 'dash' && p !== 'dash') throw new PlayerError('Unsupported combination', 'dash.js plays DASH only: use engine=hls or engine=shaka for HLS.');
      return { engine, protocol: p };
    }
    if (protocol) return { engine: protocol === 'hls' ? 'hls' : 'dash', protocol };
    if (config.encrypted) return { engine: 'dash', protocol: 'dash' }; // CENC + ClearKey: DASH by default (HLS on request)
    // HLS carries H.264/H.265/AV1 (CMAF); the MPD also lists VP8 (WebM) for browsers without H.264.
    // Between families the engine decides by what MSE decodes: AV1 where it can, H.264 otherwise.
    if (mseSupports(TYPES.h264) || mseSupports(TYPES.av1)) return { engine: 'hls', protocol: 'hls', auto: true };
    if (mseSupports(TYPES.vp8)) return { engine: 'dash', protocol: 'dash', auto: true };
    throw new PlayerError('Cannot play here', 'This browser can decode none of the video formats offered (H.264, AV1, VP8).');
  }

  const scripts = {};
  function loadLibrary(engine) {
    if (engine === 'native') return Promise.resolve();
    if (!scripts[engine]) {
      scripts[engine] = new Promise((resolve, reject) => {
        const lib = config.engines[engine];
        const el = document.createElement('script');
        el.src = lib.src;
        el.integrity = lib.integrity; // the browser refuses bytes that differ from vendor.lock.json
        el.crossOrigin = 'anonymous';
        el.onload = resolve;
        el.onerror = () => {
          delete scripts[engine];
          reject(new PlayerError('Player failed to load', `${ENGINE_NAMES[engine]} could not be loaded (network error or failed integrity check).`, true));
        };
        document.head.appendChild(el);
      });
    }
    return scripts[engine];
  }

  // ---- engine adapters: levels(), current(), auto(), select(i | -1), bandwidth(), play(), destroy() ----
  // Audio tracks (languages, description): audioTracks() -> [{index, lang, name, role}], audioTrack(), selectAudio(i).

  // hls.js `drmSystems[…].generateRequest`: the playlist KID as ClearKey `keyids` init data (EME §9.1.3).
  function keyidsInitData(initDataType, initData, context) {
    const kid = context && context.decryptdata && context.decryptdata.keyId;
    if (initData || !kid) return { initDataType, initData };
    const b64url = btoa(String.fromCharCode(...kid)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    return { initDataType: 'keyids', initData: new TextEncoder().encode(JSON.stringify({ kids: [b64url] })).buffer };
  }

  // ---- low-latency live (latency_mode "low"): detected from the manifest, so it works behind any CDN ----
  // Standard streams keep the engines' settings as they were; these apply only once a manifest shows LL.
  const LOW_LATENCY = {
    // hls.js aims at the playlist's PART-HOLD-BACK (3 parts) when its lowLatencyMode is on (its default);
    // when playback falls behind that (a stall, a slow start) it plays up to this much faster to catch up.
    hlsCatchupRate: 1.5,
    // dash.js, when the MPD names no latency target (ServiceDescription): a little over one LL segment
    // (1-2 s) behind the wall-clock edge, against standard's 3 segments; it speeds up or slows down by up
    // to 20 % to stay there, and jumps back to it when more than maxDrift seconds off.
    dashLiveDelay: 2.5,
    dashCatchup: { enabled: true, maxDrift: 3, playbackRate: { min: -0.2, max: 0.2 } },
  };

  /** hls.js settings for an LL-HLS playlist `details` (bench/live_latency.py plays its streams with this same source). */
  function hlsLowLatencyConfig(details) {
    // hls.js aims at PART-HOLD-BACK; turn on its catch-up (read on every timeupdate), which only acts in lowLatencyMode.
    const settings = { maxLiveSyncPlaybackRate: LOW_LATENCY.hlsCatchupRate };
    // After each stall hls.js moves its target back for good by liveSyncOnStallIncrease (1 s by
    // default: more than the whole PART-HOLD-BACK of an LL stream). Back off one part instead;
    // bench/live_latency.py showed the 1 s steps were most of the LL latency on a loaded machine.
    if (details.partTarget > 0) settings.liveSyncOnStallIncrease = details.partTarget;
    return settings;
  }

  /** An LL-HLS media playlist, as hls.js parsed it: parts listed (EXT-X-PART-INF, EXT-X-PART). */
  const isLowLatencyPlaylist = (details) => !!(details && details.live && details.partList && details.partList.length);

  /** A parsed MPD (dash.js's MANIFEST_LOADED data) of an LL-DASH stream: some SegmentTemplate or
   * BaseURL has availabilityTimeOffset > 0 (segments requested while written) or availabilityTimeComplete
   * false. Walks the parsed tree instead of naming dash.js's internal field paths. */
  function mpdLowLatency(mpd) {
    const found = { lowLatency: false, serviceDescription: false };
    const seen = new Set();
    const walk = (node, depth) => {
      if (!node || typeof node !== 'object' || seen.has(node) || depth > 12) return;
      seen.add(node);
      for (const [key, value] of Object.entries(node)) {
        if (/^availabilityTimeOffset$/i.test(key) && parseFloat(value) > 0) found.lowLatency = true;
        else if (/^availabilityTimeComplete$/i.test(key) && String(value) === 'false') found.lowLatency = true;
        else if (/^ServiceDescription/i.test(key)) found.serviceDescription = true;
        walk(value, depth + 1);
      }
    };
    walk(mpd, 0);
    return found;
  }

  function hlsAdapter(url, events) {
    const hlsConfig = { debug: params.get('debug') === '1', startPosition: opts.start ?? -1, enableWorker: true, capLevelToPlayerSize: false };
    // Encrypted HLS is SAMPLE-AES-CTR over the DASH segments: hls.js asks EME (ClearKey) for the KID
    // of the playlist's org.w3.clearkey EXT-X-KEY and posts the request to our licence URL.
    // Our init segments carry no pssh, so hls.js has no initData of its own: hand EME the KID as `keyids`.
    if (config.encrypted) {
      Object.assign(hlsConfig, { emeEnabled: true, drmSystems: { 'org.w3.clearkey': {
        licenseUrl: licenceUrl(), generateRequest: keyidsInitData } } });
    }
    const hls = new window.Hls(hlsConfig);
    let recovered = false;
    hls.on(window.Hls.Events.ERROR, (_, d) => {
      if (!d.fatal) return;
      if (d.type === window.Hls.ErrorTypes.MEDIA_ERROR && !recovered) { recovered = true; hls.recoverMediaError(); return; }
      events.fatal(`${d.details}${d.response && d.response.code ? ` (HTTP ${d.response.code})` : ''}`);
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => { events.levels(); if (opts.autoplay) playVideo(); });
    hls.on(window.Hls.Events.LEVEL_SWITCHED, () => events.switched());
    // A live playlist has no ENDLIST; when the stream ends the next reload has one (live -> false).
    let live = false;
    let lowLatency = null;
    hls.on(window.Hls.Events.LEVEL_LOADED, (_, d) => {
      live = !!(d.details && d.details.live);
      // LL-HLS: hls.js already loads parts and blocks on _HLS_msn/_HLS_part (lowLatencyMode); add our LL settings.
      if (!lowLatency && hls.config.lowLatencyMode && isLowLatencyPlaylist(d.details)) {
        Object.assign(hls.config, hlsLowLatencyConfig(d.details));
        lowLatency = { partTarget: d.details.partTarget, holdBack: d.details.partHoldBack, catchupRate: LOW_LATENCY.hlsCatchupRate };
        if (opts.start === null) video.addEventListener('timeupdate', startNearEdge);
      }
    });
    // hls.js starts at an independent part (a segment start) and its catch-up only closes gaps of up to
    // one target duration; a slow first load can leave it seconds behind for good. Once, as playback
    // starts: too far behind the target latency, jump to it (later on, DVR seeks stay where they are).
    const startNearEdge = () => {
      if (!(video.currentTime > 0)) return;
      video.removeEventListener('timeupdate', startNearEdge);
      const details = hls.latestLevelDetails;
      const target = hls.liveSyncPosition;
      if (details && Number.isFinite(target) && target - video.currentTime > details.targetduration) video.currentTime = target;
    };
    hls.on(window.Hls.Events.AUDIO_TRACKS_UPDATED, () => events.audio());
    hls.on(window.Hls.Events.AUDIO_TRACK_SWITCHED, () => events.audio());
    hls.loadSource(url);
    hls.attachMedia(video);
    const levels = () => hls.levels.map((l, i) => ({ index: i, width: l.width, height: l.height, bitrate: l.bitrate, codec: l.videoCodec || '' }));
    return {
      version: window.Hls.version,
      levels,
      current: () => hls.currentLevel, // the level of the fragment playing now
      loading: () => hls.loadLevel, // the level the ABR fetches next
      auto: () => hls.autoLevelEnabled,
      live: () => live,
      liveEdge: () => hls.liveSyncPosition, // where hls.js plays "live" (a few segments behind the newest)
      lowLatency: () => lowLatency,
      latency: () => hls.latency, // seconds behind the newest listed media (its parts too, in LL)
      goLive: () => { if (Number.isFinite(hls.liveSyncPosition)) video.currentTime = hls.liveSyncPosition; },
      select: (i) => { hls.currentLevel = i; }, // -1: automatic; an index switches now (flushes the buffer)
      audioTracks: () => (hls.audioTracks || []).map((t, i) => ({
        index: i, lang: t.lang || '', name: t.name || '',
        role: /describes-video/.test(t.characteristics || '') ? 'description' : '',
      })),
      audioTrack: () => hls.audioTrack,
      selectAudio: (i) => { hls.audioTrack = i; },
      bandwidth: () => hls.bandwidthEstimate,
      play: playVideo,
      destroy: () => hls.destroy(),
    };
  }

  function dashAdapter(url, events) {
    const dashjs = window.dashjs;
    const player = dashjs.MediaPlayer().create();
    const abr = (on) => player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: on } } } });
    player.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } });
    const E = dashjs.MediaPlayer.events;
    player.on(E.ERROR, (e) => {
      const err = e && e.error;
      events.fatal(err ? `${err.message || 'error'}${err.code ? ` (code ${err.code})` : ''}` : 'error');
    });
    player.on(E.PLAYBACK_ERROR, (e) => events.fatal((e && e.error && e.error.message) || 'media error'));
    player.on(E.STREAM_INITIALIZED, () => events.levels());
    // LL-DASH: dash.js turns on its low-latency mode by itself on such an MPD and follows the MPD's
    // ServiceDescription (latency target, catch-up rates; our origin sends one), which any setting here
    // would override. Without one, settle near the edge and catch up. Settings change at runtime (events).
    let lowLatency = null;
    player.on(E.MANIFEST_LOADED, (e) => {
      const found = !lowLatency && e && e.data ? mpdLowLatency(e.data) : null;
      if (!found || !found.lowLatency) return;
      if (found.serviceDescription) { lowLatency = { from: 'mpd' }; return; }
      player.updateSettings({ streaming: { delay: { liveDelay: LOW_LATENCY.dashLiveDelay }, liveCatchup: LOW_LATENCY.dashCatchup } });
      lowLatency = { from: 'player', liveDelay: LOW_LATENCY.dashLiveDelay };
    });
    if (E.PLAYBACK_NOT_ALLOWED) player.on(E.PLAYBACK_NOT_ALLOWED, autoplayBlocked);
    // The representation on screen: getCurrentRepresentationForType() is the one being downloaded,
    // which the ABR changes seconds before its first frame is shown.
    let rendered = null;
    player.on(E.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType !== 'video') return;
      rendered = e.newRepresentation ? e.newRepresentation.id : null;
      events.switched();
    });
    player.on(E.STREAM_INITIALIZED, () => events.audio());
    player.on(E.TRACK_CHANGE_RENDERED, () => events.audio());
    if (config.encrypted) player.setProtectionData({ 'org.w3.clearkey': { serverURL: licenceUrl() } });
    // dash.js starts playback itself (autoPlay): an early video.play() can stall it.
    player.initialize(video, url, opts.autoplay, opts.start ?? NaN);
    const reps = () => player.getRepresentationsByType('video') || [];
    const audioList = () => player.getTracksFor('audio') || [];
    const text = (x) => (x && typeof x === 'object' ? x.text ?? x.value ?? '' : x || ''); // dash.js 5: objects
    return {
      version: player.getVersion(),
      levels: () => reps().map((r, i) => ({ index: i, width: r.width, height: r.height, bitrate: r.bandwidth, codec: r.codecs || '' })),
      current: () => (rendered === null ? -1 : reps().findIndex((r) => r.id === rendered)),
      loading: () => {
        const cur = player.getCurrentRepresentationForType('video');
        return cur ? reps().findIndex((r) => r.id === cur.id) : -1;
      },
      auto: () => player.getSettings().streaming.abr.autoSwitchBitrate.video,
      live: () => player.isReady() && player.isDynamic(),
      liveEdge: () => {
        const end = seekableEnd();
        const delay = player.getTargetLiveDelay ? player.getTargetLiveDelay() : NaN;
        return Number.isFinite(end) && Number.isFinite(delay) ? end - delay : null;
      },
      goLive: () => { if (player.seekToOriginalLive) player.seekToOriginalLive(); else player.seek(player.duration()); },
      lowLatency: () => lowLatency,
      latency: () => (player.isReady() && player.isDynamic() ? player.getCurrentLiveLatency() : NaN),
      select: (i) => {
        if (i < 0) { abr(true); return; }
        abr(false);
        player.setRepresentationForTypeById('video', reps()[i].id, true);
      },
      bandwidth: () => (player.getAverageThroughput('video') || 0) * 1000, // kbit/s
      audioTracks: () => audioList().map((t, i) => ({
        index: i, lang: t.lang || '', name: text((t.labels || [])[0]), role: text((t.roles || [])[0]),
      })),
      audioTrack: () => {
        const cur = player.getCurrentTrackFor('audio');
        return cur ? audioList().findIndex((t) => t.id === cur.id && t.lang === cur.lang && t.index === cur.index) : -1;
      },
      selectAudio: (i) => player.setCurrentTrack(audioList()[i]),
      play: () => (player.isReady() ? player.play() : player.setAutoPlay(true)),
      destroy: () => player.reset(),
    };
  }

  function shakaAdapter(url, events) {
    const shaka = window.shaka;
    shaka.polyfill.installAll();
    if (!shaka.Player.isBrowserSupported()) throw new PlayerError('Cannot play here', 'Shaka Player does not support this browser.');
    const player = new shaka.Player();
    // The Network Information API's guess is capped and wrong headless: measure instead.
    player.configure({ abr: { enabled: true, useNetworkInformation: false } });
    // Between codec families Shaka otherwise takes the one with the lowest bandwidth, which on short or
    // easy content can be H.264 (SVT-AV1's VBR overshoots): prefer AV1 where it decodes; it drops
    // undecodable variants first, so elsewhere this leaves H.264.
    player.configure({ preferredVideo: [{ label: '', role: '', language: '', codec: 'av01', hdrLevel: '', layout: '' }] });
    // HLS: Shaka fetches the raw key from the playlist's KEYFORMAT="identity" URI (token carried) and
    // licenses its ClearKey CDM itself; a configured licence server would replace that, so only DASH sets one.
    if (config.encrypted && !new URL(url).pathname.endsWith('.m3u8')) {
      player.configure({ drm: { servers: { 'org.w3.clearkey': licenceUrl() } } });
      // Shaka takes the MPD's (relative) dashif:Laurl first and resolves it against the page: aim it at ours.
      player.getNetworkingEngine().registerRequestFilter((type, request) => {
        if (type === shaka.net.NetworkingEngine.RequestType.LICENSE) request.uris = [licenceUrl()];
      });
    }
    // Not every error event stops Shaka: RECOVERABLE ones never do, and on a live stream its default
    // failureCallback retries HTTP failures itself (BAD_HTTP_STATUS, HTTP_ERROR, TIMEOUT: 1001-1003), for
    // instance an LL-HLS preload-hinted part that is not there yet; it reports them as CRITICAL first.
    player.addEventListener('error', (e) => {
      const err = e.detail || {};
      if (err.severity === shaka.util.Error.Severity.RECOVERABLE) return;
      if (player.isLive() && [1001, 1002, 1003].includes(err.code)) { console.warn(`Shaka retries: error ${err.code}`, err.data && err.data[0]); return; }
      events.fatal(`Shaka error ${err.code}`);
    });
    player.addEventListener('variantchanged', () => events.switched());
    player.addEventListener('adaptation', () => events.switched());
    player.addEventListener('trackschanged', () => events.levels());
    player.addEventListener('audiotrackschanged', () => events.audio());
    player.addEventListener('variantchanged', () => events.audio());
    const videoTracks = () => {
      const seen = new Map();
      for (const t of player.getVariantTracks()) {
        const key = t.videoId ?? t.id;
        if (!seen.has(key) || t.active) seen.set(key, t);
      }
      return [...seen.values()].sort((a, b) => (b.height || 0) - (a.height || 0));
    };
    player.attach(video)
      .then(() => player.load(url, opts.start ?? null))
      .then(() => { events.levels(); if (opts.autoplay) playVideo(); })
      .catch((e) => events.fatal(`Shaka error ${e && e.code}`));
    return {
      version: String(shaka.Player.version).replace(/^v/, ''),
      levels: () => videoTracks().map((t, i) => ({ index: i, width: t.width, height: t.height, bitrate: t.videoBandwidth || t.bandwidth, codec: t.videoCodec || '' })),
      current: () => videoTracks().findIndex((t) => t.active), // Shaka's active track is the one streamed
      auto: () => player.getConfiguration().abr.enabled,
      live: () => player.isLive(),
      liveEdge: () => player.seekRange().end, // already the presentation delay behind the newest segment
      lowLatency: () => null, // Shaka keeps its defaults: it plays LL streams as standard ones
      latency: () => player.getStats().liveLatency,
      goLive: () => player.goToLive(),
      select: (i) => {
        if (i < 0) { player.configure({ abr: { enabled: true } }); return; }
        player.configure({ abr: { enabled: false } });
        player.selectVariantTrack(videoTracks()[i], true);
      },
      bandwidth: () => player.getStats().estimatedBandwidth,
      audioTracks: () => player.getAudioTracks().map((t, i) => ({
        index: i, lang: t.language || '', name: t.label || '', role: (t.roles || [])[0] || '',
      })),
      audioTrack: () => player.getAudioTracks().findIndex((t) => t.active),
      selectAudio: (i) => player.selectAudioTrack(player.getAudioTracks()[i]),
      play: playVideo,
      destroy: () => player.destroy(),
    };
  }

  function nativeAdapter(url, events) {
    video.src = url + (opts.start ? `#t=${opts.start}` : '');
    video.addEventListener('loadedmetadata', () => events.levels(), { once: true });
    if (opts.autoplay) playVideo();
    return {
      version: '', levels: () => [], current: () => -1, auto: () => true, select: () => {}, bandwidth: () => NaN,
      live: () => video.duration === Infinity, liveEdge: () => null, goLive: () => { video.currentTime = seekableEnd(); },
      play: playVideo, destroy: () => { video.removeAttribute('src'); video.load(); },
    };
  }

  const ADAPTERS = { hls: hlsAdapter, dash: dashAdapter, shaka: shakaAdapter, native: nativeAdapter };

  // ---- lifecycle --------------------------------------------------------------------------------

  const state = { engine: null, protocol: null, auto: false, adapter: null, error: null, retryTimer: null };

  function autoplayBlocked() { // the browser wants a click first: show the big play button again
    if (video.paused) root.classList.remove('started');
    root.classList.add('paused');
  }

  function playVideo() {
    const p = video.play();
    if (p && p.catch) p.catch(autoplayBlocked);
  }

  async function start(choice) {
    clearTimeout(state.retryTimer);
    hideMessage();
    if (state.adapter) { try { state.adapter.destroy(); } catch (e) { /* already gone */ } state.adapter = null; }
    try {
      choice = choice || chooseEngine();
      Object.assign(state, { engine: choice.engine, protocol: choice.protocol, auto: !!choice.auto, error: null });
      root.dataset.engine = choice.engine;
      showSpinner(true);
      await loadLibrary(choice.engine);
      const url = manifestUrl(choice.protocol);
      state.adapter = ADAPTERS[choice.engine](url, {
        fatal: (detail) => onFatal(url, detail),
        levels: () => { renderQuality(); post('ready'); },
        switched: () => { renderQuality(); updateStats(); },
        audio: () => renderAudio(),
      });
    } catch (e) {
      showError(e instanceof PlayerError ? e : new PlayerError('Playback failed', String(e && e.message || e), true));
    }
  }

  /** Turn an engine's fatal error into a sentence: ask the origin what the manifest answers. */
  async function onFatal(url, detail) {
    if (state.error) return;
    state.error = detail;
    let status = 0;
    let body = null;
    try {
      const r = await fetch(url, { cache: 'no-store' });
      status = r.status;
      if (!r.ok) body = await r.json().catch(() => null);
    } catch (e) { status = -1; }
    const message = body && body.error ? body.error.message : '';
    const started = root.classList.contains('started') && video.currentTime > 0;
    if (status === -1) {
      showError(new PlayerError('Cannot reach the video server', 'Check the network connection, then try again.', true));
    } else if (status === 404 && /playable|processing|not ready/i.test(message)) {
      showError(new PlayerError('Still processing', 'This video is being prepared. It will start as soon as it is ready.'));
      state.retryTimer = setTimeout(() => start(), 4000);
    } else if (state.auto && state.engine === 'hls' && !started && (status === 404 || status < 400) && mseSupports(TYPES.vp8)) {
      // Nothing in the HLS ladder for this browser or filter (HLS has no VP8): the MPD has every family.
      start({ engine: 'dash', protocol: 'dash' });
    } else if (status === 401 || status === 403) {
      showError(new PlayerError('Playback not allowed', 'This video needs a valid playback token: the link is incomplete or has expired.', false, message));
    } else if (status === 404) {
      showError(new PlayerError('Video not found', 'This video does not exist or was deleted.', false, message));
    } else if (status >= 400) {
      showError(new PlayerError('Playback failed', `The video server answered ${status}.`, true, message));
    } else {
      showError(new PlayerError('Playback failed', `${ENGINE_NAMES[state.engine]} could not play this video: ${detail}.`, true));
    }
  }

  // ---- UI -------------------------------------------------------------------------------------

  function showSpinner(on) { ui.spinner.hidden = !on; }
  function hideMessage() { ui.message.hidden = true; root.classList.remove('failed'); }
  function showError(err) {
    showSpinner(false);
    ui.messageTitle.textContent = err.title;
    ui.messageText.textContent = err.message;
    ui.messageDetail.textContent = err.detail || '';
    ui.retry.hidden = !err.retry;
    ui.message.hidden = false;
    root.classList.add('failed');
    root.dataset.error = `${err.title}: ${err.message}${err.detail ? ` (${err.detail})` : ''}`;
    post('error', { title: err.title, message: err.message, detail: err.detail });
  }
  ui.retry.addEventListener('click', () => start());

  const fmtTime = (s, round) => {
    if (!Number.isFinite(s)) return '0:00';
    s = Math.max(0, round ? Math.round(s) : Math.floor(s));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
  };
  const fmtRate = (bps) => (!Number.isFinite(bps) || bps <= 0 ? '–'
    : bps >= 1e6 ? `${(bps / 1e6).toFixed(bps >= 1e7 ? 0 : 1)} Mbps` : `${Math.round(bps / 1e3)} kbps`);
  const levelName = (l) => (l.height ? `${Math.min(l.width || l.height, l.height)}p` : fmtRate(l.bitrate)); // short side, as rendition ids
  const codecName = (c) => (/^avc1/.test(c) ? 'H.264' : /^(hvc1|hev1)/.test(c) ? 'H.265' : /^vp0?8/.test(c) ? 'VP8' : /^vp0?9/.test(c) ? 'VP9' : /^av01/.test(c) ? 'AV1' : c);

  const seekableStart = () => (video.seekable.length ? video.seekable.start(0) : NaN);
  const seekableEnd = () => (video.seekable.length ? video.seekable.end(video.seekable.length - 1) : NaN);

  /** The level on screen: the one whose size the video element shows. An engine's own answer can be
   * the rendition its ABR fetches next, seconds before that one's first frame is shown (dash.js once
   * said 1280×720 over a 426×240 picture). The engine's index breaks ties (same size, other bitrate)
   * and answers before the first frame. Pure: (levels, index, width, height) -> index. */
  function onScreenLevel(levels, engineIndex, width, height) {
    if (!width || !height) return engineIndex;
    let same = levels.filter((l) => l.width === width && l.height === height);
    if (!same.length) same = levels.filter((l) => l.height === height); // anamorphic renditions
    if (!same.length) return engineIndex;
    return same.some((l) => l.index === engineIndex) ? engineIndex : same[0].index;
  }
  const playingLevel = (a) => onScreenLevel(a.levels(), a.current(), video.videoWidth, video.videoHeight);

  // ---- live: a LIVE badge, the seek bar over the DVR window, "go live" when behind ----------------

  const isLive = () => !!(state.adapter && state.adapter.live());
  /** The engine's low-latency settings in force (null: a standard stream, or an engine that keeps its own). */
  const lowLatency = () => (state.adapter && state.adapter.lowLatency ? state.adapter.lowLatency() : null);
  /** Seconds behind the live edge as the engine measures it (NaN when it does not say). */
  const latency = () => {
    const v = state.adapter && state.adapter.latency ? state.adapter.latency() : NaN;
    return typeof v === 'number' ? v : NaN;
  };
  /** Where the engine plays "live" (its target latency behind the newest segment). */
  function liveTarget() {
    const edge = state.adapter ? state.adapter.liveEdge() : null;
    return Number.isFinite(edge) ? edge : seekableEnd() - 6;
  }
  /** Seconds behind the engine's live target (0 when at or ahead of it). */
  const behindLive = () => Math.max(0, liveTarget() - video.currentTime);
  /** Playback drifts by up to a segment between playlist reloads: "at live" allows half the latency. */
  const atLive = () => behindLive() <= Math.max(3, 0.5 * (seekableEnd() - liveTarget()));
  function goLive() {
    if (!state.adapter) return;
    state.adapter.goLive();
    if (video.paused) state.adapter.play();
  }

  function bufferAhead() {
    const t = video.currentTime;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= t + 0.1 && t <= video.buffered.end(i)) return video.buffered.end(i) - t;
    }
    return 0;
  }

  function renderQuality() {
    const a = state.adapter;
    if (!a) return;
    const levels = a.levels();
    const current = levels[playingLevel(a)];
    const auto = a.auto();
    ui.quality.hidden = levels.length < 2;
    ui.qualityLabel.textContent = auto ? `Auto${current ? ` · ${levelName(current)}` : ''}` : current ? levelName(current) : '–';
    if (ui.menu.hidden) return;
    const sameHeight = new Set(levels.map((l) => l.height)).size < levels.length;
    const chosen = a.loading ? a.loading() : a.current(); // a manual choice is checked before its frames show
    const items = [{ index: -1, label: 'Auto', note: current && auto ? levelName(current) : '' }]
      .concat(levels.slice().sort((x, y) => y.height - x.height || y.bitrate - x.bitrate).map((l) => ({
        index: l.index, label: levelName(l) + (sameHeight ? ` ${codecName(l.codec)}` : ''), note: fmtRate(l.bitrate),
      })));
    ui.menu.replaceChildren(Object.assign(document.createElement('div'), { className: 'abr-menu-title', textContent: 'Quality' }));
    for (const item of items) {
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('role', 'menuitemradio');
      b.dataset.level = String(item.index);
      b.setAttribute('aria-checked', String(item.index === -1 ? auto : !auto && item.index === chosen));
      const label = Object.assign(document.createElement('span'), { className: 'abr-menu-label', textContent: item.label });
      b.append(label, Object.assign(document.createElement('small'), { textContent: item.note }));
      b.addEventListener('click', () => { a.select(item.index); ui.menu.hidden = true; renderQuality(); });
      ui.menu.append(b);
    }
  }

  function audioName(t) {
    const base = t.name || t.lang || `Track ${t.index + 1}`;
    return t.role === 'description' && !/\bAD\b|descri/i.test(base) ? `${base} (AD)` : base;
  }

  // The audio menu: shown only when there is more than one audio track to choose from.
  function renderAudio() {
    const a = state.adapter;
    if (!a || !a.audioTracks) return;
    const tracks = a.audioTracks();
    const current = a.audioTrack();
    ui.audio.hidden = tracks.length < 2;
    ui.audioLabel.textContent = tracks[current] ? (tracks[current].lang || audioName(tracks[current])) : '';
    if (ui.audioMenu.hidden) return;
    ui.audioMenu.replaceChildren(Object.assign(document.createElement('div'), { className: 'abr-menu-title', textContent: 'Audio' }));
    for (const t of tracks) {
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('role', 'menuitemradio');
      b.dataset.track = String(t.index);
      b.setAttribute('aria-checked', String(t.index === current));
      const label = Object.assign(document.createElement('span'), { className: 'abr-menu-label', textContent: audioName(t) });
      b.append(label, Object.assign(document.createElement('small'), { textContent: t.lang }));
      b.addEventListener('click', () => { a.selectAudio(t.index); ui.audioMenu.hidden = true; renderAudio(); });
      ui.audioMenu.append(b);
    }
  }

  function updateStats() {
    if (ui.stats.hidden || !state.adapter) return;
    const a = state.adapter;
    const levels = a.levels();
    const shown = playingLevel(a);
    const l = levels[shown];
    const next = a.loading ? a.loading() : -1;
    const describe = (x) => `${x.width}×${x.height} · ${fmtRate(x.bitrate)} · ${codecName(x.codec)}`;
    const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    const live = isLive();
    const windowLength = seekableEnd() - seekableStart();
    ui.stats.textContent = [
      `Engine     ${ENGINE_NAMES[state.engine]} ${a.version} · ${state.protocol.toUpperCase()}`,
      `Rendition  ${l ? describe(l) : '–'}${a.auto() ? ' (auto)' : ''}`,
      // The ABR's next choice, while its frames are not on screen yet.
      next >= 0 && shown >= 0 && next !== shown && levels[next] ? `Loading    ${describe(levels[next])}` : '',
      `Video      ${video.videoWidth}×${video.videoHeight}`,
      live ? `Live       ${(seekableEnd() - video.currentTime).toFixed(1)} s behind the newest segment` : '',
      live && Number.isFinite(windowLength) ? `DVR        ${fmtTime(windowLength, true)} window` : '',
      live && Number.isFinite(latency()) ? `Latency    ${latency().toFixed(1)} s${lowLatency() ? ' · low-latency mode' : ''}` : '',
      `Bandwidth  ${fmtRate(a.bandwidth())} estimated`,
      `Buffer     ${bufferAhead().toFixed(1)} s ahead`,
      q ? `Dropped    ${q.droppedVideoFrames} of ${q.totalVideoFrames} frames` : '',
    ].filter(Boolean).join('\n');
  }
  function setStats(on) {
    ui.stats.hidden = !on;
    ui.statsToggle.setAttribute('aria-pressed', String(on));
    updateStats();
  }
  setInterval(() => { updateStats(); if (isLive()) syncTime(); }, 500); // the live window moves while paused

  function togglePlay() {
    if (!state.adapter) { // the library is still loading: play as soon as it is ready
      opts.autoplay = true;
      root.classList.add('started');
      return;
    }
    if (video.paused || video.ended) state.adapter.play(); else video.pause();
  }
  function seekBy(delta) {
    if (isLive()) { // within the DVR window, never past the live target
      const start = seekableStart();
      if (!Number.isFinite(start)) return;
      video.currentTime = Math.min(Math.max(start, video.currentTime + delta), Math.max(start, liveTarget()));
      return;
    }
    if (!Number.isFinite(video.duration)) return;
    video.currentTime = Math.min(Math.max(0, video.currentTime + delta), video.duration - 0.1);
  }
  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
    else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
  }
  function toggleMute() { video.muted = !video.muted; if (!video.muted && video.volume === 0) video.volume = 0.5; }

  function syncTime() {
    const live = isLive();
    root.classList.toggle('live', live);
    ui.liveBadge.hidden = !live;
    if (live) { syncLive(); return; }
    root.classList.remove('behind-live');
    ui.goLive.hidden = true;
    const d = video.duration;
    const t = video.currentTime;
    ui.time.innerHTML = '';
    ui.time.append(fmtTime(t), Object.assign(document.createElement('span'), { className: 'abr-duration', textContent: ` / ${fmtTime(d, true)}` }));
    if (Number.isFinite(d) && d > 0) {
      if (!seeking) ui.seek.value = String(Math.round((t / d) * 1000));
      let end = 0;
      for (let i = 0; i < video.buffered.length; i++) end = Math.max(end, video.buffered.end(i));
      ui.seek.style.setProperty('--played', `${(t / d) * 100}%`);
      ui.seek.style.setProperty('--buffered', `${(end / d) * 100}%`);
    }
  }
  /** Live: the seek bar spans the DVR window, from the oldest segment (left) to the engine's live target
   * (right: "live" is a full bar); the time says how far behind live. */
  function syncLive() {
    const start = seekableStart();
    const end = liveTarget();
    const at = atLive();
    root.classList.toggle('behind-live', !at);
    ui.liveBadge.setAttribute('aria-label', at ? 'Live' : 'Live (behind)');
    ui.goLive.hidden = at;
    ui.time.textContent = at ? '' : `−${fmtTime(behindLive(), true)}`;
    if (!(end > start)) return;
    const span = end - start;
    const t = Math.min(Math.max(video.currentTime, start), end);
    if (!seeking) ui.seek.value = String(Math.round(((t - start) / span) * 1000));
    let buffered = t;
    for (let i = 0; i < video.buffered.length; i++) buffered = Math.max(buffered, video.buffered.end(i));
    ui.seek.style.setProperty('--played', `${((t - start) / span) * 100}%`);
    ui.seek.style.setProperty('--buffered', `${((Math.min(buffered, end) - start) / span) * 100}%`);
  }
  let seeking = false;
  ui.seek.addEventListener('input', () => {
    seeking = true;
    if (isLive()) {
      const start = seekableStart();
      const end = liveTarget();
      if (!(end > start)) return;
      // The right end is live: the engine's own target, not the newest (still growing) segment.
      if (+ui.seek.value >= 995) goLive(); else video.currentTime = start + (ui.seek.value / 1000) * (end - start);
      return;
    }
    if (Number.isFinite(video.duration)) video.currentTime = (ui.seek.value / 1000) * video.duration;
  });
  ui.seek.addEventListener('change', () => { seeking = false; });

  ui.bigplay.addEventListener('click', togglePlay);
  ui.play.addEventListener('click', togglePlay);
  video.addEventListener('click', () => { if (!ui.menu.hidden) ui.menu.hidden = true; else togglePlay(); });
  video.addEventListener('dblclick', toggleFullscreen);
  ui.mute.addEventListener('click', toggleMute);
  ui.volume.addEventListener('input', () => { video.volume = +ui.volume.value; video.muted = video.volume === 0; });
  ui.fullscreen.addEventListener('click', toggleFullscreen);
  ui.goLive.addEventListener('click', () => { goLive(); syncTime(); });
  ui.statsToggle.addEventListener('click', () => setStats(ui.stats.hidden));
  ui.quality.addEventListener('click', (e) => { e.stopPropagation(); ui.menu.hidden = !ui.menu.hidden; renderQuality(); });
  document.addEventListener('click', (e) => { if (!ui.menu.contains(e.target) && e.target !== ui.quality) ui.menu.hidden = true; });
  ui.audio.addEventListener('click', (e) => { e.stopPropagation(); ui.audioMenu.hidden = !ui.audioMenu.hidden; ui.menu.hidden = true; renderAudio(); });
  document.addEventListener('click', (e) => { if (!ui.audioMenu.contains(e.target) && e.target !== ui.audio) ui.audioMenu.hidden = true; });

  video.addEventListener('play', () => { root.classList.remove('paused'); root.classList.add('started'); post('play'); });
  video.addEventListener('pause', () => { root.classList.add('paused'); wake(); post('pause'); });
  video.addEventListener('playing', () => { showSpinner(false); hideMessage(); root.classList.add('started'); post('playing'); });
  video.addEventListener('waiting', () => showSpinner(true));
  video.addEventListener('canplay', () => showSpinner(false));
  video.addEventListener('loadedmetadata', () => showSpinner(false));
  video.addEventListener('ended', () => { root.classList.add('paused'); post('ended'); });
  video.addEventListener('volumechange', () => {
    root.classList.toggle('muted', video.muted || video.volume === 0);
    ui.volume.value = String(video.muted ? 0 : video.volume);
  });
  video.addEventListener('resize', () => { renderQuality(); updateStats(); });
  let lastPost = 0;
  video.addEventListener('timeupdate', () => {
    syncTime();
    if (Date.now() - lastPost > 1000) { lastPost = Date.now(); post('timeupdate'); }
  });
  video.addEventListener('durationchange', syncTime);
  video.addEventListener('progress', syncTime);

  // Keyboard: space/k play-pause, ←/→ seek 5 s, j/l 10 s, ↑/↓ volume, f full screen, m mute, i stats.
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof HTMLInputElement && e.key !== ' ' && e.key !== 'k') return; // sliders keep arrows
    const actions = {
      ' ': togglePlay, k: togglePlay, ArrowLeft: () => seekBy(-5), ArrowRight: () => seekBy(5),
      j: () => seekBy(-10), l: () => seekBy(10), f: toggleFullscreen, m: toggleMute, i: () => setStats(ui.stats.hidden),
      ArrowUp: () => { video.muted = false; video.volume = Math.min(1, video.volume + 0.1); },
      ArrowDown: () => { video.volume = Math.max(0, video.volume - 0.1); },
      Escape: () => { ui.menu.hidden = true; },
    };
    const action = actions[e.key] || actions[e.key.toLowerCase()];
    if (!action) return;
    e.preventDefault();
    action();
    wake();
  });

  // Controls fade out after a while without pointer movement during playback.
  let idleTimer = null;
  function wake() {
    root.classList.remove('idle');
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => { if (!video.paused && ui.menu.hidden) root.classList.add('idle'); }, 2500);
  }
  root.addEventListener('pointermove', wake);
  root.addEventListener('pointerdown', wake);

  // The poster, when the origin has one (it may not: then there is simply none).
  function loadPoster() {
    const q = new URLSearchParams();
    if (params.get('token')) q.set('token', params.get('token'));
    if (opts.start) q.set('time', String(opts.start));
    const src = `/play/${encodeURIComponent(config.playbackId)}/thumbnail.jpg${q.toString() ? `?${q}` : ''}`;
    const img = new Image();
    img.onload = () => { if (!root.classList.contains('started')) video.poster = src; };
    img.src = src;
  }

  // Events for the embedding page (window.postMessage), and a few commands from it.
  function post(event, extra) {
    if (window.parent === window) return;
    window.parent.postMessage(Object.assign({
      type: 'abr-player', event, playbackId: config.playbackId, currentTime: video.currentTime,
      duration: Number.isFinite(video.duration) ? video.duration : null, paused: video.paused, live: isLive(),
    }, extra || {}), '*');
  }
  window.addEventListener('message', (e) => {
    const m = e.data;
    if (!m || m.type !== 'abr-player' || !m.command) return;
    if (m.command === 'play') state.adapter && state.adapter.play();
    else if (m.command === 'pause') video.pause();
    else if (m.command === 'seek' && Number.isFinite(m.value)) video.currentTime = m.value;
    else if (m.command === 'live') goLive();
    else if (m.command === 'mute') video.muted = !!(m.value ?? true);
  });

  // A small scripting surface (used by tests and by pages that embed without an iframe).
  window.abrPlayer = {
    video,
    get engine() { return state.engine; },
    get protocol() { return state.protocol; },
    levels: () => (state.adapter ? state.adapter.levels() : []),
    currentLevel: () => (state.adapter ? playingLevel(state.adapter) : -1), // the level on screen
    get live() { return isLive(); },
    get lowLatency() { return lowLatency(); },
    latency,
    liveWindow: () => ({ start: seekableStart(), end: seekableEnd(), target: state.adapter ? liveTarget() : NaN }),
    goLive,
    autoLevel: () => (state.adapter ? state.adapter.auto() : true),
    selectLevel: (i) => { state.adapter.select(i); renderQuality(); },
    bandwidth: () => (state.adapter ? state.adapter.bandwidth() : NaN),
    audioTracks: () => (state.adapter && state.adapter.audioTracks ? state.adapter.audioTracks() : []),
    audioTrack: () => (state.adapter && state.adapter.audioTrack ? state.adapter.audioTrack() : -1),
    selectAudio: (i) => { state.adapter.selectAudio(i); renderAudio(); },
    get error() { return root.dataset.error || null; },
  };

  video.muted = opts.muted;
  video.loop = opts.loop;
  root.classList.toggle('muted', video.muted);
  root.classList.toggle('nocontrols', !opts.controls);
  setStats(opts.stats);
  if (opts.autoplay) root.classList.add('started');
  loadPoster();
  start();
}());
