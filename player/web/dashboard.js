/* abr-origin dashboard: a small single-page app over the /v1 API (no build step).
 *
 * The API key is asked for once and kept in localStorage; every call sends it as
 * `Authorization: Bearer`. Live progress comes from GET /v1/assets/{id}/events, read with
 * fetch() streaming (EventSource cannot send that header) and parsed as server-sent events.
 * Routes (location.hash): #/ the asset list and uploads, #/assets/{id} one asset, #/live the live
 * streams and a form to create one, #/live/{id} one live stream (polled: live streams have no event stream).
 */
'use strict';
(function () {
  const KEY = 'abr.apiKey';
  const NAMES = 'abr.names'; // asset id -> uploaded file name, for assets made before the API kept names
  const FINAL = new Set(['ready', 'errored']);
  const MAX_STREAMS = 4; // browsers allow ~6 HTTP/1.1 connections per host: leave room for the rest
  const app = document.getElementById('app');
  const config = JSON.parse(document.getElementById('abr-config').textContent);
  let cleanup = [];

  // ---- small helpers ----------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
    return el;
  }
  function icon(paths) {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.innerHTML = paths; // constant markup from this file, never data
    return svg;
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const fmtDuration = (s) => {
    if (s === null || s === undefined || !Number.isFinite(s)) return '–';
    s = Math.round(s);
    const m = Math.floor(s / 60);
    return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`
      : `${m}:${String(s % 60).padStart(2, '0')}`;
  };
  const fmtRate = (bps) => (!bps ? '–' : bps >= 1e6 ? `${(bps / 1e6).toFixed(bps >= 1e7 ? 0 : 1)} Mbps` : `${Math.round(bps / 1e3)} kbps`);
  const fmtBytes = (n) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`);
  const CODECS = { h264: 'H.264', h265: 'H.265', vp8: 'VP8', av1: 'AV1', aac: 'AAC', opus: 'Opus' };
  const codecName = (c) => CODECS[c] || c;
  function fmtAgo(iso) {
    const s = (Date.now() - new Date(iso).getTime()) / 1000;
    if (s < 45) return 'just now';
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return new Date(iso).toLocaleDateString();
  }
  const names = () => { try { return JSON.parse(localStorage.getItem(NAMES) || '{}'); } catch (e) { return {}; } };
  function rememberName(id, name) { const n = names(); n[id] = name; localStorage.setItem(NAMES, JSON.stringify(n)); }

  let toastTimer = null;
  function toast(text, kind) {
    const el = document.getElementById('toast');
    el.textContent = text;
    el.className = `toast ${kind || ''}`;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 2600);
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) { // not a secure context (plain http on a LAN address): the old way
      const ta = h('textarea', { class: 'offscreen' }, text);
      document.body.append(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    toast('Copied to the clipboard');
  }

  // ---- API ------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  const authHeader = () => ({ Authorization: `Bearer ${localStorage.getItem(KEY) || ''}` });

  async function api(method, path, body) {
    let r;
    try {
      r = await fetch(path, {
        method, cache: 'no-store',
        headers: { ...authHeader(), ...(body ? { 'Content-Type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'The server cannot be reached.');
    }
    if (r.status === 204) return null;
    const data = await r.json().catch(() => null);
    if (!r.ok) {
      const err = (data && data.error) || {};
      if (r.status === 401) signOut('Your API key was not accepted. Enter it again.');
      throw new ApiError(r.status, err.code || 'error', err.message || `HTTP ${r.status}`);
    }
    return data;
  }

  /** Multipart upload with real progress (XMLHttpRequest reports bytes sent; fetch cannot). */
  function uploadFile(file, settings, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/v1/assets');
      xhr.setRequestHeader('Authorization', authHeader().Authorization);
      xhr.responseType = 'json';
      xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
      xhr.addEventListener('load', () => {
        if (xhr.status === 201) return resolve(xhr.response);
        const err = (xhr.response && xhr.response.error) || {};
        if (xhr.status === 401) signOut('Your API key was not accepted. Enter it again.');
        reject(new ApiError(xhr.status, err.code || 'error', err.message || `HTTP ${xhr.status}`));
      });
      xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'The upload was interrupted.')));
      xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'Upload cancelled.')));
      const form = new FormData();
      form.append('settings', JSON.stringify(settings));
      form.append('file', file, file.name);
      xhr.send(form);
      onProgress(0, file.size, () => xhr.abort());
    });
  }

  /** Parse a text/event-stream body; calls onEvent(name, data) per event. */
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let cut;
      while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut).replace(/^\r?\n\r?\n/, '');
        let event = 'message';
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (!line || line.startsWith(':')) continue;
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'event') event = val;
          else if (field === 'data') data.push(val);
        }
        if (data.length) onEvent(event, data.join('\n'));
      }
    }
  }

  /** Follow one asset's events until it is ready, errored or deleted; returns a stop function. */
  function watchAsset(id, onAsset, onDeleted) {
    const ctrl = new AbortController();
    let stopped = false;
    (async () => {
      let delay = 1000;
      while (!stopped) {
        let finished = false;
        try {
          const r = await fetch(`/v1/assets/${encodeURIComponent(id)}/events`, {
            headers: { ...authHeader(), Accept: 'text/event-stream' }, cache: 'no-store', signal: ctrl.signal,
          });
          if (r.status === 404) { onDeleted(); return; }
          if (r.status === 401) { signOut('Your API key was not accepted. Enter it again.'); return; }
          if (r.ok) {
            await readEvents(r.body, (event, data) => {
              if (event === 'asset') {
                const asset = JSON.parse(data);
                onAsset(asset);
                if (FINAL.has(asset.status)) finished = true;
              } else if (event === 'deleted') { finished = true; onDeleted(); }
            });
            delay = 1000;
          }
        } catch (e) { /* dropped connection: reconnect below */ }
        if (finished || stopped) return;
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
      }
    })();
    return () => { stopped = true; ctrl.abort(); };
  }

  // ---- shared pieces ------------------------------------------------------------------------------

  function statusBadge(asset) {
    const label = asset.status === 'processing' && asset.playable ? 'processing · playable' : asset.status;
    return h('span', { class: `badge ${asset.status}`, dataset: { status: asset.status } }, label);
  }
  function progressBar(asset, big) {
    if (FINAL.has(asset.status)) return null;
    const pct = Math.max(2, Math.min(100, asset.progress || 0));
    const d = asset.progress_detail;
    const note = asset.status === 'queued' ? 'Waiting for a worker'
      : d && d.family ? `Encoding ${codecName(d.family)}${d.speed ? ` · ${Number(d.speed).toFixed(1)}×` : ''}${d.eta ? ` · ${Math.ceil(d.eta)} s left` : ''}`
        : 'Processing';
    return h('div', { class: `progress ${big ? 'big' : ''}` },
      h('div', { class: 'progress-track', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(asset.progress || 0)) },
        h('div', { class: `progress-fill ${asset.status === 'queued' ? 'pulse' : ''}`, style: null })),
      big ? h('div', { class: 'progress-note' }, `${note} · ${Math.round(asset.progress || 0)}%`) : null,
    );
  }
  // Widths go through the CSSOM (a style="" attribute would need 'unsafe-inline' in the CSP).
  function setWidths(root) {
    root.querySelectorAll('.progress-fill').forEach((el) => {
      const now = el.parentElement.getAttribute('aria-valuenow');
      el.style.width = `${Math.max(2, +now)}%`;
    });
  }
  const videoRenditions = (asset) => asset.renditions.filter((r) => r.codec !== 'aac' && r.height);
  function summary(asset) {
    const v = videoRenditions(asset);
    if (!v.length) return asset.source && asset.source.video ? 'video' : 'audio only';
    // Named like the renditions (`h264-272p`): by the short side, so a portrait 272x640 rung is 272p, not 640p.
    const top = Math.max(...v.map((r) => Math.min(r.width || r.height, r.height)));
    const codecs = [...new Set(v.map((r) => codecName(r.codec)))].join(', ');
    return `${top}p · ${codecs}`;
  }
  const named = (asset) => (asset.meta && asset.meta.title) || asset.name || names()[asset.id] || asset.passthrough || null;
  const title = (asset) => named(asset) || asset.id;

  // ---- views --------------------------------------------------------------------------------------

  function signOut(message) {
    localStorage.removeItem(KEY);
    render(message);
  }

  function loginView(message) {
    const input = h('input', { type: 'password', id: 'api-key', name: 'api-key', placeholder: 'abr_…', autocomplete: 'current-password', required: true, spellcheck: 'false' });
    const error = h('p', { class: 'form-error', role: 'alert' }, message || '');
    const form = h('form', {
      class: 'card login',
      onsubmit: async (e) => {
        e.preventDefault();
        localStorage.setItem(KEY, input.value.trim());
        error.textContent = '';
        try {
          await api('GET', '/v1/assets?limit=1');
          render();
        } catch (err) {
          if (err.status !== 401) { localStorage.removeItem(KEY); error.textContent = err.message; }
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Paste an API key: ', h('code', {}, 'abr dev'), ' prints one, ', h('code', {}, 'abr keys create'), ' makes more.'),
    h('label', { for: 'api-key' }, 'API key'), input, error,
    h('button', { type: 'submit', class: 'btn primary' }, 'Sign in'));
    app.replaceChildren(form);
    input.focus();
  }

  // Uploads live outside the views so that navigating away does not lose them.
  const uploads = [];
  let onUploadsChanged = () => {};

  function startUpload(file, settings) {
    const item = { file, loaded: 0, total: file.size, state: 'uploading', error: null, asset: null, started: Date.now(), cancel: null };
    uploads.unshift(item);
    onUploadsChanged();
    uploadFile(file, settings, (loaded, total, cancel) => {
      if (cancel) item.cancel = cancel;
      item.loaded = loaded; item.total = total;
      onUploadsChanged();
    }).then((asset) => {
      item.state = 'done'; item.asset = asset;
      rememberName(asset.id, file.name);
      onUploadsChanged(asset);
    }).catch((err) => {
      item.state = 'failed'; item.error = err.message; item.errorCode = err.status ? `${err.status} ${err.code}` : null;
      item.aborted = err.code === 'aborted';
      onUploadsChanged();
    });
  }

  function uploadRow(item) {
    const pct = item.total ? Math.round((item.loaded / item.total) * 100) : 0;
    const secs = (Date.now() - item.started) / 1000;
    const speed = secs > 0.5 ? `${fmtBytes(item.loaded / secs)}/s` : '';
    const note = item.state === 'uploading' ? `${pct}% of ${fmtBytes(item.total)}${speed ? ` · ${speed}` : ''}`
      : item.state === 'done' ? 'Uploaded' : item.errorCode ? 'Rejected' : item.aborted ? 'Cancelled' : 'Failed';
    const row = h('div', { class: `upload ${item.state}` },
      h('div', { class: 'upload-head' },
        h('span', { class: 'upload-name' }, item.file.name),
        h('span', { class: 'upload-note' }, note),
        item.state === 'uploading' && item.cancel ? h('button', { type: 'button', class: 'link', onclick: () => item.cancel() }, 'Cancel') : null,
        item.state === 'done' ? h('a', { href: `#/assets/${item.asset.id}` }, 'Open') : null),
      // A rejected upload is an error, not a finished bar: the message replaces the bar.
      item.state === 'failed'
        ? h('div', { class: 'upload-error', role: 'alert' }, item.errorCode ? h('code', {}, item.errorCode) : null, ` ${item.error}`)
        : h('div', { class: 'progress' }, h('div', { class: 'progress-track', role: 'progressbar', 'aria-label': `Upload of ${item.file.name}`, 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(item.state === 'uploading' ? pct : 100) },
          h('div', { class: 'progress-fill' }))));
    setWidths(row);
    return row;
  }

  function uploadCard() {
    const input = h('input', { type: 'file', id: 'file-input', accept: 'video/*,audio/*,.mkv,.mov,.mp4,.webm,.ts', multiple: true, class: 'offscreen' });
    const codecs = ['h264', 'h265', 'vp8', 'av1'].map((c) => h('label', { class: 'chip' },
      h('input', { type: 'checkbox', name: 'codec', value: c, checked: c === 'h264' }), ` ${codecName(c)}`));
    const signed = h('input', { type: 'checkbox', name: 'signed', id: 'signed' });
    const list = h('div', { class: 'uploads', id: 'uploads' });
    const zone = h('label', { class: 'dropzone', for: 'file-input', id: 'dropzone', tabindex: '0' },
      icon('<path d="M12 16V4m0 0L7 9m5-5 5 5M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"/>'),
      h('strong', {}, 'Drop videos here'),
      h('span', { class: 'muted' }, 'or click to choose files'));
    const send = (files) => {
      const chosen = codecs.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
      if (!chosen.length) { toast('Choose at least one codec', 'error'); return; }
      const settings = { codecs: chosen, playback_policy: signed.checked ? 'signed' : 'public' };
      for (const f of files) startUpload(f, settings);
    };
    input.addEventListener('change', () => { send([...input.files]); input.value = ''; });
    zone.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
    for (const ev of ['dragenter', 'dragover']) zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add('over'); });
    for (const ev of ['dragleave', 'drop']) zone.addEventListener(ev, () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => { e.preventDefault(); send([...e.dataTransfer.files]); });
    const refresh = () => list.replaceChildren(...uploads.slice(0, 6).map(uploadRow));
    refresh();
    return {
      el: h('section', { class: 'card upload-card' }, zone, input,
        h('div', { class: 'options' }, h('span', { class: 'muted' }, 'Codecs'), ...codecs,
          h('label', { class: 'chip', for: 'signed' }, signed, ' Signed playback')), list),
      refresh,
    };
  }

  function assetRow(asset) {
    const pid = asset.playback_ids[0] && asset.playback_ids[0].id;
    const thumb = h('div', { class: 'thumb' });
    if (pid && asset.status === 'ready' && asset.playback_ids[0].policy === 'public') {
      const img = h('img', { alt: '', loading: 'lazy' });
      img.addEventListener('load', () => thumb.classList.add('has-image'));
      img.addEventListener('error', () => img.remove());
      img.src = `/play/${pid}/thumbnail.jpg?width=160`;
      thumb.append(img);
    }
    const row = h('a', { class: 'asset-row', href: `#/assets/${asset.id}`, dataset: { id: asset.id, status: asset.status } },
      thumb,
      h('div', { class: 'asset-main' },
        h('div', { class: `asset-title ${named(asset) ? '' : 'mono'}` }, title(asset)),
        h('div', { class: 'asset-meta' }, named(asset) ? h('code', {}, asset.id) : null,
          h('span', { class: 'phone-only' }, `${fmtDuration(asset.duration)} · ${summary(asset)}`),
          h('span', {}, fmtAgo(asset.created_at)))),
      h('div', { class: 'asset-facts' }, h('span', {}, fmtDuration(asset.duration)), h('span', {}, summary(asset))),
      h('div', { class: 'asset-status' }, statusBadge(asset), progressBar(asset, false)));
    setWidths(row);
    return row;
  }

  async function listView() {
    const upload = uploadCard();
    const body = h('div', { class: 'asset-list', id: 'asset-list' }, h('div', { class: 'empty' }, 'Loading…'));
    const count = h('span', { class: 'count' });
    const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'Load more');
    const search = h('input', { type: 'search', id: 'asset-search', placeholder: 'Search names', 'aria-label': 'Search assets by name, title or external id' });
    app.replaceChildren(upload.el, h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Assets'), search, count), body, h('div', { class: 'more' }, more)));
    const rows = new Map();
    const seen = new Map(); // id -> the JSON last drawn: unchanged rows are left alone (no flicker, no refetch)
    const streams = new Map();
    let shown = 25;

    const stopStream = (id) => { if (streams.has(id)) { streams.get(id)(); streams.delete(id); } };
    const place = (asset) => {
      const json = JSON.stringify(asset);
      if (seen.get(asset.id) !== json) {
        const row = assetRow(asset);
        if (rows.has(asset.id)) rows.get(asset.id).replaceWith(row); else body.prepend(row);
        rows.set(asset.id, row);
        seen.set(asset.id, json);
      }
      if (FINAL.has(asset.status)) stopStream(asset.id);
      else if (!streams.has(asset.id) && streams.size < MAX_STREAMS) {
        streams.set(asset.id, watchAsset(asset.id, place, () => { stopStream(asset.id); load(); }));
      }
    };
    async function load() {
      let page;
      const q = search.value.trim();
      try { page = await api('GET', `/v1/assets?limit=${shown}${q ? `&q=${encodeURIComponent(q)}` : ''}`); } catch (e) {
        if (e.status !== 401) body.replaceChildren(h('div', { class: 'empty error' }, e.message));
        return;
      }
      count.textContent = page.count ? `${page.count}` : '';
      more.hidden = page.count <= page.data.length;
      const ids = new Set(page.data.map((a) => a.id));
      for (const [id, row] of rows) if (!ids.has(id)) { row.remove(); rows.delete(id); seen.delete(id); stopStream(id); }
      if (!page.data.length) {
        body.replaceChildren(q
          ? h('div', { class: 'empty' }, h('strong', {}, `No assets match “${q}”`))
          : h('div', { class: 'empty' }, h('strong', {}, 'No assets yet'), h('span', { class: 'muted' }, 'Upload a video above to get HLS and DASH renditions.')));
        return;
      }
      body.querySelectorAll('.empty').forEach((el) => el.remove());
      for (const asset of page.data.slice().reverse()) place(asset);
      // Keep the server's order (newest first).
      for (const asset of page.data) body.append(rows.get(asset.id));
    }
    more.addEventListener('click', () => { shown += 25; load(); });
    let typing = null; // one list request per pause in typing, not per key
    search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(load, 250); });
    onUploadsChanged = (asset) => { upload.refresh(); if (asset) load(); };
    // New assets from elsewhere, and in-progress ones past the stream limit.
    const poll = setInterval(() => { if (!document.hidden) load(); }, 8000);
    cleanup.push(() => { clearInterval(poll); for (const id of [...streams.keys()]) stopStream(id); onUploadsChanged = () => {}; });
    await load();
  }

  function copyField(label, value, id) {
    const input = h('input', { type: 'text', readonly: true, value, id, 'aria-label': label, spellcheck: 'false' });
    input.addEventListener('focus', () => input.select());
    return h('div', { class: 'field' }, h('label', { for: id }, label),
      h('div', { class: 'copy-row' }, input, h('button', { type: 'button', class: 'btn', onclick: () => copy(value) }, 'Copy')));
  }

  function embedSnippets(asset, pid, query) {
    const base = new URL(asset.playback.hls).origin;
    const v = asset.source && asset.source.video;
    const ratio = v ? `${v.display_width} / ${v.display_height}` : '16 / 9';
    const iframe = `<iframe src="${base}/player/${pid}${query}" style="width:100%;aspect-ratio:${ratio};border:0" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen title="Video"></iframe>`;
    const hls = config.engines.hls;
    const js = [
      `<video id="video" controls playsinline style="width:100%;aspect-ratio:${ratio}"></video>`,
      `<script src="${base}${hls.src}" integrity="${hls.integrity}" crossorigin="anonymous"></script>`,
      '<script>',
      '  const video = document.getElementById("video");',
      `  const src = "${asset.playback.hls}${query}";`,
      '  if (window.Hls && Hls.isSupported()) {',
      '    const hls = new Hls();',
      '    hls.loadSource(src);',
      '    hls.attachMedia(video);',
      '  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {',
      '    video.src = src; // Safari on iPhone without Media Source Extensions',
      '  }',
      '</script>',
    ].join('\n');
    const snippets = { iframe, js };
    const code = h('textarea', { class: 'code', readonly: true, rows: '6', spellcheck: 'false', id: 'embed-code', 'aria-label': 'Embed code' }, iframe);
    let current = 'iframe';
    const tabs = [['iframe', 'iframe'], ['js', `hls.js ${hls.version}`]].map(([k, label]) => h('button', {
      type: 'button', class: `tab ${k === current ? 'active' : ''}`, role: 'tab', 'aria-selected': String(k === current), dataset: { tab: k },
      onclick: (e) => {
        current = k;
        code.value = snippets[k];
        code.rows = k === 'js' ? 13 : 4;
        tabs.forEach((t) => { t.classList.toggle('active', t === e.currentTarget); t.setAttribute('aria-selected', String(t === e.currentTarget)); });
      },
    }, label));
    code.rows = 4;
    return h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, 'Embed'),
      h('div', { class: 'tabs', role: 'tablist' }, ...tabs)), code,
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', id: 'copy-embed', onclick: () => copy(code.value) }, 'Copy code')));
  }

  function renditionsTable(asset) {
    if (!asset.renditions.length) return h('p', { class: 'muted' }, 'No renditions planned yet.');
    return h('div', { class: 'table-wrap' }, h('table', { class: 'renditions' },
      h('thead', {}, h('tr', {}, ...['Rendition', 'Codec', 'Resolution', 'Bitrate', 'Frame rate', 'Quality', 'Status']
        .map((t) => h('th', { class: t === 'Codec' || t === 'Frame rate' ? 'wide-only' : null }, t)))),
      h('tbody', {}, ...asset.renditions.map((r) => h('tr', {},
        h('td', {}, h('code', {}, r.id)),
        h('td', { class: 'wide-only' }, codecName(r.codec)),
        h('td', {}, r.height ? `${r.width}×${r.height}` : '–'),
        h('td', {}, fmtRate(r.bitrate)),
        h('td', { class: 'wide-only' }, r.frame_rate ? `${+r.frame_rate.toFixed(2)} fps` : '–'),
        qualityCell(r.quality),
        h('td', {}, h('span', { class: `badge small ${r.status}` }, r.status)))))));
  }

  // Measured VMAF (0-100, against the source): the whole rendition's when the quality report ran,
  // else the per-title analysis' estimate from samples. The 5th percentile shows the worst moments.
  function qualityCell(q) {
    if (!q || (q.vmaf_mean == null && !q.full)) return h('td', { class: 'quality muted' }, '–');
    const m = q.full || q;
    const source = q.full ? `whole rendition, ${q.full.frames} frames` : `${q.samples} sample${q.samples === 1 ? '' : 's'}`;
    return h('td', { class: 'quality', title: `VMAF mean ${m.vmaf_mean.toFixed(2)}, 5th percentile ${m.vmaf_p5.toFixed(2)} (${source})` },
      `VMAF ${m.vmaf_mean.toFixed(1)}`, h('span', { class: 'muted small' }, ` · p5 ${m.vmaf_p5.toFixed(1)}`));
  }

  function facts(asset) {
    const v = asset.source && asset.source.video;
    const a = asset.source && asset.source.audio;
    const rows = [
      ['Status', statusBadge(asset)],
      ['Duration', fmtDuration(asset.duration)],
      ['Source video', v ? `${v.display_width}×${v.display_height} · ${v.codec}` : 'none'],
      ['Source audio', a ? `${a.codec} · ${a.channels} ch · ${a.sample_rate / 1000} kHz` : 'none'],
      ['Playback', asset.playback_ids.length ? asset.playback_ids.map((p) => h('span', {}, `${p.policy} · `, h('code', {}, p.id))) : 'none'],
      ['Created', new Date(asset.created_at).toLocaleString()],
    ];
    if (asset.passthrough) rows.push(['Passthrough', asset.passthrough]);
    return h('dl', { class: 'facts' }, ...rows.flatMap(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]));
  }

  async function detailView(id) {
    app.replaceChildren(h('div', { class: 'empty' }, 'Loading…'));
    let asset;
    try { asset = await api('GET', `/v1/assets/${encodeURIComponent(id)}`); } catch (e) {
      if (e.status === 401) return;
      app.replaceChildren(h('a', { class: 'back', href: '#/' }, '← Assets'),
        h('section', { class: 'card' }, h('h2', {}, e.status === 404 ? 'Asset not found' : 'Could not load the asset'), h('p', { class: 'muted' }, e.message)));
      return;
    }
    const pid = asset.playback_ids[0] && asset.playback_ids[0].id;
    let query = '';
    let tokenNote = null;
    if (pid && asset.playback_ids[0].policy === 'signed') {
      try {
        const t = await api('POST', '/v1/playback-tokens', { playback_id: pid, expires_in: 6 * 3600 });
        query = `?token=${encodeURIComponent(t.token)}`;
        tokenNote = `Signed playback: these URLs carry a token valid until ${new Date(t.expires_at).toLocaleString()}.`;
      } catch (e) { tokenNote = `Signed playback: no token could be made (${e.message}).`; }
    }
    const playerSlot = h('div', { class: 'player-slot', id: 'player-slot' });
    const head = h('div', { class: 'detail-head' });
    const status = h('div', { class: 'status-slot' });
    const factsSlot = h('div', {});
    const renditions = h('div', {});
    let iframe = null;
    let iframeBeforeReady = false;

    function update(a) {
      asset = a;
      head.replaceChildren(h('div', { class: 'detail-title' }, h('h1', { class: named(a) ? '' : 'mono' }, title(a)),
        named(a) ? h('code', {}, a.id) : null), statusBadge(a));
      status.replaceChildren(...[progressBar(a, true), a.error ? h('div', { class: 'alert', role: 'alert' }, h('strong', {}, a.error.code), ` ${a.error.message}`) : null].filter(Boolean));
      setWidths(status);
      factsSlot.replaceChildren(facts(a));
      renditions.replaceChildren(renditionsTable(a));
      if (pid && a.playable && !iframe) {
        iframe = h('iframe', { src: `/player/${pid}${query}`, title: 'Player', allow: 'autoplay; fullscreen; picture-in-picture', allowfullscreen: true, id: 'player-frame' });
        iframeBeforeReady = a.status !== 'ready';
        playerSlot.replaceChildren(iframe);
      } else if (!iframe) {
        playerSlot.replaceChildren(h('div', { class: 'player-placeholder' }, a.status === 'errored' ? 'Nothing to play' : 'The player appears as soon as the first rendition is ready'));
      }
      if (iframe && iframeBeforeReady && a.status === 'ready') {
        iframeBeforeReady = false; // the ladder is complete: reload unless someone is watching
        try { if (iframe.contentWindow.abrPlayer.video.paused) iframe.src = iframe.src; } catch (e) { /* not loaded yet */ }
      }
    }

    const del = h('button', {
      type: 'button', class: 'btn danger', id: 'delete',
      onclick: async () => {
        if (!confirm('Delete this asset and all its media? This cannot be undone.')) return;
        try { await api('DELETE', `/v1/assets/${encodeURIComponent(id)}`); toast('Asset deleted'); location.hash = '#/'; } catch (e) { toast(e.message, 'error'); }
      },
    }, 'Delete');

    const urls = pid ? h('section', { class: 'card' }, h('h2', {}, 'Playback URLs'),
      tokenNote ? h('p', { class: 'muted' }, tokenNote) : null,
      copyField('HLS', `${asset.playback.hls}${query}`, 'url-hls'),
      copyField('DASH', `${asset.playback.dash}${query}`, 'url-dash'),
      copyField('Player page', `${new URL(asset.playback.hls).origin}/player/${pid}${query}`, 'url-player')) : null;

    app.replaceChildren(
      h('a', { class: 'back', href: '#/' }, '← Assets'),
      h('div', { class: 'detail-top' }, head, del),
      status,
      h('div', { class: 'detail-grid' }, h('div', { class: 'card player-card' }, playerSlot),
        h('section', { class: 'card' }, h('h2', {}, 'Details'), factsSlot)),
      h('section', { class: 'card' }, h('h2', {}, 'Renditions'), renditions),
      urls, pid ? embedSnippets(asset, pid, query) : null);
    update(asset);
    if (!FINAL.has(asset.status)) {
      cleanup.push(watchAsset(id, update, () => { toast('This asset was deleted'); location.hash = '#/'; }));
    }
  }

  // ---- live streams ---------------------------------------------------------------------------------

  const LIVE_FINAL = new Set(['ended', 'errored']);
  const LIVE_PLAYING = new Set(['active', 'reconnecting']);
  const LIVE_NOTES = {
    idle: 'Waiting for an encoder: start streaming with the settings below.',
    connecting: 'Connecting to the source…',
    reconnecting: 'The source dropped: reconnecting…',
    ended: 'The stream has ended.',
    errored: 'The stream stopped with an error.',
  };

  function liveBadge(stream) {
    return h('span', { class: `badge live-${stream.status}`, dataset: { status: stream.status } }, stream.status);
  }
  const liveTitle = (stream) => stream.passthrough || stream.id;
  const liveKind = (stream) => (stream.source_url ? 'Pull' : 'Push');

  /** The RTMP ingest of a push stream: `ingest.rtmp` (the URL) and, from servers that check it,
   * `ingest.rtmp_status = {available, reason}` (available null: not reported). Without `ingest` the
   * URL is unknown here (null), and the page says so instead. */
  function rtmpIngest(stream) {
    const ingest = stream.ingest || {};
    const status = ingest.rtmp_status || {};
    if (!ingest.rtmp) return null;
    return { url: ingest.rtmp, available: typeof status.available === 'boolean' ? status.available : null, reason: status.reason || null };
  }
  /** "rtmp://host:1935/live/<key>" -> ["rtmp://host:1935/live", "<key>"] (OBS asks for the two apart). */
  function splitIngest(url, key) {
    if (url && url.endsWith(`/${key}`)) return [url.slice(0, -key.length - 1), key];
    return [url, key];
  }

  /** A playback token for a signed live playback id, as a query string ('' when public). */
  async function playbackQuery(pid, policy) {
    if (!pid || policy !== 'signed') return { query: '', note: null };
    try {
      const t = await api('POST', '/v1/playback-tokens', { playback_id: pid, expires_in: 6 * 3600 });
      return { query: `?token=${encodeURIComponent(t.token)}`, note: `Signed playback: these URLs carry a token valid until ${new Date(t.expires_at).toLocaleString()}.` };
    } catch (e) { return { query: '', note: `Signed playback: no token could be made (${e.message}).` }; }
  }

  /** The latest picture of a live stream, fetched uncached (it changes every few seconds) into a blob URL. */
  async function refreshLiveThumb(img, pid, query) {
    try {
      const r = await fetch(`/play/${encodeURIComponent(pid)}/thumbnail.jpg${query}`, { cache: 'no-store' });
      if (!r.ok) return false;
      const url = URL.createObjectURL(await r.blob());
      const old = img.src;
      img.src = url;
      if (old.startsWith('blob:')) URL.revokeObjectURL(old);
      return true;
    } catch (e) { return false; }
  }

  function createLiveCard() {
    const mode = (value, label, note) => h('label', { class: 'chip', for: `live-${value}` },
      h('input', { type: 'radio', name: 'live-mode', id: `live-${value}`, value, checked: value === 'push' }), ` ${label}`,
      h('span', { class: 'muted' }, ` · ${note}`));
    const push = mode('push', 'Push', 'OBS or ffmpeg sends to this server');
    const pull = mode('pull', 'Pull', 'this server reads a camera or stream');
    const source = h('input', { type: 'text', id: 'live-source', name: 'source_url', placeholder: 'rtsp://camera.local/stream · rtmp://… · srt://… · https://…/live.m3u8', spellcheck: 'false', 'aria-label': 'Source URL' });
    const sourceField = h('div', { class: 'field', hidden: true }, h('label', { for: 'live-source' }, 'Source URL'), source);
    const record = h('input', { type: 'checkbox', id: 'live-record', checked: true });
    const signed = h('input', { type: 'checkbox', id: 'live-signed' });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const isPull = () => pull.firstChild.checked;
    for (const el of [push, pull]) el.firstChild.addEventListener('change', () => { sourceField.hidden = !isPull(); if (isPull()) source.focus(); });
    const form = h('form', {
      class: 'card live-create', id: 'live-create',
      onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = '';
        const body = { record: record.checked, playback_policy: signed.checked ? 'signed' : 'public' };
        if (isPull()) {
          if (!source.value.trim()) { error.textContent = 'Enter the URL to pull from.'; source.focus(); return; }
          body.source_url = source.value.trim();
        }
        try {
          const stream = await api('POST', '/v1/live-streams', body);
          location.hash = `#/live/${stream.id}`;
        } catch (err) { if (err.status !== 401) error.textContent = err.message; }
      },
    },
    h('div', { class: 'card-head' }, h('h2', {}, 'New live stream')),
    h('div', { class: 'options' }, push, pull), sourceField,
    h('div', { class: 'options' }, h('label', { class: 'chip', for: 'live-record' }, record, ' Record'),
      h('label', { class: 'chip', for: 'live-signed' }, signed, ' Signed playback')),
    error,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', id: 'live-create-submit' }, 'Create stream')));
    return form;
  }

  function liveRow(stream) {
    const pid = stream.playback_ids[0] && stream.playback_ids[0].id;
    const thumb = h('div', { class: 'thumb live-thumb' });
    if (pid && stream.status === 'active' && stream.playback_ids[0].policy === 'public') {
      const img = h('img', { alt: '' });
      img.addEventListener('load', () => thumb.classList.add('has-image'));
      refreshLiveThumb(img, pid, '').then((ok) => { if (ok) thumb.append(img); });
    }
    return h('a', { class: 'asset-row live-row', href: `#/live/${stream.id}`, dataset: { id: stream.id, status: stream.status } },
      thumb,
      h('div', { class: 'asset-main' },
        h('div', { class: `asset-title ${stream.passthrough ? '' : 'mono'}` }, liveTitle(stream)),
        h('div', { class: 'asset-meta' }, h('span', {}, stream.source_url ? `Pull · ${stream.source_url}` : 'Push · RTMP'),
          h('span', {}, fmtAgo(stream.created_at)))),
      h('div', { class: 'asset-facts' }, h('span', {}, liveKind(stream)),
        h('span', {}, stream.recording_asset_id ? 'Recorded' : stream.settings && stream.settings.record ? 'Recording' : 'Not recorded')),
      h('div', { class: 'asset-status' }, liveBadge(stream)));
  }

  async function liveListView() {
    const body = h('div', { class: 'asset-list', id: 'live-list' }, h('div', { class: 'empty' }, 'Loading…'));
    const count = h('span', { class: 'count' });
    app.replaceChildren(createLiveCard(), h('section', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Live streams'), count), body));
    let last = '';
    async function load() {
      let page;
      try { page = await api('GET', '/v1/live-streams?limit=50'); } catch (e) {
        if (e.status !== 401) body.replaceChildren(h('div', { class: 'empty error' }, e.message));
        return;
      }
      const json = JSON.stringify(page.data.map((s) => [s.id, s.status, s.recording_asset_id]));
      if (json === last) return; // unchanged: no flicker
      last = json;
      count.textContent = page.count ? `${page.count}` : '';
      if (!page.data.length) {
        body.replaceChildren(h('div', { class: 'empty' }, h('strong', {}, 'No live streams yet'),
          h('span', { class: 'muted' }, 'Create one above: push from OBS or ffmpeg, or pull a camera.')));
        return;
      }
      body.replaceChildren(...page.data.map(liveRow));
    }
    const poll = setInterval(() => { if (!document.hidden) load(); }, 5000);
    cleanup.push(() => clearInterval(poll));
    await load();
  }

  function ingestCard(stream) {
    if (stream.source_url) {
      return h('section', { class: 'card', id: 'live-ingest' }, h('h2', {}, 'Source'),
        copyField('Pulled from', stream.source_url, 'live-source-url'),
        h('p', { class: 'muted hint' }, 'This server connects to the source itself and reconnects with backoff when it drops.'));
    }
    const rtmp = rtmpIngest(stream);
    const segment = (stream.settings && stream.settings.segment_duration) || 2;
    const [server, key] = splitIngest(rtmp && rtmp.url, stream.stream_key);
    const parts = [h('h2', {}, 'Stream from OBS or ffmpeg')];
    if (rtmp && rtmp.available === false) {
      parts.push(h('div', { class: 'alert warn', role: 'alert', id: 'ingest-unavailable' },
        h('strong', {}, 'RTMP ingest is not running. '), rtmp.reason || 'Start it with `abr ingest` (nginx with the RTMP module).'));
    }
    if (server) parts.push(copyField('Server URL', server, 'ingest-server'));
    parts.push(copyField('Stream key', key, 'ingest-key'));
    if (rtmp && rtmp.url) parts.push(copyField('Full RTMP URL (server URL + stream key)', rtmp.url, 'ingest-url'));
    else {
      parts.push(h('p', { class: 'muted hint', id: 'ingest-unknown' }, 'This server does not report its RTMP ingest URL. With the defaults it is ',
        h('code', {}, `rtmp://${location.hostname}:1935/live`), ' (ABR_RTMP_HOST, ABR_RTMP_PORT).'));
    }
    parts.push(h('div', { class: 'hint obs', id: 'obs-hint' },
      h('strong', {}, 'OBS Studio'), ': Settings → Stream: Service ', h('em', {}, 'Custom…'), ', Server ', h('em', {}, 'the server URL'),
      ', Stream Key ', h('em', {}, 'the stream key'), '. Settings → Output (Advanced): Keyframe Interval ',
      h('strong', {}, `${segment} s`), ' (the segment duration), CBR. Keep the key secret: anyone with it can stream here.'));
    if (rtmp && rtmp.url) {
      parts.push(copyField('ffmpeg', `ffmpeg -re -i input.mp4 -c:v libx264 -preset veryfast -force_key_frames "expr:gte(t,n_forced*${segment})" -c:a aac -f flv ${rtmp.url}`, 'ingest-ffmpeg'));
    }
    return h('section', { class: 'card', id: 'live-ingest' }, ...parts);
  }

  function liveFacts(stream) {
    const s = stream.settings || {};
    const renditions = stream.plan && stream.plan.renditions ? stream.plan.renditions.filter((r) => r.height) : [];
    const rows = [
      ['Status', liveBadge(stream)],
      ['Kind', stream.source_url ? 'Pull' : 'Push (RTMP)'],
      ['Renditions', renditions.length ? renditions.map((r) => `${r.height}p`).join(' · ') : '–'],
      ['Segments', s.segment_duration ? `${s.segment_duration} s` : '–'],
      ['DVR window', s.dvr_window ? fmtDuration(s.dvr_window) : '–'],
      ['Record', s.record === false ? 'no' : 'yes'],
      ['Playback', stream.playback_ids.length ? stream.playback_ids.map((p) => h('span', {}, `${p.policy} · `, h('code', {}, p.id))) : 'none'],
      ['Created', new Date(stream.created_at).toLocaleString()],
    ];
    if (stream.connected_at) rows.push(['Connected', new Date(stream.connected_at).toLocaleString()]);
    if (stream.ended_at) rows.push(['Ended', new Date(stream.ended_at).toLocaleString()]);
    if (stream.reconnects) rows.push(['Reconnects', String(stream.reconnects)]);
    return h('dl', { class: 'facts' }, ...rows.flatMap(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]));
  }

  async function liveDetailView(id) {
    app.replaceChildren(h('div', { class: 'empty' }, 'Loading…'));
    let stream;
    try { stream = await api('GET', `/v1/live-streams/${encodeURIComponent(id)}`); } catch (e) {
      if (e.status === 401) return;
      app.replaceChildren(h('a', { class: 'back', href: '#/live' }, '← Live streams'),
        h('section', { class: 'card' }, h('h2', {}, e.status === 404 ? 'Live stream not found' : 'Could not load the live stream'), h('p', { class: 'muted' }, e.message)));
      return;
    }
    const playback = stream.playback_ids[0];
    const pid = playback && playback.id;
    const { query, note: tokenNote } = await playbackQuery(pid, playback && playback.policy);
    const head = h('div', { class: 'detail-head' });
    const status = h('div', { class: 'status-slot' });
    const playerSlot = h('div', { class: 'player-slot', id: 'player-slot' });
    const factsSlot = h('div', {});
    const previewImg = h('img', { alt: 'Latest picture', id: 'live-thumb' });
    const preview = h('section', { class: 'card live-preview', id: 'live-preview', hidden: true }, h('h2', {}, 'Latest picture'), previewImg);
    const recording = h('section', { class: 'card', id: 'live-recording', hidden: true });
    let iframe = null;
    let lastJson = '';
    let recordingShown = null;

    const stop = h('button', {
      type: 'button', class: 'btn', id: 'live-stop',
      onclick: async () => {
        stop.disabled = true;
        try { update(await api('POST', `/v1/live-streams/${encodeURIComponent(id)}/stop`)); toast('Stopping the stream'); } catch (e) { toast(e.message, 'error'); stop.disabled = false; }
      },
    }, 'Stop');
    const del = h('button', {
      type: 'button', class: 'btn danger', id: 'live-delete',
      onclick: async () => {
        if (!confirm('Delete this live stream? Its recording, if any, is kept as an asset.')) return;
        try { await api('DELETE', `/v1/live-streams/${encodeURIComponent(id)}`); toast('Live stream deleted'); location.hash = '#/live'; } catch (e) { toast(e.message, 'error'); }
      },
    }, 'Delete');

    async function showRecording(assetId) {
      recording.hidden = false;
      const link = h('a', { href: `#/assets/${assetId}`, id: 'live-recording-link', class: 'btn' }, 'Open recording');
      const badge = h('span', { class: 'badge' }, '…');
      recording.replaceChildren(h('h2', {}, 'Recording'), h('div', { class: 'recording-row' }, h('code', {}, assetId), badge, link));
      try {
        const asset = await api('GET', `/v1/assets/${encodeURIComponent(assetId)}`);
        badge.replaceWith(statusBadge(asset));
      } catch (e) { badge.textContent = e.status === 404 ? 'deleted' : 'unknown'; }
    }

    function update(s) {
      stream = s;
      const json = JSON.stringify(s);
      if (json === lastJson) return;
      lastJson = json;
      head.replaceChildren(h('div', { class: 'detail-title' }, h('h1', { class: s.passthrough ? '' : 'mono' }, liveTitle(s)),
        s.passthrough ? h('code', {}, s.id) : null), liveBadge(s));
      stop.hidden = LIVE_FINAL.has(s.status);
      status.replaceChildren(...[
        s.error ? h('div', { class: 'alert', role: 'alert' }, h('strong', {}, s.error.code), ` ${s.error.message}`) : null,
      ].filter(Boolean));
      factsSlot.replaceChildren(liveFacts(s));
      if (pid && LIVE_PLAYING.has(s.status) && !iframe) {
        iframe = h('iframe', { src: `/player/${pid}${query}`, title: 'Player', allow: 'autoplay; fullscreen; picture-in-picture', allowfullscreen: true, id: 'player-frame' });
        playerSlot.replaceChildren(iframe);
      } else if (!iframe) {
        playerSlot.replaceChildren(h('div', { class: 'player-placeholder', id: 'live-placeholder' },
          LIVE_NOTES[s.status] || s.status));
      }
      if (s.recording_asset_id && s.recording_asset_id !== recordingShown) {
        recordingShown = s.recording_asset_id;
        showRecording(s.recording_asset_id);
      } else if (!s.recording_asset_id && s.settings && s.settings.record !== false) {
        recording.hidden = false;
        recording.replaceChildren(h('h2', {}, 'Recording'),
          h('p', { class: 'muted' }, LIVE_FINAL.has(s.status) ? 'No recording was made.' : 'The recording becomes an asset when the stream ends.'));
      }
    }

    const urls = pid && stream.playback ? h('section', { class: 'card' }, h('h2', {}, 'Playback URLs'),
      tokenNote ? h('p', { class: 'muted' }, tokenNote) : null,
      copyField('HLS', `${stream.playback.hls}${query}`, 'url-hls'),
      copyField('DASH', `${stream.playback.dash}${query}`, 'url-dash'),
      copyField('Player page', `${new URL(stream.playback.hls).origin}/player/${pid}${query}`, 'url-player')) : null;

    app.replaceChildren(
      h('a', { class: 'back', href: '#/live' }, '← Live streams'),
      h('div', { class: 'detail-top' }, head, h('div', { class: 'detail-actions' }, stop, del)),
      status,
      h('div', { class: 'detail-grid' }, h('div', { class: 'card player-card' }, playerSlot),
        h('section', { class: 'card' }, h('h2', {}, 'Details'), factsSlot)),
      ingestCard(stream), preview, recording, urls);
    update(stream);

    let thumbBusy = false;
    const tick = async () => {
      if (document.hidden) return;
      try { update(await api('GET', `/v1/live-streams/${encodeURIComponent(id)}`)); } catch (e) {
        if (e.status === 404) { clearInterval(poll); toast('This live stream was deleted'); location.hash = '#/live'; }
        return;
      }
      if (pid && stream.status === 'active' && !thumbBusy) {
        thumbBusy = true;
        if (await refreshLiveThumb(previewImg, pid, query)) preview.hidden = false;
        thumbBusy = false;
      }
    };
    const poll = setInterval(tick, 2000);
    cleanup.push(() => clearInterval(poll));
    tick();
  }

  // ---- routing ------------------------------------------------------------------------------------

  function render(message) {
    cleanup.forEach((fn) => fn());
    cleanup = [];
    const signedIn = !!localStorage.getItem(KEY);
    document.getElementById('topnav').hidden = !signedIn;
    if (!signedIn) { loginView(message); return; }
    const m = /^#\/assets\/([A-Za-z0-9_-]+)$/.exec(location.hash);
    const live = /^#\/live(?:\/([A-Za-z0-9_-]+))?$/.exec(location.hash);
    document.title = m ? 'Asset · abr-origin' : live ? 'Live · abr-origin' : 'Assets · abr-origin';
    document.querySelectorAll('#topnav a[data-section]').forEach((a) => {
      a.classList.toggle('active', a.dataset.section === (live ? 'live' : 'assets'));
    });
    if (m) detailView(m[1]);
    else if (live && live[1]) liveDetailView(live[1]);
    else if (live) liveListView();
    else listView();
    window.scrollTo(0, 0);
  }
  document.getElementById('signout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', () => render());
  render();
}());
