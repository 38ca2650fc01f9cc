"""`abr assets ls` and `abr watch ID`: client commands over the HTTP API (no server code imported).

Exit codes: 0 ok, 1 the asset/upload errored, 2 usage, 3 authentication or
permission, 4 not found, 5 the API could not be reached or failed.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import httpx

EXIT_FAILED, EXIT_USAGE, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_UNAVAILABLE = 1, 2, 3, 4, 5


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
        base = getattr(args, "url", None) or os.environ.get("ABR_API_URL") or "http://127.0.0.1:8000"
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
        raise CliError(f"{method} {path}: HTTP {r.status_code}: {message}", code)


def client_command(fn):
    """Turn CliError and connection failures into a message on stderr and an exit code."""
    @functools.wraps(fn)
    def run(args) -> int:
        try:
            return fn(args)
        except CliError as exc:
            print(f"abr: {exc}", file=sys.stderr)
            return exc.code
        except httpx.HTTPError as exc:
            print(f"abr: cannot reach the API: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
    return run


@client_command
def cmd_assets_ls(args) -> int:
    api = ApiClient.from_args(args)
    page = api.request("GET", "/v1/assets", params={"limit": args.limit, "offset": args.offset})
    if args.json:
        print(json.dumps(page, indent=1))
        return 0
    print(f"{'ID':24} {'STATUS':10} {'PROGRESS':>8} {'DURATION':>9}  CREATED")
    for a in page["data"]:
        duration = f"{a['duration']:.1f}s" if a.get("duration") is not None else "-"
        print(f"{a['id']:24} {a['status']:10} {a['progress']:7.1f}% {duration:>9}  {a['created_at']}")
    return 0


def watch_asset(api: ApiClient, asset_id: str, *, quiet: bool = False) -> int:
    """Follow the asset's event stream until it is ready (0) or errored (1)."""
    event = None
    with api.http.stream("GET", f"{api.base}/v1/assets/{asset_id}/events",
                         timeout=httpx.Timeout(60.0, connect=10.0, read=120.0)) as r:
        if r.status_code != 200:
            r.read()
            api_error = {401: EXIT_AUTH, 403: EXIT_AUTH, 404: EXIT_NOT_FOUND}.get(r.status_code, EXIT_UNAVAILABLE)
            raise CliError(f"watch {asset_id}: HTTP {r.status_code}", api_error)
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "deleted":
                raise CliError(f"asset {asset_id} was deleted", EXIT_NOT_FOUND)
            elif line.startswith("data:") and event == "asset":
                asset = json.loads(line[5:])
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
    raise CliError(f"the event stream of {asset_id} ended early", EXIT_UNAVAILABLE)


@client_command
def cmd_watch(args) -> int:
    return watch_asset(ApiClient.from_args(args), args.asset_id, quiet=args.quiet)


def _client_options(p) -> None:
    p.add_argument("--url", help="API base URL (default $ABR_API_URL or http://127.0.0.1:8000)")
    p.add_argument("--key", help="API key (default $ABR_API_KEY)")


def add_parsers(sub) -> None:
    assets = sub.add_parser("assets", help="list assets").add_subparsers(dest="assets_command", required=True)
    p = assets.add_parser("ls", help="list assets, newest first")
    _client_options(p)
    p.add_argument("--limit", type=int, default=25)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_assets_ls)

    p = sub.add_parser("watch", help="follow an asset until ready (exit 0) or errored (exit 1)")
    _client_options(p)
    p.add_argument("asset_id", metavar="ID")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_watch)
