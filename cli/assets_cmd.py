"""`abr assets ls` and `abr watch ID`: client commands over the HTTP API (no server code imported).

Exit codes: 0 ok, 1 the asset/upload errored, 2 usage, 3 authentication or
permission, 4 not found, 5 the API could not be reached or failed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from dataclasses import dataclass

import httpx

EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_UNAVAILABLE = 1, 2, 3, 4, 5
DEFAULT_URL = "http://127.0.0.1:8000"


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class ApiClient:
    def __init__(self, base: str, key: str | None) -> None:
        self.base = base.rstrip("/")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(headers=headers, timeout=httpx.Timeout(30.0, connect=10.0))

    @classmethod
    def from_args(cls, args) -> ApiClient:
        base = getattr(args, "url", None) or os.environ.get("ABR_URL") or os.environ.get("ABR_API_URL") \
            or DEFAULT_URL
        return cls(base, getattr(args, "key", None) or os.environ.get("ABR_API_KEY"))

    def request(self, method: str, path: str, *, expect: int = 200, **kwargs) -> dict:
        r = self.http.request(method, self.base + path, **kwargs)
        if r.status_code == expect:
            return r.json() if r.content else {}
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:200]
        code = {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND}.get(r.status_code, EXIT_UNAVAILABLE
                                                                          if r.status_code >= 500 else EXIT_FAILED)
        hint = " (pass --key or set ABR_API_KEY; `abr dev` prints one)" if r.status_code == 401 else ""
        raise CliError(f"{method} {path}: HTTP {r.status_code}: {message}{hint}", code)


def client_command(fn):
    """Turn CliError and connection failures into one line on stderr and an exit code."""
    @functools.wraps(fn)
    def run(args) -> int:
        try:
            return fn(args)
        except CliError as exc:
            print(f"abr: {exc}", file=sys.stderr)
            return exc.code
        except httpx.HTTPError as exc:
            url = ApiClient.from_args(args).base
            print(f"abr: cannot reach the API at {url}: {exc or type(exc).__name__} "
                  "(pass --url or set ABR_URL to where `abr dev`/`abr api` listens)", file=sys.stderr)
            return EXIT_UNAVAILABLE
    return run


@client_command
def cmd_assets_ls(args) -> int:
    api = ApiClient.from_args(args)
    params = {"limit": args.limit, "offset": args.offset}
    if args.search:
        params["q"] = args.search
    page = api.request("GET", "/v1/assets", params=params)
    if args.json:
        print(json.dumps(page, indent=1))
        return 0
    print(format_assets(page["data"]), end="")
    return 0


NAME_WIDTH = 32


def format_assets(assets: list[dict]) -> str:
    """The `abr assets ls` table: one line per asset, the name cut to NAME_WIDTH ("-" when it has none)."""
    lines = [f"{'ID':24} {'NAME':{NAME_WIDTH}} {'STATUS':10} {'PROGRESS':>8} {'DURATION':>9}  CREATED"]
    for a in assets:
        duration = f"{a['duration']:.1f}s" if a.get("duration") is not None else "-"
        name = a.get("name") or (a.get("meta") or {}).get("title") or "-"
        if len(name) > NAME_WIDTH:
            name = name[:NAME_WIDTH - 1] + "…"
        lines.append(f"{a['id']:24} {name:{NAME_WIDTH}} {a['status']:10} {a['progress']:7.1f}% {duration:>9}  "
                     f"{a['created_at']}")
    return "\n".join(lines) + "\n"


RECONNECT_FOR_S = 300.0  # keep reopening a dropped event stream this long (an API restart, a deploy)
FIRST_CONNECT_FOR_S = 10.0  # …but give up sooner on an API this command never reached
MAX_RETRY_DELAY_S = 10.0


class _Dropped(Exception):
    """The event stream could not be opened or ended without a final event: open it again."""


@dataclass
class _StreamState:
    last_id: str | None = None  # sent back as Last-Event-ID
    retry: float = 2.0  # the server's `retry:` (s)
    connected: bool = False  # this attempt got a 200


def watch_asset(api: ApiClient, asset_id: str, *, quiet: bool = False) -> int:
    """Follow the asset's event stream until it is ready (0) or errored (1).

    A stream that drops (API restart, proxy timeout, a cut body) is opened again
    with `Last-Event-ID`, so nothing is missed and nothing repeats; only an
    authentication error, a deleted asset, or an API out of reach for
    RECONNECT_FOR_S end the wait early.
    """
    state = _StreamState()
    ever_connected, failures, down_since = False, 0, None
    while True:
        state.connected = False
        try:
            result = _follow(api, asset_id, state, quiet=quiet)
            if result is not None:
                return result
            why = "the event stream ended before the asset was done"
        except (httpx.TransportError, _Dropped) as exc:
            why = str(exc) or type(exc).__name__
        now = time.monotonic()
        if state.connected:
            ever_connected, failures, down_since = True, 0, None
        failures += 1
        down_since = down_since or now
        if now - down_since > (RECONNECT_FOR_S if ever_connected else FIRST_CONNECT_FOR_S):
            raise CliError(f"cannot reach the API to follow {asset_id}: {why}", EXIT_UNAVAILABLE)
        if not quiet:
            print(f"{asset_id}: {why}; reconnecting", file=sys.stderr, flush=True)
        time.sleep(min(MAX_RETRY_DELAY_S, state.retry * 2 ** (failures - 1)))


def _follow(api: ApiClient, asset_id: str, state: _StreamState, *, quiet: bool) -> int | None:
    """Read one connection of the stream; the exit code once the asset is done, None if it ended early."""
    headers = {"Accept": "text/event-stream"}
    if state.last_id:
        headers["Last-Event-ID"] = state.last_id
    with api.http.stream("GET", f"{api.base}/v1/assets/{asset_id}/events", headers=headers,
                         timeout=httpx.Timeout(60.0, connect=10.0, read=120.0)) as r:
        if r.status_code >= 500:
            raise _Dropped(f"HTTP {r.status_code}")
        if r.status_code != 200:
            r.read()
            api_error = {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND}.get(r.status_code, EXIT_FAILED)
            raise CliError(f"watch {asset_id}: HTTP {r.status_code}", api_error)
        state.connected = True
        event, data, event_id = "message", [], None
        for line in r.iter_lines():
            if line:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
                elif name == "id":
                    event_id = value
                elif name == "retry" and value.isdigit():
                    state.retry = int(value) / 1000
                continue
            # a blank line dispatches the event (comments and keep-alives carry no data)
            if event_id is not None:
                state.last_id = event_id
            result = _on_event(api, asset_id, event, "\n".join(data), quiet=quiet) if data else None
            if result is not None:
                return result
            event, data, event_id = "message", [], None
    return None


def _on_event(api: ApiClient, asset_id: str, event: str, data: str, *, quiet: bool) -> int | None:
    if event == "deleted":
        raise CliError(f"asset {asset_id} was deleted", EXIT_NOT_FOUND)
    if event == "end":  # a stream resumed after the final state was seen: only `end` comes
        status = json.loads(data).get("status")
        if status == "deleted":
            raise CliError(f"asset {asset_id} was deleted", EXIT_NOT_FOUND)
        if status in ("ready", "errored"):
            return _on_asset(api.request("GET", f"/v1/assets/{asset_id}"), asset_id, quiet=True)
        return None
    if event == "asset":
        return _on_asset(json.loads(data), asset_id, quiet=quiet)
    return None


def _on_asset(asset: dict, asset_id: str, *, quiet: bool) -> int | None:
    if not quiet:
        detail = asset.get("progress_detail") or {}
        extra = f" {detail.get('family', '')} {detail.get('fps') or ''}fps" if detail else ""
        print(f"{asset_id} {asset['status']:10} {asset['progress']:5.1f}%"
              f"{' playable' if asset['playable'] else ''}{extra}", file=sys.stderr, flush=True)
    if asset["status"] == "ready":
        return 0
    if asset["status"] == "errored":
        print(f"{asset_id} errored: {(asset.get('error') or {}).get('message')}", file=sys.stderr)
        return EXIT_FAILED
    return None


@client_command
def cmd_watch(args) -> int:
    return watch_asset(ApiClient.from_args(args), args.asset_id, quiet=args.quiet)


def client_options(p) -> None:
    p.add_argument("--url", help=f"API base URL (default $ABR_URL, $ABR_API_URL or {DEFAULT_URL})")
    p.add_argument("--key", help="API key (default $ABR_API_KEY)")


def add_parsers(sub) -> None:
    assets = sub.add_parser("assets", help="list assets").add_subparsers(dest="assets_command", required=True)
    p = assets.add_parser("ls", help="list assets, newest first")
    client_options(p)
    p.add_argument("--limit", type=int, default=25)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--search", metavar="TEXT", help="only assets whose name, title or external id contains TEXT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_assets_ls)

    p = sub.add_parser("watch", help="follow an asset until ready (exit 0) or errored (exit 1)")
    client_options(p)
    p.add_argument("asset_id", metavar="ID")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_watch)
