"""What the origin answers to a GET/HEAD, decided without I/O: status, headers and which bytes.

Both ways into the origin use these planners, so a response is the same
whichever served it: the FastAPI routes (`api/origin.py` under the routers, which
do the I/O that fills the caches and map errors to the API's error body)
and the plain-ASGI fast path (`api/origin_fastpath.py`, which answers from
what is already cached). A planner never raises for a request it cannot
satisfy: a 416 comes back as an `Answer` with status 416 and each caller
decides how to send it (the routes as the API's JSON error; the fast path
leaves it to the routes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from core.origin import policy
from core.origin.conditional import choose_encoding, http_date, plan_response, strong_etag
from core.origin.paths import Kind, Target, segment_content_type
from core.storage import ObjectInfo

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Answer:
    """A response minus its body's bytes: `start`/`length` say which bytes of the object to send."""

    status: int
    headers: Headers
    start: int = 0
    length: int = 0  # bytes of the object in the body: 0 for 304, 416 and HEAD

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """ASGI form: lower-case names, latin-1 values."""
        return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers]


@lru_cache(maxsize=4096)
def _http_date(moment) -> str:
    return http_date(moment)  # email.utils formatting costs ~5 µs; the same few moments repeat


def plan_object(*, size: int, etag: str, last_modified, content_type: str, cache_control: str,
                method: str, request_headers: Mapping[str, str],
                extra: Headers = ()) -> Answer:
    """The answer for one representation of `size` bytes: 200, 206, 304 or 416.

    `extra` headers (`Vary`, `Content-Encoding`) go with every answer but
    the 416, like the validators.
    """
    headers: Headers = [("Cache-Control", cache_control), ("ETag", etag),
                        ("Last-Modified", _http_date(last_modified)), *extra, ("Accept-Ranges", "bytes")]
    plan = plan_response(request_headers, size=size, etag=etag, last_modified=last_modified)
    if plan.status == 304:
        return Answer(304, headers)
    if plan.status == 416:
        return Answer(416, [("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")])
    start, length = 0, size
    if plan.range is not None:
        start, length = plan.range.start, plan.range.length
        headers.append(("Content-Range", plan.range.content_range(size)))
    headers += [("Content-Type", content_type), ("Content-Length", str(length))]
    return Answer(plan.status, headers, start, 0 if method == "HEAD" else length)


def plan_manifest(rendered, *, cache_control: str, method: str,
                  request_headers: Mapping[str, str]) -> tuple[Answer, bytes]:
    """(answer, the encoded manifest it slices) for a `RenderedManifest`, gzip/brotli when asked."""
    body, etag, coding = rendered.encoded(choose_encoding(request_headers.get("accept-encoding")))
    extra: Headers = [("Vary", "Accept-Encoding")]
    if coding:
        extra.append(("Content-Encoding", coding))
    answer = plan_object(size=len(body), etag=etag, last_modified=rendered.last_modified,
                         content_type=rendered.content_type, cache_control=cache_control, method=method,
                         request_headers=request_headers, extra=extra)
    return answer, body


def plan_segment(info: ObjectInfo, *, etag: str, content_type: str, cache_control: str, method: str,
                 request_headers: Mapping[str, str]) -> Answer:
    return plan_object(size=info.size, etag=etag, last_modified=info.mtime, content_type=content_type,
                       cache_control=cache_control, method=method, request_headers=request_headers)


def segment_answer(info: ObjectInfo, target: Target, *, token_ttl: int | None, method: str,
                   request_headers: Mapping[str, str]) -> Answer:
    """`plan_segment` with the segment's strong ETag, content type and cache policy (both paths use it)."""
    return plan_segment(info, etag=strong_etag(info.etag), content_type=segment_content_type(target),
                        cache_control=policy.cache_control(Kind.SEGMENT, complete=True, token_ttl=token_ttl),
                        method=method, request_headers=request_headers)
