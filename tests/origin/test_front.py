"""`abr api --front nginx`: a real nginx (with its Perl token check) in front of the real API, against the API alone.

Every request is sent to both — the front, and a plain `abr api` (uvicorn) on the same data
directory — and the answers compared: nginx may send a segment itself, but what the client gets
(status, bytes, the headers a player or a CDN reads, error bodies) must be the API's. Which side
answered shows in the `ETag`: nginx's is `"mtime-size"` (two parts), the API's
`"size-mtime_ns-inode"` (three).

nginx sends an id's files once the API has linked the id for the current 5-second window
(core/origin/front_index.py): the first request of an id in each window is the API's. So a test
that wants nginx's answer asks through `from_nginx`, which sends the request again (at most twice)
while the API answered it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest

from cli.migrate import upgrade
from core.db.engine import make_engine
from core.layout import media_key
from core.services.playback import SigningKeys, sign_token
from core.storage import open_storage
from tests.conftest import REPO_ROOT, free_port
from tests.helpers import settings_from
from tests.origin.fabricate import fabricate
from tests.origin.live import find_perl_module, stop, uvicorn_origin, wait_for_port

SIGNING_KEY = "front-test-signing-key-0123456789abcdef"
PREVIOUS_KEY = "front-test-previous-key-0123456789abcdef"
SEGMENT = "h264-720p/00002.m4s"


def by_nginx(response: httpx.Response) -> bool:
    return response.headers.get("etag", "").count("-") == 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(front URL, API URL, fabricated asset, signing keys, front process, data dir)."""
    find_perl_module()
    tmp = tmp_path_factory.mktemp("front")
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp / "data"), "ABR_SIGNING_KEY": SIGNING_KEY,
           "ABR_SIGNING_KEYS_PREVIOUS": f"old:{PREVIOUS_KEY}", "ABR_LOG_LEVEL": "WARNING"}
    settings = settings_from(env)
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    storage = open_storage(settings.resolved_storage_url)
    made = fabricate(engine, storage, segment_size=5000)
    engine.dispose()
    keys = SigningKeys.from_settings(settings.signing_key, settings.signing_keys_previous, settings.signing_key_id)
    front, url = start_front(tmp, env)
    try:
        with uvicorn_origin(env) as (api, _):
            yield url, api, made, keys, front, tmp / "data"
    finally:
        stop(front)
        print((tmp / "front.log").read_text(errors="replace")[-4000:])


def start_front(tmp: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`abr api --front nginx` (uvicorn behind it) on a free port, logging to tmp/front.log: (process, URL)
    once the API behind nginx answers a proxied request (its start-up done)."""
    port = free_port()
    log = open(tmp / "front.log", "ab")  # noqa: SIM115 - the front writes it while it runs
    front = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--front", "nginx", "--server", "uvicorn",
                              "--host", "127.0.0.1", "--port", str(port)],
                             env={**os.environ, **env}, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=60, proc=front)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    except BaseException:
        stop(front)
        raise
    return front, url


def both(stack, path: str, method: str = "GET", **kwargs) -> tuple[httpx.Response, httpx.Response]:
    front, api = stack[0], stack[1]
    return (httpx.request(method, front + path, timeout=10, **kwargs),
            httpx.request(method, api + path, timeout=10, **kwargs))


def from_nginx(stack, path: str, method: str = "GET", **kwargs) -> httpx.Response:
    """The front's answer once the id is linked: the first try may admit it (the API answers), a second
    may fall on a new window; a third that is still the API's is a failure for the caller to see."""
    for _ in range(3):
        answer = httpx.request(method, stack[0] + path, timeout=10, **kwargs)
        if by_nginx(answer):
            break
    return answer


def both_from_nginx(stack, path: str, method: str = "GET", **kwargs) -> tuple[httpx.Response, httpx.Response]:
    return from_nginx(stack, path, method, **kwargs), httpx.request(method, stack[1] + path, timeout=10, **kwargs)


SAME_HEADERS = ("cache-control", "content-type", "content-length", "content-range", "accept-ranges",
                "access-control-allow-origin", "access-control-expose-headers", "last-modified")


def assert_same(ours: httpx.Response, theirs: httpx.Response, *, skip: tuple[str, ...] = ()) -> None:
    assert ours.status_code == theirs.status_code, (ours.text, theirs.text)
    assert ours.content == theirs.content
    for name in SAME_HEADERS:
        if name not in skip:
            assert ours.headers.get(name) == theirs.headers.get(name), name


def token(stack, playback_id: str, *, ttl: int = 600, kid: str | None = None, **claims) -> str:
    keys: SigningKeys = stack[3]
    if kid is None and not claims:
        return sign_token(playback_id, keys=keys, expires_at=int(time.time()) + ttl)
    kid = kid or keys.current_kid
    return jwt.encode({"exp": int(time.time()) + ttl, "sub": playback_id, **claims}, keys.secrets[kid],
                      algorithm="HS256", headers={"kid": kid})


def test_public_segments_are_sent_by_nginx_with_the_apis_answer(stack):
    made = stack[2]
    for path in (SEGMENT, "h264-720p/init.mp4", "audio/00001.m4s"):
        ours, theirs = both_from_nginx(stack, f"/play/{made.public_id}/{path}")
        assert_same(ours, theirs)
        assert by_nginx(ours) and not by_nginx(theirs)
        assert ours.content == made.files[path]
    assert ours.headers["content-type"] == "audio/mp4"
    head, api_head = both_from_nginx(stack, f"/play/{made.public_id}/{SEGMENT}", "HEAD")
    assert_same(head, api_head)
    assert by_nginx(head) and head.content == b""


def test_ranges_are_answered_as_the_api_answers_them(stack):
    made = stack[2]
    url = f"/play/{made.public_id}/{SEGMENT}"
    for header in ("bytes=10-19", "bytes=-100", "bytes=4990-", "bytes=4999-99999"):
        ours, theirs = both_from_nginx(stack, url, headers={"Range": header})
        assert_same(ours, theirs)
        assert ours.status_code == 206 and by_nginx(ours), header
    # Past the end (416 with the API's JSON body), several ranges and junk (the whole file, 200),
    # a reversed range (ignored, 200): nginx would answer these otherwise, so the API does.
    for header in ("bytes=5000-", "bytes=-0", "bytes=0-1,5-9", "items=0-1", "bytes=9-2"):
        ours, theirs = both(stack, url, headers={"Range": header})
        assert_same(ours, theirs)
        assert not by_nginx(ours), header
    assert both(stack, url, headers={"Range": "bytes=5000-"})[0].json()["error"]["code"] == "range_not_satisfiable"


def test_conditional_requests_get_304_from_nginx(stack):
    made = stack[2]
    url = f"{stack[0]}/play/{made.public_id}/{SEGMENT}"
    first = from_nginx(stack, f"/play/{made.public_id}/{SEGMENT}")
    assert by_nginx(first)
    again = httpx.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == "public, max-age=31536000, immutable"
    since = httpx.get(url, headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304


def test_signed_segments_need_a_token_that_opens_this_id(stack):
    made = stack[2]
    url = f"/play/{made.signed_id}/{SEGMENT}"
    good = token(stack, made.signed_id, ttl=300)
    ours, theirs = both_from_nginx(stack, f"{url}?token={good}")
    assert_same(ours, theirs, skip=("cache-control",))
    assert by_nginx(ours)
    # max-age is the token's remaining seconds, counted when each side answered.
    ours_age = int(ours.headers["cache-control"].split("max-age=")[1].split(",")[0])
    theirs_age = int(theirs.headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 295 <= ours_age <= 300 and abs(ours_age - theirs_age) <= 1
    assert ours.headers["cache-control"].endswith(", immutable")

    stranger = jwt.encode({"exp": int(time.time()) + 60, "sub": made.signed_id}, "x" * 40, algorithm="HS256",
                          headers={"kid": "nope"})
    refused = {
        "no token": url,
        "another id's token": f"{url}?token={token(stack, made.public_id)}",
        "expired": f"{url}?token={token(stack, made.signed_id, ttl=-5)}",
        "junk": f"{url}?token=a.b.c",
        "bad signature": f"{url}?token={good[:-4]}AAAA",
        "unknown key id": f"{url}?token={stranger}",
    }
    for case, path in refused.items():
        ours, theirs = both(stack, path)
        assert_same(ours, theirs)
        assert ours.status_code == 403 and not by_nginx(ours), case
        assert ours.headers["cache-control"] == "no-store"


def test_tokens_the_front_does_not_know_go_to_the_api_which_decides(stack):
    made = stack[2]
    url = f"/play/{made.signed_id}/{SEGMENT}"
    # A previous signing key still opens the id: checked in nginx too.
    previous = token(stack, made.signed_id, kid="old")
    ours, theirs = both_from_nginx(stack, f"{url}?token={previous}")
    assert ours.status_code == theirs.status_code == 200 and by_nginx(ours)
    # A claim AbrFront.pm was not written for: the API decides (and here accepts).
    extra = token(stack, made.signed_id, iat=int(time.time()) - 10)
    ours, theirs = both(stack, f"{url}?token={extra}")
    assert ours.status_code == theirs.status_code == 200
    assert ours.content == made.files[SEGMENT] and not by_nginx(ours)


def _hs256(header: bytes, claims: bytes, secret: str) -> str:
    """A JWT of exactly these header and claims texts (PyJWT writes its own), signed with `secret`."""
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    signing_input = f"{b64(header)}.{b64(claims)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_token_forms_the_front_reads_as_the_api_does(stack):
    """AbrFront.pm compares sign_token's own header as text and decodes any other: both ways, as the API."""
    made = stack[2]
    keys: SigningKeys = stack[3]
    url = f"/play/{made.signed_id}/{SEGMENT}"
    secret = keys.secrets[keys.current_kid].decode()
    exp = int(time.time()) + 300
    claims = json.dumps({"exp": exp, "sub": made.signed_id}).encode()
    # Another writer's header (spaces, another order, no typ): decoded field by field in nginx, and sent.
    spaced = _hs256(json.dumps({"kid": keys.current_kid, "alg": "HS256"}).encode(), claims, secret)
    ours, theirs = both_from_nginx(stack, f"{url}?token={spaced}")
    assert ours.status_code == theirs.status_code == 200 and by_nginx(ours)
    # sign_token's header with the previous key's kid opens it with that key only.
    previous = _hs256(json.dumps({"alg": "HS256", "kid": "old", "typ": "JWT"}, separators=(",", ":")).encode(),
                      claims, PREVIOUS_KEY)
    ours, theirs = both_from_nginx(stack, f"{url}?token={previous}")
    assert ours.status_code == theirs.status_code == 200 and by_nginx(ours)
    wrong_key = _hs256(json.dumps({"alg": "HS256", "kid": "old", "typ": "JWT"}, separators=(",", ":")).encode(),
                       claims, secret)
    head, _, sig = spaced.rpartition(".")
    flipped = f"{head}.{'B' if sig[0] != 'B' else 'C'}{sig[1:]}"
    refused = {
        "the current key's signature under the previous kid": wrong_key,
        # (Its first character: the last one of 43 carries two bits no decoder reads.)
        "the signature's first character changed": flipped,
        "alg none in the header": _hs256(b'{"alg":"none","kid":"%s"}' % keys.current_kid.encode(), claims, secret),
        "claims that are not an object": _hs256(b'{"alg":"HS256","kid":"%s","typ":"JWT"}' % keys.current_kid.encode(),
                                                b"[1, 2]", secret),
    }
    for case, bad in refused.items():
        ours, theirs = both(stack, f"{url}?token={bad}")
        assert ours.status_code == theirs.status_code == 403, case
        assert not by_nginx(ours), case
    # Signed claims written with characters base64url has not (padding, a "~"): decoders skip or refuse
    # them, and Perl and Python not alike, so the front refuses what does not read back to the same
    # characters and the API decides (it refuses the padded one: without that check njs sent it).
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": keys.current_kid, "typ": "JWT"},
                                                 separators=(",", ":")).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(claims).decode().rstrip("=")
    for odd in (body + "==", body[:8] + "~" + body[8:]):
        signing_input = f"{header}.{odd}"
        signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), signing_input.encode(),
                                                      hashlib.sha256).digest()).rstrip(b"=").decode()
        ours, theirs = both(stack, f"{url}?token={signing_input}.{signature}")
        assert ours.status_code == theirs.status_code, odd
        assert not by_nginx(ours), odd
    # An `exp` Python reads as a float or a string (verify_token refuses both; Perl's JSON reads 1e10 as
    # an integer), and two tokens in one query (the API reads the last, nginx's $arg_token the first):
    # never sent by nginx, answered by the API as it decides.
    header_text = json.dumps({"alg": "HS256", "kid": keys.current_kid, "typ": "JWT"}, separators=(",", ":")).encode()
    for written in (b"%de0" % exp, b"%d.0" % exp, b'"%d"' % exp):
        odd_exp = _hs256(header_text, b'{"exp":%s,"sub":"%s"}' % (written, made.signed_id.encode()), secret)
        ours, theirs = both(stack, f"{url}?token={odd_exp}")
        assert ours.status_code == theirs.status_code == 403, written
        assert not by_nginx(ours), written
    good = token(stack, made.signed_id)
    for query in (f"token={good}&token=a.b.c", f"token=a.b.c&token={good}"):
        ours, theirs = both(stack, f"{url}?{query}")
        assert ours.status_code == theirs.status_code, query
        assert not by_nginx(ours), query


def test_a_token_nginx_remembers_opens_its_own_id_until_it_expires(stack):
    """AbrFront.pm remembers a token once checked (per worker): later requests skip the HMAC, but the
    token still opens only its own id, and only until its `exp`."""
    made, data = stack[2], stack[5]
    settings = settings_from({"ABR_ENV": "test", "ABR_DATA_DIR": str(data)})
    engine = make_engine(settings.resolved_database_url)
    other = fabricate(engine, open_storage(settings.resolved_storage_url), segment_size=5000)
    engine.dispose()
    mine = token(stack, made.signed_id)
    assert by_nginx(from_nginx(stack, f"/play/{made.signed_id}/{SEGMENT}?token={mine}"))  # checked, remembered
    assert by_nginx(from_nginx(stack, f"/play/{other.signed_id}/{SEGMENT}?token={token(stack, other.signed_id)}"))
    ours, theirs = both(stack, f"/play/{other.signed_id}/{SEGMENT}?token={mine}")  # linked now: nginx checks it
    assert ours.status_code == theirs.status_code == 403 and not by_nginx(ours)
    # Remembered, and expiring: sent by nginx while it opens the id, then the API's 403.
    exp = int(time.time()) + 3
    short = sign_token(made.signed_id, keys=stack[3], expires_at=exp)
    url = f"/play/{made.signed_id}/{SEGMENT}?token={short}"
    first = from_nginx(stack, url)
    assert first.status_code == 200 and by_nginx(first)
    assert 0 < int(first.headers["cache-control"].split("max-age=")[1].split(",")[0]) <= 3
    deadline = time.monotonic() + 10
    while (answer := httpx.get(stack[0] + url, timeout=10)).status_code == 200:
        # (read after the answer: the server's clock said "before exp" a moment earlier)
        assert by_nginx(answer) and time.time() < exp + 0.5, "nginx sent a segment for an expired token"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert answer.status_code == 403 and not by_nginx(answer)


def test_errors_are_the_apis_own_answers(stack):
    made = stack[2]
    for path in (f"/play/{made.public_id}/h264-720p/00099.m4s",  # no such segment: nginx gives the API's 404
                 "/play/nosuchid0000/h264-720p/00001.m4s",  # unknown id: likewise
                 "/play/nosuchid0000/master.m3u8",
                 f"/play/{made.public_id}/h264-999p/00001.m4s",
                 f"/play/{made.public_id}/presentation.json",
                 f"/play/{made.public_id}/../../sources/{made.asset_id}/original"):
        ours, theirs = both(stack, path)
        assert ours.status_code == theirs.status_code and ours.status_code in (400, 404), path
        assert ours.content == theirs.content, path
        assert ours.headers["content-type"] == "application/json"
        assert ours.headers["cache-control"] == theirs.headers["cache-control"] == "no-store"
        assert ours.headers.get("access-control-allow-origin") == theirs.headers.get("access-control-allow-origin")
    ours, theirs = both(stack, f"/play/{made.public_id}/{SEGMENT}", "POST")
    assert ours.status_code == theirs.status_code
    assert ours.content == theirs.content


def test_manifests_are_the_apis_and_kept_a_second(stack):
    made = stack[2]
    tok = token(stack, made.signed_id)
    for path in (f"/play/{made.public_id}/master.m3u8", f"/play/{made.public_id}/manifest.mpd",
                 f"/play/{made.public_id}/h264-720p/index.m3u8", f"/play/{made.signed_id}/master.m3u8?token={tok}",
                 f"/play/{made.public_id}/master.m3u8?max_height=360"):
        # A signed one asked with just its token comes from nginx's one copy for every token, the
        # token put in per request: sent chunked (no Content-Length), the rest as the API's.
        shared = "?token=" in path
        for _ in range(2):  # the second from nginx's copy
            ours, theirs = both(stack, path)
            assert_same(ours, theirs, skip=("cache-control", "content-length") if shared else ("cache-control",))
            assert ours.headers["cache-control"].split(", max-age=")[0] \
                == theirs.headers["cache-control"].split(", max-age=")[0]
        zipped, api_zipped = both(stack, path, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers.get("content-encoding") == api_zipped.headers.get("content-encoding") == "gzip"
        assert zipped.content == theirs.content  # httpx decodes: the same manifest, not the identity copy
        raw = httpx.get(stack[0] + path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and raw.content == theirs.content
    assert f"token={tok}" in both(stack, f"/play/{made.signed_id}/master.m3u8?token={tok}")[0].text


def test_a_signed_manifest_is_one_copy_for_every_token_with_each_requests_own_put_in(stack):
    made = stack[2]
    tokens = [token(stack, made.signed_id, ttl=600 + i) for i in range(3)]
    for name in ("manifest.mpd", "h264-720p/index.m3u8"):
        path = f"/play/{made.signed_id}/{name}"
        etags = set()
        for tok in tokens:
            ours, theirs = both(stack, f"{path}?token={tok}")
            assert ours.status_code == theirs.status_code == 200
            assert ours.content == theirs.content  # this token's manifest, byte for byte (decoded)
            assert f"token={tok}".encode() in ours.content and b"abrtoken" not in ours.content
            assert all(other.encode() not in ours.content for other in tokens if other != tok)
            assert "x-abr-token-placeholder" not in ours.headers
            etags.add(ours.headers["etag"])
        # One copy: the same (weak) validator for every token, where the API's own differ per token.
        assert len(etags) == 1 and etags.pop().startswith("W/")
        zipped = httpx.get(f"{stack[0]}{path}?token={tokens[0]}", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and f"token={tokens[0]}" in zipped.text
    # A token the API refuses never gets the copy: another id's, an expired one.
    mpd = f"/play/{made.signed_id}/manifest.mpd"
    for bad in (token(stack, made.public_id), token(stack, made.signed_id, ttl=-5)):
        ours, theirs = both(stack, f"{mpd}?token={bad}")
        assert ours.status_code == theirs.status_code == 403
        assert ours.json() == theirs.json()
    # Anything but a lone plain token is kept per URL as before (here: the token percent-encoded, a filter).
    for query in (f"token={tokens[1].replace('.', '%2E')}", f"token={tokens[1]}&max_height=360"):
        path = f"/play/{made.signed_id}/master.m3u8?{query}"
        ours, theirs = both(stack, path)
        assert_same(ours, theirs, skip=("cache-control",))  # Content-Length too: not the shared copy
    # nginx keeps a signed manifest for seconds, but its max-age counts down the token per request, as the API's.
    short_lived = token(stack, made.signed_id, ttl=30)
    signed = f"/play/{made.signed_id}/manifest.mpd?token={short_lived}"
    first = httpx.get(stack[0] + signed)
    time.sleep(2.1)
    ours, theirs = both(stack, signed)
    ages = [int(a.headers["cache-control"].removeprefix("public, max-age=")) for a in (first, ours, theirs)]
    assert ages[1] <= ages[0] - 2 and abs(ages[1] - ages[2]) <= 1, ages
    # A token that no longer opens the id never gets the copy nginx kept of its manifest.
    short = token(stack, made.signed_id, ttl=2)
    assert httpx.get(f"{stack[0]}/play/{made.signed_id}/master.m3u8?token={short}").status_code == 200
    time.sleep(2.2)
    late = httpx.get(f"{stack[0]}/play/{made.signed_id}/master.m3u8?token={short}")
    assert late.status_code == 403


def test_preflight_and_request_ids_stay_the_apis(stack):
    made = stack[2]
    ours, theirs = both(stack, f"/play/{made.public_id}/{SEGMENT}", "OPTIONS",
                        headers={"Origin": "https://site.example", "Access-Control-Request-Method": "GET",
                                 "Access-Control-Request-Headers": "range"})
    assert ours.status_code == theirs.status_code == 204
    for name in ("access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
                 "access-control-max-age"):
        assert ours.headers.get(name) == theirs.headers.get(name)
    # One id for a request on both sides: the client's, on a segment nginx sends and on an answer the API gives.
    sent = from_nginx(stack, f"/play/{made.public_id}/{SEGMENT}", headers={"X-Request-Id": "trace-me-42"})
    assert by_nginx(sent) and sent.headers["x-request-id"] == "trace-me-42"
    for path in (f"/play/{made.public_id}/h264-720p/00099.m4s", "/healthz",  # nginx's 404, the API's answer
                 f"/play/{made.public_id}/manifest.mpd", f"/play/{made.public_id}/manifest.mpd"):  # and its copy
        answer = httpx.get(f"{stack[0]}{path}", headers={"X-Request-Id": f"trace {path}"})
        assert answer.headers.get_list("x-request-id") == [f"trace {path}"], path
    assert len(from_nginx(stack, f"/play/{made.public_id}/{SEGMENT}").headers["x-request-id"]) == 32
    # The gate is not reachable through the front (and its X-Accel-Redirect is heeded from @admit only).
    from core.origin.front_index import bucket

    gate = httpx.get(f"{stack[0]}/_abr/front/admit/{bucket(time.time())}/p/{made.public_id}/{SEGMENT}")
    assert gate.status_code == 404 and gate.json()["error"]["code"] == "not_found"
    assert "x-accel-redirect" not in gate.headers and gate.content != made.files[SEGMENT]


def test_links_are_refused_and_removed_files_are_gone(stack):
    made, data = stack[2], stack[5]
    outside = data.parent / "outside.m4s"
    outside.write_bytes(b"not media: must never be served")
    rendition = data / "storage" / media_key(made.asset_id, "h264-720p")
    (rendition / "00050.m4s").symlink_to(outside)
    (data / "storage" / media_key(made.asset_id, "h264-link")).symlink_to(rendition)
    for path in ("h264-720p/00050.m4s", "h264-link/00001.m4s"):
        ours, theirs = both(stack, f"/play/{made.public_id}/{path}")
        assert ours.status_code == theirs.status_code == 404, path
        assert b"must never" not in ours.content
    # A file removed while nginx holds it open (the asset deleted, say) is gone within a second
    # (open_file_cache_valid), as long as the API's own memo of a checked path.
    url = f"{stack[0]}/play/{made.public_id}/h264-360p/00003.m4s"
    assert httpx.get(url).status_code == 200
    (data / "storage" / media_key(made.asset_id, "h264-360p/00003.m4s")).unlink()
    removed = time.monotonic()
    while (gone := httpx.get(url)).status_code == 200 and time.monotonic() - removed < 5:
        time.sleep(0.05)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert time.monotonic() - removed < 2.5


def test_a_removed_playback_id_stops_opening_files_within_the_apis_memory_of_ids(stack):
    from sqlmodel import Session

    from core.db.models import PlaybackId

    settings = settings_from({"ABR_ENV": "test", "ABR_DATA_DIR": str(stack[5])})
    engine = make_engine(settings.resolved_database_url)
    made = fabricate(engine, open_storage(settings.resolved_storage_url), segment_size=5000)
    path = f"/play/{made.public_id}/{SEGMENT}"
    first = httpx.get(stack[0] + path, timeout=10)  # a never-linked id: the gate links it, nginx sends
    assert first.status_code == 200 and by_nginx(first) and first.content == made.files[SEGMENT]
    with Session(engine) as session:
        session.delete(session.get(PlaybackId, made.public_id))
        session.commit()
    engine.dispose()
    removed = time.monotonic()
    # nginx looks for the id's link in the current 5 s window only, and the API links an id it still
    # remembers (5 s, then refreshed from the database): gone within two windows and the refresh.
    while (answer := httpx.get(stack[0] + path, timeout=10)).status_code == 200 and time.monotonic() - removed < 20:
        time.sleep(0.2)
    assert answer.status_code == 404 and answer.json()["error"]["message"] == f"no playback id {made.public_id}"
    assert time.monotonic() - removed < 12.5


def front_index(stack) -> Path:
    """The id index of the front's nginx (`-p` prefix)."""
    for pid in subprocess.run(["pgrep", "-P", str(stack[4].pid)], capture_output=True, text=True).stdout.split():
        words = Path(f"/proc/{pid}/cmdline").read_text(errors="replace").replace("\0", " ").split()
        if "-p" in words and "nginx" in " ".join(words):
            return Path(words[words.index("-p") + 1]) / "ids"
    raise AssertionError("no nginx below abr api --front")


def test_an_id_being_played_is_linked_for_the_next_window_before_it_begins(stack):
    from core.origin.front_index import bucket, window_end

    made = stack[2]
    assert by_nginx(from_nginx(stack, f"/play/{made.public_id}/{SEGMENT}"))
    end = window_end(time.time())
    time.sleep(max(0.0, end - time.time()) + 0.2)  # no request meanwhile: the API carried it on
    assert (front_index(stack) / bucket(time.time()) / "p" / made.public_id).is_symlink()
    assert by_nginx(httpx.get(f"{stack[0]}/play/{made.public_id}/{SEGMENT}", timeout=10))


def test_stopping_abr_api_stops_its_nginx(stack):
    front: subprocess.Popen = stack[4]
    children = subprocess.run(["pgrep", "-P", str(front.pid)], capture_output=True, text=True).stdout.split()
    nginx = [int(p) for p in children if "nginx" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
    assert nginx, "abr api --front runs nginx as its child"
    prefix = front_index(stack).parent  # nginx's own files: in /dev/shm (memory) where there is room
    assert prefix.is_dir()
    front.send_signal(signal.SIGTERM)  # this front's API is uvicorn's, which raises SIGTERM again when it stops
    front.wait(20)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in nginx):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{p}").exists() for p in nginx)
    assert not prefix.exists()


def test_a_missing_perl_module_is_said_plainly(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cli.main", "api", "--front", "nginx", "--port", str(free_port())],
                          env={**os.environ, "ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path),
                               "ABR_PERL_MODULE": str(tmp_path / "nope.so")},
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "sudo apt-get install nginx libnginx-mod-http-perl" in done.stderr
