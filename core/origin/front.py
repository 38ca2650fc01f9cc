"""The nginx front: segments of local VOD assets sent by nginx itself, everything else by the API.

`abr api --front nginx` (or `ABR_FRONT=nginx`) puts nginx on the API's
address and the Python server on a private loopback port behind it. For a
`/play/{id}/{rendition}/{segment}` GET or HEAD, nginx asks the API once per
playback id which asset it opens and whether it is signed (an `auth_request`
to `GATE_PATH`, cached `GATE_TTL` seconds, as the API caches playback ids
itself), checks a signed id's token in njs (`front.js`: HS256 with the same
keys, `exp`, `sub`), and sends the file from the storage directory with
sendfile and its open-file cache: no Python per segment. Whatever nginx does
not settle (manifests, images, keys, live ids, S3, an unknown id, a token
njs does not accept, a missing file, a range past the end, any other method)
goes to the API unchanged, which answers it as it always does — so njs only
ever has to *accept* a subset of what the API accepts; anything it refuses
gets the API's own answer, error body included.

Why: `bench/origin.py` showed the Python servers spend ~217 µs of
interpreter time per segment answer against nginx's ~11 µs (README,
Benchmarks): no trimming of Python closes that, a compiled segment path does.

Same answer as the API's for a segment nginx sends: `Cache-Control` (capped at
a signed token's remaining seconds, computed per request), the content type
by rendition, CORS (`ABR_CORS_ORIGINS`), `Accept-Ranges`, `Last-Modified`,
`X-Request-Id`; the `ETag` is nginx's (`"mtime-size"`), stable for the file,
and each segment is always answered by the same side (the gate's verdict is
per asset). Links anywhere below the storage root are refused
(`disable_symlinks`), as `core.origin.files` refuses them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.layout import SEGMENT_PATH
from core.media.manifests import MEDIA_PLAYLIST_NAME
from core.origin import policy
from core.origin.cors import EXPOSE_HEADERS, parse_origins
from core.origin.paths import PLAYBACK_ID, Kind

GATE_PATH = "/_abr/front/playback"  # + /{playback_id}: the API's verdict, reachable only with the secret
SECRET_HEADER = "X-Abr-Front-Secret"
GATE_TTL = 5  # s, nginx keeps a verdict: as long as the API keeps a playback id (OriginService)
MODULE_PATHS = ("/usr/lib/nginx/modules/ngx_http_js_module.so", "/usr/lib64/nginx/modules/ngx_http_js_module.so",
                "/usr/local/nginx/modules/ngx_http_js_module.so")
INSTALL_HINT = "sudo apt-get install nginx libnginx-mod-http-js"
SCRIPT = Path(__file__).with_name("front.js")

# nginx matches the decoded, normalised URI, as the API matches the decoded path
# (core.origin.paths); the segment names are `layout.SEGMENT_PATH`'s, less its anchors.
_SEGMENT = re.sub(r"\(\?P<\w+>", "(?:", SEGMENT_PATH.pattern.removeprefix("^").removesuffix("$"))
_ID = PLAYBACK_ID.pattern.removeprefix("^").removesuffix("$")
SEGMENT_LOCATION = f"^/play/(?<abr_pid>{_ID})/(?<abr_rest>{_SEGMENT})$"
MANIFEST_LOCATION = (f"^/play/(?<abr_pid>{_ID})/(?:master\\.m3u8|manifest\\.mpd"
                     f"|[a-z0-9][a-z0-9-]{{0,39}}/{re.escape(MEDIA_PLAYLIST_NAME)})$")
MANIFEST_TTL = 1  # s, nginx keeps a VOD manifest the API rendered (a micro-cache: the API re-reads them anyway)
# A rendition whose id says audio (`core.media.model.is_audio_rendition_id`): audio/mp4 or audio/webm.
AUDIO_SEGMENT_LOCATION = f"^/play/(?<abr_pid>{_ID})/(?<abr_rest>audio(?:-[0-9]+)?/{_SEGMENT.split('/', 1)[1]})$"


@dataclass(frozen=True)
class FrontPlan:
    """What the nginx front needs to know; `render_conf` turns it into nginx.conf."""

    listen_host: str
    listen_port: int
    upstream_port: int  # the API on 127.0.0.1
    storage_root: Path  # LocalStorage's directory: `media/{asset}/…` below it
    prefix: Path  # nginx's own files (temp, gate cache, pid)
    module: str  # ngx_http_js_module.so
    workers: int = 1
    cors_origins: str = "*"
    access_log: bool = False
    run_as_root: bool = False  # workers keep root's rights (as `abr ingest`'s nginx): the media may be 0700


_ORIGIN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9.:\[\]-]+$")  # scheme://host[:port]


def _quote(origin: str) -> str:
    """An origin as an nginx string literal; anything but `scheme://host[:port]` is refused."""
    if not _ORIGIN.match(origin):
        raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
    return f'"{origin}"'


def _cors(cors_origins: str) -> tuple[list[str], list[str]]:
    """(http-level maps, add_header lines): the headers `core.origin.cors.cors_headers` gives."""
    allowed = parse_origins(cors_origins)
    if allowed is None:
        return [], ['add_header Access-Control-Allow-Origin "*" always;',
                    f'add_header Access-Control-Expose-Headers "{EXPOSE_HEADERS}" always;']
    lines = ["map $http_origin $abr_cors_origin {", '    default "";']
    lines += [f"    {_quote(o)} {_quote(o)};" for o in sorted(allowed)]
    lines += ["}", "map $abr_cors_origin $abr_cors_expose {", '    "" "";', f'    default "{EXPOSE_HEADERS}";', "}"]
    return lines, ["add_header Access-Control-Allow-Origin $abr_cors_origin always;",
                   "add_header Access-Control-Expose-Headers $abr_cors_expose always;",
                   'add_header Vary "Origin" always;']


# The API's error bodies (api/errors.py) for the two 404s nginx gives itself, byte for byte:
# tests/origin/test_front.py asks both sides.
NO_SUCH_FILE = '{"error":{"code":"not_found","message":"no such file"}}'
NO_PLAYBACK_ID = '{"error":{"code":"not_found","message":"no playback id $abr_pid"}}'  # ids are [a-z0-9]


def _gate(indent: str) -> list[str]:
    return [
        f"{indent}auth_request /_abr_gate;",
        f"{indent}auth_request_set $abr_asset $upstream_http_x_abr_asset;",
        f"{indent}auth_request_set $abr_signed $upstream_http_x_abr_signed;",
        f"{indent}auth_request_set $abr_unknown $upstream_http_x_abr_unknown;",
        f"{indent}error_page 500 502 504 = @api;  # the gate failed: the API answers (or fails) itself",
    ]


def _segment_location(pattern: str, kind: str, cors: list[str]) -> list[str]:
    """Where nginx sends a segment file itself, once the gate (and njs, for tokens) allow it."""
    return [
        f'        location ~ "{pattern}" {{',
        *_gate("            "),
        "            # Not sent here (no asset, a token njs refuses, a range the API answers, other methods,",
        "            # no such file): @api.",
        "            try_files $abr_file @api;",
        f"            types {{ {kind}/mp4 mp4 m4s; {kind}/webm webm; }}",
        "            add_header Cache-Control $abr_cache_control always;",
        "            add_header X-Request-Id $abr_request_id always;",
        "            add_header Accept-Ranges $abr_ranged;",
        *(f"            {c}" for c in cors),
        "        }",
    ]


def _variables(cors_maps: list[str]) -> list[str]:
    segment_cc = policy.cache_control(Kind.SEGMENT, complete=True)
    return [
        "    js_set $abr_file_checked abr.file;",
        "    js_set $abr_cache_control_signed abr.cacheControl;",
        "    js_set $abr_manifest_uncached abr.manifestUncached;",
        "    js_set $abr_front_secret abr.secret;",
        "    # A public id's whole segment needs no njs at all; anything else (a token, a Range, another",
        "    # method, an id nginx does not send files for) is decided in front.js.",
        '    map "$request_method:$abr_signed:$http_range" $abr_file {',
        '        "GET:0:" /media/$abr_asset/$abr_rest;',
        '        "HEAD:0:" /media/$abr_asset/$abr_rest;',
        "        default $abr_file_checked;",
        "    }",
        "    map $abr_signed $abr_cache_control {",
        f'        "0" "{segment_cc}";',
        "        default $abr_cache_control_signed;",
        "    }",
        "    # In @api, what nginx answers itself: an unknown id, or a segment it may send that is not there.",
        '    map "$abr_unknown:$abr_file" $abr_not_found {',
        f"        \"~^1:\" '{NO_PLAYBACK_ID}';",
        '        "~^:." \'' + NO_SUCH_FILE + "';",
        '        default "";',
        "    }",
        "    # nginx drops Accept-Ranges from a 206 and the API keeps it; only a range nginx will answer gets",
        "    # here (front.js), so with Range (and no If-Range, where nginx may send all) the answer is a 206.",
        '    map "$http_range:$http_if_range" $abr_ranged {',
        '        "~^[^:]+:$" bytes;',
        '        default "";',
        "    }",
        "    # The client's X-Request-Id (64 characters at most, as api/middleware.py keeps it), else nginx's own;",
        "    # the API gets the same id, so one request has one id in both logs.",
        "    map $http_x_request_id $abr_request_id {",
        '        "~^(?<abr_rid>.{1,64})" $abr_rid;',
        "        default $request_id;",
        "    }",
        *(f"    {m}" for m in cors_maps),
    ]


def render_conf(plan: FrontPlan) -> str:
    """nginx.conf for the front (pure: the same plan gives the same text)."""
    cors_maps, cors = _cors(plan.cors_origins)
    prefix = plan.prefix
    access = "access_log /dev/stdout;" if plan.access_log else "access_log off;"
    lines = [
        "# Written by `abr api --front nginx` (core/origin/front.py); rewritten at every start.",
        f"load_module {plan.module};",
        *(["user root;"] if plan.run_as_root else []),
        f"worker_processes {plan.workers};",
        "daemon off;",
        f"pid {prefix / 'nginx.pid'};",
        "error_log stderr warn;",
        "env ABR_FRONT_KEYS;  # the playback signing keys, for front.js (never written to a file)",
        "env ABR_FRONT_SECRET;  # what the API's gate asks of nginx",
        "events { worker_connections 4096; }",
        "http {",
        f"    {access}",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    server_tokens off;",
        "    keepalive_requests 100000;",
        *(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "    client_max_body_size 0;  # the API bounds every body itself (ABR_MAX_UPLOAD_BYTES, ABR_MAX_BODY_BYTES)",
        "    open_file_cache max=10000 inactive=30s;",
        "    open_file_cache_valid 1s;  # a removed segment is gone within a second (the API: its 1 s link memo)",
        "    open_file_cache_errors on;",
        f"    js_path {SCRIPT.parent};",
        f"    js_import abr from {SCRIPT.name};",
        *_variables(cors_maps),
        f"    proxy_cache_path {prefix / 'gate'} levels=1:2 keys_zone=abr_gate:4m max_size=64m inactive=1m"
        " use_temp_path=off;",
        f"    proxy_cache_path {prefix / 'manifests'} levels=1:2 keys_zone=abr_manifests:16m max_size=256m"
        " inactive=10s use_temp_path=off;",
        "    upstream abr_api {",
        f"        server 127.0.0.1:{plan.upstream_port};",
        "        keepalive 64;",
        "    }",
        "    server {",
        f"        listen {plan.listen_host}:{plan.listen_port} reuseport backlog=4096;",
        f"        root {plan.storage_root};",
        "        disable_symlinks on from=$document_root;",
        "        # The API's gate is never served to clients (it also needs the secret).",
        "        location ^~ /_abr/ {",
        "            default_type application/json;",
        "            add_header Cache-Control no-store always;",
        """            return 404 '{"error":{"code":"not_found","message":"not found"}}';""",
        "        }",
        *_segment_location(AUDIO_SEGMENT_LOCATION, "audio", cors),
        *_segment_location(SEGMENT_LOCATION, "video", cors),
        "        # VOD manifests: rendered by the API, kept here a second (by URL and Host, tokens and filters",
        "        # included, per Accept-Encoding by the API's Vary); never for live, unknown ids or a refused token.",
        f'        location ~ "{MANIFEST_LOCATION}" {{',
        *_gate("            "),
        "            proxy_pass http://abr_api;",
        "            proxy_buffering on;",
        "            proxy_cache abr_manifests;",
        "            # The key holds what the API's Vary names (nginx 1.22 heeds only one Vary header of several).",
        "            proxy_cache_key $scheme$http_host$request_uri|$http_accept_encoding|$http_origin;",
        "            proxy_hide_header X-Request-Id;  # the copy's id was its first request's",
        "            add_header X-Request-Id $abr_request_id always;",
        f"            proxy_cache_valid 200 {MANIFEST_TTL}s;",
        "            proxy_ignore_headers Cache-Control Expires X-Accel-Expires Set-Cookie Vary;",
        "            proxy_cache_use_stale updating;",
        "            proxy_cache_background_update on;",
        "            proxy_no_cache $abr_manifest_uncached;",
        "            proxy_cache_bypass $abr_manifest_uncached;",
        "        }",
        "        location = /_abr_gate {",
        "            internal;",
        f"            proxy_pass http://abr_api{GATE_PATH}/$abr_pid;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        f"            proxy_set_header {SECRET_HEADER} $abr_front_secret;",
        "            proxy_pass_request_body off;",
        '            proxy_set_header Content-Length "";',
        "            proxy_buffering on;  # nginx caches only what it buffers",
        "            proxy_cache abr_gate;",
        "            proxy_cache_key $abr_pid;",
        f"            proxy_cache_valid 200 {GATE_TTL}s;",
        "            # No proxy_cache_lock: its waiters poll every 0.5 s (ngx_http_file_cache.c), a stall for every",
        "            # request of a new id; concurrent misses reach the API, which asks its database once (api/flights.py).",
        "            proxy_ignore_headers Cache-Control Expires Set-Cookie;",
        "        }",
        "        location / {",
        "            proxy_pass http://abr_api;",
        "        }",
        "        location @api {",
        "            default_type application/json;  # nginx's own 404s below; the API's answers keep theirs",
        "            if ($abr_not_found) {",
        "                add_header Cache-Control no-store always;",
        "                add_header X-Request-Id $abr_request_id always;",
        *(f"                {c}" for c in cors),
        "                return 404 $abr_not_found;",
        "            }",
        "            proxy_pass http://abr_api;",
        "        }",
        "        # Every request the API answers: streamed as it comes (live parts, previews, uploads).",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-For $remote_addr;",
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        "        proxy_set_header X-Request-Id $abr_request_id;",
        "        proxy_buffering off;",
        "        proxy_request_buffering off;",
        "        proxy_read_timeout 1h;  # live previews and event streams stay open",
        "        proxy_send_timeout 1h;",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def find_js_module(configured: str | None = None) -> str | None:
    """ngx_http_js_module.so: `configured` (ABR_JS_MODULE) if it exists, else Debian's paths; None if absent."""
    if configured:
        return configured if Path(configured).is_file() else None
    return next((p for p in MODULE_PATHS if Path(p).is_file()), None)


def keys_env(secrets: dict[str, bytes]) -> str:
    """`ABR_FRONT_KEYS` for front.js: the accepted signing keys by `kid`, as JSON."""
    return json.dumps({kid: secret.decode() for kid, secret in sorted(secrets.items())})
