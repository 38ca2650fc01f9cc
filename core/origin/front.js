// The nginx front's segment check (njs 0.7; core/origin/front.py writes the config that loads it).
//
// nginx finds which asset a playback id opens by a link the API made for the current
// 5-second window (core/origin/front_index.py): {index}/$abr_bucket/p/{id} for a public id,
// .../s/{id} for a signed one; a request with a `token` looks under s/, one without under p/
// ($abr_ns). A public id's whole segment needs no njs (a map in the config); for anything
// else, here: the file to send below the index, or "" to hand the request to the API (which
// it also gets when the link is not there). Under s/, the request needs an HS256 JWT made
// with one of the API's signing keys (ABR_FRONT_KEYS, {kid: secret}), whose `sub` is this id
// and whose `exp` is still ahead: the rules of core/services/playback.py `verify_token`, or
// stricter (any other claim or header field, and the API decides). Refusing is always safe:
// the API then answers with its own 403.
//
// What it costs: njs 0.7 gives every request a fresh VM and runs this file's top level in it
// again, so nothing is worked out ahead here (the keys are read from the environment per request:
// ~10k instructions, the price of keeping them out of files). A signed segment costs ~142k
// instructions in njs (284k before this file was trimmed for it) against ~36k for nginx's whole
// answer to a public one (callgrind, README: Benchmarks); what is left is mostly njs itself:
// starting the VM, HMAC-SHA256, two SHA-256 and a few Buffer calls.

import crypto from 'crypto';
import fs from 'fs';

const MAX_TOKEN_CHARS = 2048;
const SEGMENT_MAX_AGE = 31536000;  // core/origin/policy.py SEGMENT_MAX_AGE
const KEYS = readKeys();
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

// The header sign_token writes (PyJWT: alg, kid, typ in that order, no spaces) around its `kid`.
const HEADER_START = '{"alg":"HS256","kid":"';
const HEADER_END = '","typ":"JWT"}';

function hasOwn(object, name) {
    return Object.prototype.hasOwnProperty.call(object, name);
}

// A JSON object written as unpadded base64url, exactly (what encodes back to other characters is
// refused: njs and Python each skip characters they do not decode, and not alike), or null.
function decodePart(part) {
    const bytes = Buffer.from(part, 'base64url');
    if (part === '' || bytes.toString('base64url') !== part) {
        return null;
    }
    const value = JSON.parse(bytes.toString());
    return (value && typeof value === 'object' && !Array.isArray(value)) ? value : null;
}

function onlyFields(value, allowed) {
    for (const name in value) {
        if (allowed[name] !== 1) {
            return false;
        }
    }
    return true;
}

// The `kid` of a header that asks for HS256 with one of KEYS, else null. sign_token's own header
// is compared with the text it writes for each key (a key or two: no regular expression, no
// JSON.parse, ~5 µs less per request in njs, which starts every request anew); any other header
// is decoded and checked field by field.
function keyOf(part) {
    for (const kid in KEYS) {
        if (Buffer.from(HEADER_START + kid + HEADER_END).toString('base64url') === part) {
            return kid;
        }
    }
    let header;
    try {
        header = decodePart(part);
    } catch (e) {
        return null;
    }
    if (!header || header.alg !== 'HS256' || typeof header.kid !== 'string' || !onlyFields(header, HEADER_FIELDS)) {
        return null;
    }
    return hasOwn(KEYS, header.kid) ? header.kid : null;
}

// Whether two strings are equal, in a time that says nothing about where they differ (as
// hmac.compare_digest): their SHA-256 digests are compared instead, and where two digests differ
// tells nothing about the strings (the "double hashing" comparison). A loop over the characters
// in njs cost ~19 µs per request; two digests ~5.
function sameText(a, b) {
    return crypto.createHash('sha256').update(a).digest('base64url')
        === crypto.createHash('sha256').update(b).digest('base64url');
}

// The token's `exp` if it opens `playbackId` now, else 0. The signature is checked before the
// claims are read.
function tokenExpiry(token, playbackId, now) {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) {
        return 0;
    }
    const parts = token.split('.');
    if (parts.length !== 3) {
        return 0;
    }
    const kid = keyOf(parts[0]);
    if (kid === null) {
        return 0;
    }
    const signature = crypto.createHmac('sha256', KEYS[kid]).update(parts[0] + '.' + parts[1]).digest('base64url');
    if (!sameText(signature, parts[2])) {
        return 0;
    }
    let claims;
    try {
        claims = decodePart(parts[1]);
    } catch (e) {
        return 0;
    }
    if (!claims || !onlyFields(claims, CLAIM_FIELDS)) {
        return 0;
    }
    const exp = claims.exp;
    if (claims.sub !== playbackId || typeof exp !== 'number' || !Number.isInteger(exp) || exp <= now) {
        return 0;
    }
    return exp;
}

// Seconds the answer may be cached for: null (public), a positive number, or 0 (refused).
// Worked out once per request ($abr_allowance, a js_var): a signed segment asks for its file and
// for its Cache-Control, a signed manifest whether it may be kept and its Cache-Control.
function allowance(r) {
    if (r.variables.abr_ns !== 's') {
        return null;
    }
    const known = r.variables.abr_allowance;
    if (known) {
        return Number(known);
    }
    const now = Date.now() / 1000;
    const exp = tokenExpiry(r.args.token, r.variables.abr_pid, now);
    const seconds = exp ? Math.max(0, Math.floor(exp - Math.floor(now))) : 0;
    r.variables.abr_allowance = String(seconds);
    return seconds;
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

// The file below the index to send (through the id's link), or "" (the API answers).
function file(r) {
    if ((r.method !== 'GET' && r.method !== 'HEAD') || allowance(r) === 0) {
        return '';
    }
    const v = r.variables;
    const path = '/' + v.abr_bucket + '/' + v.abr_ns + '/' + v.abr_pid + '/' + v.abr_rest;
    return rangeAnsweredAlike(r, path) ? path : '';
}

// A signed whole segment's max-age (`cacheControl`'s), or "" when its token does not open the id
// (the API answers). Only for a GET or HEAD with no Range and nothing in its query but the token
// (core/origin/front.py sends no other here), so nothing else needs checking: one call and two
// variables read per request, where `file` and `cacheControl` made two calls, parsed the whole
// query and kept the verdict in a js_var between them.
function signedMaxAge(r) {
    const v = r.variables;
    const now = Date.now() / 1000;
    const exp = tokenExpiry(v.arg_token, v.abr_pid, now);
    const seconds = exp ? Math.floor(exp - Math.floor(now)) : 0;
    return seconds > 0 ? String(Math.min(SEGMENT_MAX_AGE, seconds)) : '';
}

// "1" when a manifest asked with a token must come from the API now, not from nginx's copy:
// another method, or a token the API would refuse. (Without a token nginx keeps copies only
// for the ids linked under p/: public VOD ids.)
function manifestUncached(r) {
    if (r.method !== 'GET' && r.method !== 'HEAD') {
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

// A signed manifest nginx kept: core/origin/policy.py cache_control(…, token_ttl=…) for this request's
// token, from the max-age the API gave before the token's cap (X-Abr-Max-Age, api/origin.py
// front_expires). Anything else (a public one, an error's no-store) as the API wrote it.
function manifestCacheControl(r) {
    const given = r.variables.upstream_http_cache_control || '';
    const maxAge = Number(r.variables.upstream_http_x_abr_max_age || '');
    if (r.variables.abr_ns !== 's' || !given.startsWith('public') || !(maxAge > 0)) {
        return given;
    }
    const ttl = allowance(r);
    const value = Math.min(maxAge, ttl || 0);
    return value > 0 ? 'public, max-age=' + value : 'no-store';
}

export default {file, signedMaxAge, cacheControl, manifestCacheControl, manifestUncached, tokenExpiry};
