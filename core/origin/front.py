"""The nginx front: segments of local VOD assets sent by nginx itself, everything else by the API.

`abr api --front nginx` (or `ABR_FRONT=nginx`) puts nginx on the API's
address and the Python server on a private loopback port behind it. For a
`/play/{id}/{rendition}/{segment}` GET or HEAD, nginx follows the link the
API made for the id in the current 5-second window (`core/origin/front_index.py`:
`{index}/{window}/p|s/{id}` -> the asset's directory), checks a signed id's
token in nginx's embedded Perl (`AbrFront.pm`: HS256 with the same keys, `exp`, `sub`,
each token checked once per worker), and sends
the file with sendfile and its open-file cache: no Python per segment, and
for a public id no script either. No link yet: nginx asks the API's gate
(`@admit_*` -> api/front_gate.py), which links the id and sends nginx back
to the same URL with `X-Accel-Redirect`, or to the API (`@api`) or to the
API's 404 for an unknown id (`@unknown`); a link that is there with no file
behind it is the API's 404 for a missing file (`@missing`), and a file
linked just after nginx looked is looked for once more (`@retry_*`).

Whatever nginx does not settle (images, keys, live ids, a token the script does not
accept, a range past the end, any other method) goes to the API unchanged,
which answers it as it always does — so the script only ever has to *accept* a
subset of what the API accepts; anything it refuses gets the API's own
answer, error body included. VOD manifests are the API's, kept by nginx for
as long as the API says (`X-Accel-Expires`, api/origin.py `front_expires`),
keyed by what they vary on; a signed one asked with its token alone is one
copy for every token, each request's own put in (`_manifest_locations`).

Why: `bench/origin.py` showed the Python servers spend ~217 µs of
interpreter time per segment answer against nginx's ~11 µs (README,
Benchmarks): no trimming of Python closes that, a compiled segment path does.

Same answer as the API's for a segment nginx sends: `Cache-Control` (capped at
a signed token's remaining seconds, computed per request), the content type
by rendition, CORS (`ABR_CORS_ORIGINS`), `Accept-Ranges`, `Last-Modified`,
`X-Request-Id`; the `ETag` is nginx's (`"mtime-size"`), stable for the file,
and each segment is always answered by the same side. Links below an
asset's directory are refused (`disable_symlinks ... from=` the id's own
link), as `core.origin.files` refuses them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from core.layout import SEGMENT_PATH
from core.media.manifests import DASH_CONTENT_TYPE, HLS_CONTENT_TYPE, MEDIA_PLAYLIST_NAME
from core.origin import policy
from core.origin.cors import EXPOSE_HEADERS, parse_origins
from core.origin.front_index import ADMIT_PATH, BUCKET_MAP, PUBLIC
from core.origin.paths import PLAYBACK_ID, Kind
from core.origin.service import MIN_COMPRESS_BYTES

MODULE_PATHS = ("/usr/lib/nginx/modules/ngx_http_perl_module.so", "/usr/lib64/nginx/modules/ngx_http_perl_module.so",
                "/usr/local/nginx/modules/ngx_http_perl_module.so")
INSTALL_HINT = "sudo apt-get install nginx libnginx-mod-http-perl"
SCRIPT = Path(__file__).with_name("AbrFront.pm")

# nginx matches the decoded, normalised URI, as the API matches the decoded path
# (core.origin.paths); the segment names are `layout.SEGMENT_PATH`'s, less its anchors.
_SEGMENT = re.sub(r"\(\?P<\w+>", "(?:", SEGMENT_PATH.pattern.removeprefix("^").removesuffix("$"))
_ID = PLAYBACK_ID.pattern.removeprefix("^").removesuffix("$")
SEGMENT_LOCATION = f"^/play/(?<abr_pid>{_ID})/(?<abr_rest>{_SEGMENT})$"
MANIFEST_LOCATION = (f"^/play/(?<abr_pid>{_ID})/(?<abr_manifest>master\\.m3u8|manifest\\.mpd"
                     f"|[a-z0-9][a-z0-9-]{{0,39}}/{re.escape(MEDIA_PLAYLIST_NAME)})$")
MANIFEST_TTL = 1  # s, nginx keeps a VOD manifest when the API says nothing (it says: X-Accel-Expires, api/origin.py)
# A rendition whose id says audio (`core.media.model.is_audio_rendition_id`): audio/mp4 or audio/webm.
AUDIO_SEGMENT_LOCATION = f"^/play/(?<abr_pid>{_ID})/(?<abr_rest>audio(?:-[0-9]+)?/{_SEGMENT.split('/', 1)[1]})$"


@dataclass(frozen=True)
class FrontPlan:
    """What the nginx front needs to know; `render_conf` turns it into nginx.conf."""

    listen_host: str
    listen_port: int
    upstream_port: int  # the API on 127.0.0.1
    prefix: Path  # nginx's own files (temp, manifest cache, pid) and the id index (`index`)
    module: str  # ngx_http_perl_module.so
    workers: int = 1
    cors_origins: str = "*"
    access_log: bool = False
    run_as_root: bool = False  # workers keep root's rights (as `abr ingest`'s nginx): the media may be 0700

    @property
    def index(self) -> Path:
        """Where the API links playback ids for nginx (ABR_FRONT_INDEX, core/origin/front_index.py)."""
        return self.prefix / "ids"


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


# The API's error bodies (api/errors.py) for the 404s nginx gives itself, byte for byte:
# tests/origin/test_front.py asks both sides.
NO_SUCH_FILE = '{"error":{"code":"not_found","message":"no such file"}}'
NO_PLAYBACK_ID = '{"error":{"code":"not_found","message":"no playback id $abr_pid"}}'  # ids are [a-z0-9]


def _not_found(name: str, body: str, cors: list[str]) -> list[str]:
    return [
        f"        location {name} {{",
        "            default_type application/json;",
        "            add_header Cache-Control no-store always;",
        "            add_header X-Request-Id $abr_request_id always;",
        *(f"            {c}" for c in cors),
        f"            return 404 '{body}';",
        "        }",
    ]


# What nginx tells the API with every request it passes on (server-wide; repeated in a location that adds one).
_PROXY_HEADERS = (
    'proxy_set_header Connection "";',
    "proxy_set_header Host $http_host;",
    "proxy_set_header X-Forwarded-For $remote_addr;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header X-Request-Id $abr_request_id;",
)

# nginx looks for an id's link during the current window only, under p/ without a token and
# under s/ with one (a public id asked with a token, or a signed one without, goes to the API).
_LINK = "/$abr_bucket/$abr_ns/$abr_pid"


def _linked(indent: str, index: Path) -> list[str]:
    """The location looks in the id index; symlinks are followed up to the id's link, none below it."""
    return [
        f"{indent}root {index};",
        f"{indent}disable_symlinks on from=$document_root{_LINK};",
    ]

def _sent(kind: str, cors: list[str]) -> list[str]:
    """The headers of a segment nginx sends: the API's (`core.origin.policy`, CORS, request id)."""
    return [
        f"            types {{ {kind}/mp4 mp4 m4s; {kind}/webm webm; }}",
        "            add_header Cache-Control $abr_cache_control always;",
        "            add_header X-Request-Id $abr_request_id always;",
        "            add_header Accept-Ranges $abr_ranged;",
        *(f"            {c}" for c in cors),
    ]


def _segment_locations(pattern: str, kind: str, cors: list[str], index: Path) -> list[str]:
    """Where nginx sends a segment file itself, through the id's link (and AbrFront.pm, for tokens).

    No link yet: `@admit_{kind}` asks the API's gate (api/front_gate.py), which links the id and
    sends nginx back to the same URL (or to the API, or to one of the API's 404s). A link that is
    there already means the file is not (nginx answers the API's 404) — or was linked after this
    request looked: `@retry_{kind}` looks once more, so a file that is there is always sent.
    """
    return [
        f'        location ~ "{pattern}" {{',
        *_linked("            ", index),
        "            # Not sent here (a token AbrFront.pm refuses, a range the API answers, other methods): @api.",
        f"            try_files $abr_file $abr_fallback_{kind};",
        *_sent(kind, cors),
        "        }",
        f"        location @admit_{kind} {{",
        "            disable_symlinks off;  # to test the id's link (no file is sent here)",
        f"            error_page 418 = @retry_{kind};",
        "            if (-d $abr_link) {",
        "                return 418;",
        "            }",
        f"            proxy_pass http://abr_api{ADMIT_PATH}{_LINK}/$abr_rest$is_args$args;",
        "            proxy_pass_request_body off;",
        '            proxy_set_header Content-Length "";',
        "            proxy_ignore_headers Expires;  # and so X-Accel-Redirect is heeded",
        "        }",
        f"        location @retry_{kind} {{",
        *_linked("            ", index),
        "            try_files $abr_file @missing;",
        *_sent(kind, cors),
        "        }",
    ]


def _variables(cors_maps: list[str], index: Path) -> list[str]:
    segment_cc = policy.cache_control(Kind.SEGMENT, complete=True)
    return [
        "    # AbrFront.pm: a signed request's token, checked once per worker and request",
        "    perl_set $abr_file_checked AbrFront::file;",
        "    perl_set $abr_signed_max_age AbrFront::signed_max_age;",
        "    perl_set $abr_cache_control_signed AbrFront::cache_control;",
        "    perl_set $abr_manifest_uncached_signed AbrFront::manifest_uncached;",
        "    perl_set $abr_manifest_cache_control_signed AbrFront::manifest_cache_control;",
        *(f"    {line}" for line in BUCKET_MAP),
        "    map $arg_token $abr_ns {",
        f'        "" {PUBLIC};',
        "        default s;",
        "    }",
        "    # A public id's whole segment needs no script at all; a signed one asked with nothing but its token,",
        "    # one call ($abr_signed_max_age); anything else (a Range, another method, more in the query) is",
        "    # decided in AbrFront.pm's `file`.",
        '    map "$abr_ns:$request_method:$http_range:$abr_plain_token" $abr_file {',
        f'        "{PUBLIC}:GET::" {_LINK}/$abr_rest;',
        f'        "{PUBLIC}:HEAD::" {_LINK}/$abr_rest;',
        '        "s:GET::1" $abr_signed_file;',
        '        "s:HEAD::1" $abr_signed_file;',
        "        default $abr_file_checked;",
        "    }",
        "    # The common case is an exact key in every map here: nginx finds those by hash, and runs each regex",
        "    # key (pcre) only when none matched.",
        '    map "$abr_ns:$request_method:$http_range:$abr_plain_token" $abr_cache_control {',
        f'        "{PUBLIC}:GET::" "{segment_cc}";',
        f'        "{PUBLIC}:HEAD::" "{segment_cc}";',
        '        "s:GET::1" "public, max-age=$abr_signed_max_age, immutable";',
        '        "s:HEAD::1" "public, max-age=$abr_signed_max_age, immutable";',
        "        default $abr_cache_control_signed;",
        "    }",
        "    # A perl_set variable is worked out once per request: one call for the file and its Cache-Control.",
        "    map $abr_signed_max_age $abr_signed_file {",
        '        "" "";',
        f"        default {_LINK}/$abr_rest;",
        "    }",
        "    map $abr_ns $abr_manifest_cache_control {",
        f"        {PUBLIC} $upstream_http_cache_control;",
        "        default $abr_manifest_cache_control_signed;",
        "    }",
        "    map $abr_ns $abr_manifest_uncached {",
        f'        {PUBLIC} "";',
        "        default $abr_manifest_uncached_signed;",
        "    }",
        "    # A signed manifest asked with nothing but a token (what a JWT is made of) that AbrFront.pm accepts, whole:",
        "    # one copy kept for every token (@manifest_signed), each request's own token put in by sub_filter.",
        "    map $args $abr_plain_token {",
        '        "" "";',
        '        "~^token=[A-Za-z0-9_.-]{1,2048}$" 1;',
        '        default "";',
        "    }",
        '    map "$abr_plain_token:$request_method:$http_range:$abr_manifest_uncached" $abr_manifest_shared {',
        '        "1:GET::" 1;',
        '        "1:HEAD::" 1;',
        '        default "";',
        "    }",
        "    map $upstream_http_x_abr_token_placeholder $abr_not_template {",
        '        "" 1;',
        '        default "";',
        "    }",
        *(line for kind in ("audio", "video") for line in (
            f"    map $abr_file $abr_fallback_{kind} {{", '        "" @api;', f"        default @admit_{kind};", "    }")),
        f'    map $abr_pid $abr_link {{ default "{index}{_LINK}"; }}',
        "    # nginx drops Accept-Ranges from a 206 and the API keeps it; only a range nginx will answer gets",
        "    # here (AbrFront.pm), so with Range (and no If-Range, where nginx may send all) the answer is a 206.",
        '    map "$http_range:$http_if_range" $abr_ranged {',
        '        ":" "";',
        '        "~^[^:]+:$" bytes;',
        '        default "";',
        "    }",
        "    # The client's X-Request-Id (64 characters at most, as api/middleware.py keeps it), else nginx's own;",
        "    # the API gets the same id, so one request has one id in both logs.",
        "    map $http_x_request_id $abr_request_id {",
        '        "" $request_id;',
        '        "~^(?<abr_rid>.{1,64})" $abr_rid;',
        "        default $request_id;",
        "    }",
        *(f"    {m}" for m in cors_maps),
    ]


def _kept(key: str) -> list[str]:
    """A manifest nginx keeps as long as the API says (`X-Accel-Expires`), under `key`; never a refused token's."""
    return [
        "            proxy_pass http://abr_api$request_uri;  # as asked (try_files has changed $uri)",
        "            proxy_buffering on;",
        "            proxy_cache abr_manifests;",
        f"            proxy_cache_key {key};",
        "            proxy_hide_header X-Request-Id;  # the copy's id was its first request's",
        "            proxy_hide_header X-Abr-Max-Age;",
        "            proxy_hide_header Cache-Control;  # a signed one's counts down its token: written per request",
        "            add_header Cache-Control $abr_manifest_cache_control always;",
        "            add_header X-Request-Id $abr_request_id always;",
        f"            proxy_cache_valid 200 {MANIFEST_TTL}s;",
        "            # The API says how long with X-Accel-Expires (api/origin.py front_expires); its Cache-Control",
        "            # is for the client.",
        "            proxy_ignore_headers Cache-Control Expires X-Accel-Redirect Set-Cookie Vary;",
        "            proxy_cache_use_stale updating;",
        "            proxy_cache_background_update on;",
    ]


def _manifest_locations(index: Path) -> list[str]:
    """VOD manifests: the API's, kept by nginx; a signed one asked with just its token, one copy for all tokens.

    Each viewer of a signed id has a token of their own, so kept per URL a signed manifest was
    the API's work for every viewer's first request (bench/origin.py: 303 of the API's 639
    requests on the 12,000 list). `@manifest_signed` asks the API for the manifest with a
    placeholder where the token goes (`X-Abr-Token-Template`, api/origin.py front_template), keeps
    that one copy per id, manifest and `Origin`, and puts each request's token in with `sub_filter`
    (so it is sent chunked, and compressed here). Only for a request AbrFront.pm has accepted the
    token of (`$abr_manifest_uncached` empty), with nothing in its query but the token, in the
    characters a JWT is made of (as sent and as decoded alike), and no Range: anything else is
    kept per URL as before. A copy the API did not render as a template is never kept there.
    """
    return [
        "        # VOD manifests: rendered by the API, kept here as long as it says (by URL and Host, tokens and filters",
        "        # included, per Accept-Encoding by the API's Vary) when the id is linked; never for live,",
        "        # unknown ids or a refused token.",
        f'        location ~ "{MANIFEST_LOCATION}" {{',
        "            error_page 418 = @manifest_signed;",
        "            if ($abr_manifest_shared) {",
        "                return 418;",
        "            }",
        *_linked("            ", index),
        f"            try_files {_LINK}/ @api;",
        *_kept("$scheme$http_host$request_uri|$http_accept_encoding|$http_origin"),
        "            proxy_no_cache $abr_manifest_uncached;",
        "            proxy_cache_bypass $abr_manifest_uncached;",
        "        }",
        "        location @manifest_signed {",
        *_linked("            ", index),
        f"            try_files {_LINK}/ @api;",
        *_kept("$scheme$http_host/play/$abr_pid/$abr_manifest?token|$http_origin"),
        "            proxy_no_cache $abr_not_template;",
        "            proxy_hide_header X-Abr-Token-Placeholder;",
        "            # nginx drops the API's Accept-Ranges from an answer it sends chunked; a Range request is",
        "            # answered (by the copy kept per URL above), so it is said, as the API says it.",
        "            add_header Accept-Ranges bytes;",
        "            sub_filter $upstream_http_x_abr_token_placeholder $arg_token;",
        "            sub_filter_once off;",
        "            sub_filter_last_modified on;",
        f"            sub_filter_types {HLS_CONTENT_TYPE} {DASH_CONTENT_TYPE};",
        "            gzip on;  # as the API would: its copy is asked for uncompressed, so that the token can go in",
        f"            gzip_types {HLS_CONTENT_TYPE} {DASH_CONTENT_TYPE};",
        f"            gzip_min_length {MIN_COMPRESS_BYTES};",
        "            gzip_proxied any;",
        "            # Compressed anew for every request (the API compresses its copies once, at level 6): level 1",
        "            # with 8k of window and of hash memory took ~30 % fewer instructions (zlib and the memset of its",
        "            # state; callgrind) than level 6 with nginx's 32k/256k, for a few bytes more (a 4.5 KB signed",
        "            # media playlist: 380 B against 379; an MPD 908 against 864).",
        "            gzip_comp_level 1;",
        "            gzip_window 8k;",
        "            gzip_hash 8k;",
        "            # Every header the server sets is repeated: one proxy_set_header here drops them all.",
        *(f"            {line}" for line in _PROXY_HEADERS),
        '            proxy_set_header Accept-Encoding "";',
        "            proxy_set_header X-Abr-Token-Template 1;",
        "        }",
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
        "pcre_jit on;  # every request runs the location regexes (and $msec's window map): ~7k -> ~2k instructions",
        f"pid {prefix / 'nginx.pid'};",
        "error_log stderr warn;",
        "env ABR_FRONT_KEYS;  # the playback signing keys, for AbrFront.pm (never written to a file)",
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
        "    open_file_cache_errors off;  # a link the API has just made is found at once",
        f"    perl_modules {SCRIPT.parent};",
        f"    perl_require {SCRIPT.name};",
        *_variables(cors_maps, plan.index),
        f"    proxy_cache_path {prefix / 'manifests'} levels=1:2 keys_zone=abr_manifests:16m max_size=64m"
        " inactive=10s use_temp_path=off;",
        "    upstream abr_api {",
        f"        server 127.0.0.1:{plan.upstream_port};",
        "        keepalive 64;",
        "    }",
        "    server {",
        f"        listen {plan.listen_host}:{plan.listen_port} reuseport backlog=4096;",
        "        disable_symlinks on;",
        "        proxy_ignore_headers X-Accel-Redirect;  # heeded from the gate (@admit) only",
        "        # The API's gate is never served to clients.",
        "        location ^~ /_abr/ {",
        "            default_type application/json;",
        "            add_header Cache-Control no-store always;",
        """            return 404 '{"error":{"code":"not_found","message":"not found"}}';""",
        "        }",
        *_segment_locations(AUDIO_SEGMENT_LOCATION, "audio", cors, plan.index),
        *_segment_locations(SEGMENT_LOCATION, "video", cors, plan.index),
        *_manifest_locations(plan.index),
        "        location / {",
        "            proxy_pass http://abr_api;",
        "        }",
        "        # The gate's 404s, with the API's bodies (api/errors.py) and headers.",
        *_not_found("@unknown", NO_PLAYBACK_ID, cors),
        *_not_found("@missing", NO_SUCH_FILE, cors),
        "        location @api {",
        "            proxy_pass http://abr_api;",
        "        }",
        "        # Every request the API answers: streamed as it comes (live parts, previews, uploads).",
        "        proxy_http_version 1.1;",
        *(f"        {line}" for line in _PROXY_HEADERS),
        "        proxy_buffering off;",
        "        proxy_request_buffering off;",
        "        proxy_read_timeout 1h;  # live previews and event streams stay open",
        "        proxy_send_timeout 1h;",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def find_perl_module(configured: str | None = None) -> str | None:
    """ngx_http_perl_module.so: `configured` (ABR_PERL_MODULE) if it exists, else Debian's paths; None if absent."""
    if configured:
        return configured if Path(configured).is_file() else None
    return next((p for p in MODULE_PATHS if Path(p).is_file()), None)


def keys_env(secrets: dict[str, bytes]) -> str:
    """`ABR_FRONT_KEYS` for AbrFront.pm: the accepted signing keys by `kid`, as JSON."""
    return json.dumps({kid: secret.decode() for kid, secret in sorted(secrets.items())})
