"""`abr token PLAYBACK_ID [--expires-in S]`: a playback token for a signed playback id, made by the API.

A client command like `abr upload`: it asks the running API (`--url`/`ABR_URL`,
`--key`/`ABR_API_KEY`), so it needs neither the server's data directory nor
its signing key, and the URL it prints is the one the API is reached at.
"""

from __future__ import annotations

import sys

from cli.assets_cmd import ApiClient, client_command, client_options


@client_command
def cmd_token(args) -> int:
    api = ApiClient.from_args(args)
    made = api.request("POST", "/v1/playback-tokens", expect=201,
                       json={"playback_id": args.playback_id, "expires_in": args.expires_in})
    print(made["token"])
    print(f"expires {made['expires_at'].replace('+00:00', 'Z')}; "
          f"{api.base}/play/{args.playback_id}/master.m3u8?token={made['token']}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("token", help="print a playback token for a signed playback id (asks the API)")
    client_options(p)
    p.add_argument("playback_id")
    p.add_argument("--expires-in", type=int, default=3600, help="seconds (default 3600)")
    p.set_defaults(func=cmd_token)
