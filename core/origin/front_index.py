"""The nginx front's id index: which asset a playback id opens, as links nginx follows.

nginx must know, for a `/play/{id}/…` segment, which asset's directory to
send it from and whether the id needs a token. Asking the API per request
(an `auth_request`, even cached) cost every segment a subrequest and a
cache-file read: on bench/origin.py's realistic list, nginx's user time per
12,000 requests went from 0.06 s alone to 0.5 s in the front, and the front
stayed at 0.56× nginx. Here the API answers once per id and *time bucket* by
making a symbolic link, and nginx finds it with the same open-file lookup it
does for the segment itself — no subrequest, no script for a public id:

    {index}/{bucket}/p/{playback_id} -> {storage}/media/{asset_id}   public
    {index}/{bucket}/s/{playback_id} -> {storage}/media/{asset_id}   signed (AbrFront.pm checks the token)

`bucket` is the current 5-second window of wall time, named from nginx's
`$msec` by a map (`BUCKET_MAP`): a link is only looked for during its own
window, so a verdict is never older than `BUCKET_SECONDS` plus the API's own
memory of ids (`OriginService`, 5 s; a stale entry links nothing) — and
nothing has to remove a revoked id's link for it to stop working.

The API links a VOD id on local storage (not live) whenever it resolves one
(any `/play` request it answers), and nginx asks it on a segment's miss: the
gate (`api/front_gate.py`, `ADMIT_PATH`) links the id for the window nginx
looked in and answers `X-Accel-Redirect` to the same URL, which nginx then
sends itself — so even the first segment of an id costs Python only a lookup
and a `symlink`, not the answer. Before each window ends, every API process
looks the ids it was asked about in the last `CARRY_SECONDS` up again (one
query) and links them for the next window (`carry`): an id being played does
not miss at the turn of a window, and a revoked one is not carried. Windows
other than the previous, current and next are removed when a new one is made.

Measured on bench/origin.py's realistic list (2.5 GB, 60 assets, half signed,
500 connections; README, Benchmarks): the front went from 0.56× to 0.64×
nginx's throughput on the 12,000-request list and from 0.63× to 0.71× on
the 60,000 one, against the `auth_request` per segment this replaced
(2026-12-05; on the next day's slower host 0.56× and 0.62×); the API answers
~5 % of the longer list's requests (manifests, unknown ids, the first sight
of an id).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

BUCKET_SECONDS = 5
CARRY_SECONDS = 60  # an id no request asked the API about for this long is no longer carried on
CARRY_LEAD = 1.0  # s before a window ends, its ids are looked up again and linked for the next one
ADMIT_PATH = "/_abr/front/admit"  # + /{window}/{p|s}/{playback_id}/{segment}: nginx's question on a miss
PUBLIC, SIGNED = "p", "s"
# nginx names the window from `$msec` ("1733435145.123"): all but the last digit of the seconds,
# then "a" for x0–x4 and "b" for x5–x9 — `bucket()` below, which tests/origin/test_front_conf.py
# holds equal to this map.
BUCKET_MAP = (
    "map $msec $abr_bucket {",
    '    "~^([0-9]+)[0-4][.]" $1a;',
    '    "~^([0-9]+)[5-9][.]" $1b;',
    "}",
)


WINDOW = re.compile(r"^[0-9]{1,12}[ab]$")  # a window's name, as nginx sends it to the gate


def bucket(now: float) -> str:
    """The window `now` (s since the epoch) falls in, named as nginx names it."""
    seconds = int(now)
    return f"{seconds // 10}{'a' if seconds % 10 < BUCKET_SECONDS else 'b'}"


class FrontIndex:
    """Links playback ids to their assets' directories, window by window (one per API process)."""

    def __init__(self, root: Path, media_root: Path, clock=time.time) -> None:
        self.root = root
        self.media_root = media_root  # LocalStorage's `media/`: an asset's files are below media/{asset_id}/
        self.clock = clock
        self._made: dict[str, set[str]] = {}  # window -> ids this process linked there
        self.seen: dict[str, float] = {}  # id -> when a request for it last reached the API (carried until CARRY_SECONDS)
        self.carrier = None  # the task carrying ids on to the next window (api/front_gate.py)

    def admit(self, playback_id: str, asset_id: str, signed: bool,
              window: str | None = None) -> tuple[Path, bool] | None:
        """Link the id for `window` (default: the current one), once per window and process.

        `window` may only be the current or the previous one (nginx asks for the window its
        request began in). (the link, whether this call made it), or None where it could not be
        made (never raises).
        """
        now = self.clock()
        if window is None:
            window = bucket(now)
        elif window not in (bucket(now), bucket(now - BUCKET_SECONDS)):
            return None
        self.seen[playback_id] = now
        return self._link(playback_id, asset_id, signed, window)

    def prewarm(self, targets: dict[str, tuple[str, bool]]) -> int:
        """Link ids for the current window at start-up ({id: (asset, signed)}) and carry them on like
        ids just asked about; how many were linked.

        A process that starts (or restarts) with nothing linked would send every segment's first
        request to the gate at once: with 500 connections opening together, bench/origin.py's first
        wave was ~440 gate calls for 120 ids. nginx alone starts with its whole id map in its
        config; the front starts with the newest ids (`ABR_FRONT_PREWARM`) linked the same way.
        """
        now = self.clock()
        for playback_id in targets:
            self.seen[playback_id] = now
        return self.carry(targets, bucket(now))

    def to_carry(self) -> list[str]:
        """The ids asked of the API within `CARRY_SECONDS`: to be looked up again and linked on."""
        horizon = self.clock() - CARRY_SECONDS
        for playback_id in [p for p, when in self.seen.items() if when < horizon]:
            del self.seen[playback_id]
        return list(self.seen)

    def carry(self, targets: dict[str, tuple[str, bool]], window: str) -> int:
        """Link ids just looked up again ({id: (asset, signed)}) for `window` (the next one); how many."""
        return sum(self._link(pid, asset, signed, window) is not None for pid, (asset, signed) in targets.items())

    def _link(self, playback_id: str, asset_id: str, signed: bool, window: str) -> tuple[Path, bool] | None:
        link = self.root / window / (SIGNED if signed else PUBLIC) / playback_id
        made = self._made.get(window)
        if made is None:
            for old in [w for w in self._made if w not in self._kept()]:
                del self._made[old]
            made = self._made[window] = set()
        elif playback_id in made:
            return link, False
        try:
            try:
                os.symlink(self.media_root / asset_id, link)
            except FileNotFoundError:  # the window's first link (or another process made it meanwhile)
                link.parent.mkdir(parents=True, exist_ok=True)
                self._sweep()
                os.symlink(self.media_root / asset_id, link)
        except FileExistsError:
            made.add(playback_id)  # another API process linked it: the same target
            return link, False
        except OSError:
            return None  # the API still answers every request nginx does not settle
        made.add(playback_id)
        return link, True

    def _kept(self) -> tuple[str, str, str]:
        """The previous window (a request begun there may still look), the current one and the next
        (carried ids are linked there before it begins)."""
        now = self.clock()
        return bucket(now - BUCKET_SECONDS), bucket(now), bucket(now + BUCKET_SECONDS)

    def _sweep(self) -> None:
        """Remove every window but the kept ones."""
        kept = self._kept()
        for old in list(self.root.iterdir()):
            if old.name not in kept:
                shutil.rmtree(old, ignore_errors=True)


def window_end(now: float) -> float:
    """When the window `now` falls in ends."""
    return (int(now) // BUCKET_SECONDS + 1) * BUCKET_SECONDS
