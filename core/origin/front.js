// The nginx front's segment check (njs 0.7; core/origin/front.py writes the config that loads it).
//
// nginx has already asked the API, once per playback id and kept for a few seconds
// (api/routers/front.py), which asset the id opens ($abr_asset, empty when nginx must
// not send files for it) and whether it is signed ($abr_signed). A public id's whole
// segment needs no njs (a map in the config); for anything else, here: the file to
// send, or "" to hand the request to the API. A signed id needs an HS256 JWT made with one of
// the API's signing keys (ABR_FRONT_KEYS, {kid: secret}), whose `sub` is this id
// and whose `exp` is still ahead: the rules of core/services/playback.py
// `verify_token`, or stricter (any other claim or header field, and the API
// decides). Refusing is always safe: the API then answers with its own 403.

import crypto from 'crypto';
import fs from 'fs';

const MAX_TOKEN_CHARS = 2048;
const SEGMENT_MAX_AGE = 31536000;  // core/origin/policy.py SEGMENT_MAX_AGE
const KEYS = readKeys();
const SAFE_NAME = /^[A-Za-z0-9_-]+$/;
const HEADER_FIELDS = {alg: 1, kid: 1, typ: 1};
const CLAIM_FIELDS = {exp: 1, sub: 1};
// core/origin/conditional.py `_RANGE`: the one form of Range both sides answer alike.
const SINGLE_RANGE = /^\s*bytes\s*=\s*(?:(\d{1,15})\s*-\s*(\d{0,15})|-\s*(\d{1,15}))\s*$/i;

function readKeys() {
    try {
        const keys = JSON.parse(process.env.ABR_FRONT_KEYS || '{}');
        return (keys && typeof keys === 'object') ? keys : {};
    } catch (e) {
        return {};
    }
}

function decodePart(part) {
    if (!/^[A-Za-z0-9_-]+$/.test(part)) {
        return null;
    }
    const value = JSON.parse(Buffer.from(part, 'base64url').toString());
    return (value && typeof value === 'object' && !Array.isArray(value)) ? value : null;
}

function onlyFields(value, allowed) {
    return Object.keys(value).every((name) => allowed[name] === 1);
}

function sameText(a, b) {
    // Compared in full whatever differs first, as hmac.compare_digest does.
    if (a.length !== b.length) {
        return false;
    }
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

// The token's `exp` if it opens `playbackId` now, else 0.
function tokenExpiry(token, playbackId, now) {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) {
        return 0;
    }
    const parts = token.split('.');
    if (parts.length !== 3) {
        return 0;
    }
    let header;
    let claims;
    try {
        header = decodePart(parts[0]);
        claims = decodePart(parts[1]);
    } catch (e) {
        return 0;
    }
    if (!header || !claims || header.alg !== 'HS256' || typeof header.kid !== 'string'
            || !onlyFields(header, HEADER_FIELDS) || !onlyFields(claims, CLAIM_FIELDS)) {
        return 0;
    }
    if (!Object.prototype.hasOwnProperty.call(KEYS, header.kid)) {
        return 0;
    }
    const signature = crypto.createHmac('sha256', KEYS[header.kid])
        .update(parts[0] + '.' + parts[1]).digest('base64url');
    if (!sameText(signature, parts[2])) {
        return 0;
    }
    const exp = claims.exp;
    if (claims.sub !== playbackId || typeof exp !== 'number' || !Number.isInteger(exp) || exp <= now) {
        return 0;
    }
    return exp;
}

// Seconds the answer may be cached for: null (public), a positive number, or 0 (refused).
function allowance(r) {
    if (r.variables.abr_signed !== '1') {
        return null;
    }
    const now = Date.now() / 1000;
    const exp = tokenExpiry(r.args.token, r.variables.abr_pid, now);
    return exp ? Math.max(0, Math.floor(exp - Math.floor(now))) : 0;
}

// Whether nginx's answer to this Range is the API's: a single satisfiable range, or none.
// The rest — a range past the end (the API's 416 has its JSON body), several ranges or junk
// (the API sends the whole object, nginx would send multipart or 416) — goes to the API.
function rangeAnsweredAlike(r, path) {
    const header = r.headersIn.Range;
    if (header === undefined) {
        return true;
    }
    const m = SINGLE_RANGE.exec(header);
    if (!m) {
        return false;
    }
    if (m[3] !== undefined) {
        return Number(m[3]) > 0;
    }
    const first = Number(m[1]);
    if (m[2] !== '' && Number(m[2]) < first) {
        return false;
    }
    if (first === 0) {
        return true;
    }
    try {
        return first < fs.statSync(r.variables.document_root + path).size;
    } catch (e) {
        return false;
    }
}

// The file below the storage root to send, or "" (the API answers).
function file(r) {
    const asset = r.variables.abr_asset;
    if (!asset || !SAFE_NAME.test(asset) || (r.method !== 'GET' && r.method !== 'HEAD')) {
        return '';
    }
    if (allowance(r) === 0) {
        return '';
    }
    const path = '/media/' + asset + '/' + r.variables.abr_rest;
    return rangeAnsweredAlike(r, path) ? path : '';
}

// "1" when a manifest must come from the API now, not from nginx's copy: an id nginx does not
// serve files for (live, unknown, S3), another method, or a token the API would refuse.
function manifestUncached(r) {
    if (!r.variables.abr_asset || (r.method !== 'GET' && r.method !== 'HEAD')) {
        return '1';
    }
    return allowance(r) === 0 ? '1' : '';
}

// core/origin/policy.py cache_control(Kind.SEGMENT, token_ttl=…), for the answers nginx sends.
function cacheControl(r) {
    const ttl = allowance(r);
    const maxAge = ttl === null ? SEGMENT_MAX_AGE : Math.min(SEGMENT_MAX_AGE, ttl);
    return maxAge > 0 ? 'public, max-age=' + maxAge + ', immutable' : 'no-store';
}

function secret(r) {
    return process.env.ABR_FRONT_SECRET || '';
}

export default {file, cacheControl, manifestUncached, secret, tokenExpiry};
