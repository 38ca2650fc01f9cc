"""LL-DASH from the LL-HLS parts: the MPD (exact output, schema), the segment being written answered as it is
written, the preload-hint part held until it is published (in-process; the real push is test_ll_dash_push.py)."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest

from core.layout import media_key
from core.live.origin import Progress, part_progress, segment_progress
from core.media.live_model import LIVE_PRESENTATION, Part
from core.media.manifests.live import render_live_mpd, service_latency
from core.media.model import Segment
from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.helpers import app_client
from tests.live.test_ll_hls_manifest import _live

pytestmark = pytest.mark.timeout(60)
CLOCK = "https://origin.example/play/time"

STANDARD_MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" \
availabilityStartTime="2025-12-31T23:59:59.900Z" publishTime="2026-01-01T00:00:05.000Z" minimumUpdatePeriod="PT1S" \
timeShiftBufferDepth="PT60S" suggestedPresentationDelay="PT3S" maxSegmentDuration="PT1S" minBufferTime="PT1S">
  <Period id="p0" start="PT0.1S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" \
maxWidth="640" maxHeight="360" par="16:9" maxFrameRate="30">
      <Representation id="360p" codecs="avc1.64001f" bandwidth="80000" width="640" height="360" frameRate="30" sar="1:1">
        <SegmentTemplate timescale="1000" initialization="360p/init.mp4?token=abc" \
media="360p/$Number%05d$.m4s?token=abc" startNumber="1" presentationTimeOffset="100"{ll}>
          <SegmentTimeline>
            <S t="100" d="1000" r="{r}" />
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
      <Representation id="180p" codecs="avc1.64001f" bandwidth="80000" width="320" height="180" frameRate="30" sar="1:1">
        <SegmentTemplate timescale="1000" initialization="180p/init.mp4?token=abc" \
media="180p/$Number%05d$.m4s?token=abc" startNumber="1" presentationTimeOffset="100"{ll}>
          <SegmentTimeline>
            <S t="100" d="1000" r="{r}" />
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="https://origin.example/play/time" />
</MPD>
"""
LL_TEMPLATE = ' availabilityTimeOffset="0.75" availabilityTimeComplete="false"'
SERVICE = """  <ServiceDescription id="0">
    <Latency min="500" target="1000" max="3000" />
    <PlaybackRate min="0.96" max="1.04" />
  </ServiceDescription>
"""


def test_standard_live_mpd_unchanged():
    standard = dataclasses.replace(_live(), part_target=None, parts={})
    body = render_live_mpd(standard, query="token=abc", time_url=CLOCK)
    assert body == STANDARD_MPD.format(ll="", r=2)  # the output of main before LL-DASH, byte for byte
    validate_mpd(body)


def test_ll_mpd_exact_and_valid():
    body = render_live_mpd(_live(), query="token=abc", time_url=CLOCK)
    expected = STANDARD_MPD.format(ll=LL_TEMPLATE, r=3)  # segment 4 (being written) is announced: r 2 -> 3
    expected = expected.replace('suggestedPresentationDelay="PT3S"', 'suggestedPresentationDelay="PT1S"')
    expected = expected.replace('  <Period id="p0"', SERVICE + '  <Period id="p0"')
    assert body == expected
    validate_mpd(body)  # the vendored 5th-edition schema knows ServiceDescription, Latency and PlaybackRate


def test_ll_mpd_details():
    live = _live()
    live.parts["180p"].append(Part(4, 2, 267, False))  # the muxer rounded a 0.25 s part up to 8 frames
    assert service_latency(live) == (534, 1068, 3000)
    assert 'availabilityTimeOffset="0.733"' in render_live_mpd(live)
    # A last segment of another length: the announced one gets its own S (not folded into the run).
    live = _live()
    for track in live.presentation.tracks:
        track.segments.append(Segment(4, 3100, 960, 10_000))
    body = render_live_mpd(live)
    assert '<S t="100" d="1000" r="2" />\n            <S d="960" r="1" />' in body
    validate_mpd(body)
    assert "availabilityTimeOffset" not in render_live_mpd(_live(ended=True))  # static once ended


def test_progress_planners():
    live = _live()  # segments 1-3 complete, parts 4.0 and 4.1 published
    assert segment_progress(live, "360p", 3) is Progress.READY
    assert segment_progress(live, "360p", 4, 1) is Progress.PART
    assert segment_progress(live, "360p", 4, 2) is Progress.WAIT
    assert segment_progress(live, "360p", 5) is Progress.NEVER  # only the segment being written is waited for
    assert part_progress(live, "360p", 4, 1) is Progress.READY
    assert part_progress(live, "360p", 4, 2) is Progress.WAIT  # the preload hint
    assert part_progress(live, "360p", 4, 4) is Progress.WAIT
    assert part_progress(live, "360p", 4, 5) is Progress.NEVER
    assert part_progress(live, "360p", 3, 4) is Progress.NEVER  # segment 3 is finished with 4 parts
    assert part_progress(live, "360p", 5, 0) is Progress.NEVER
    ended = _live(ended=True)
    assert segment_progress(ended, "360p", 4) is Progress.NEVER and part_progress(ended, "360p", 4, 2) is Progress.NEVER
    standard = dataclasses.replace(live, part_target=None, parts={})
    assert segment_progress(standard, "360p", 4) is Progress.NEVER


# -- through the API (in process: TestClient gathers a streamed body, so this checks the bytes, not the timing) --


def _publish(storage, stream_id: str, live, files: dict[str, bytes]) -> None:
    for relative, data in files.items():  # the objects first, then live.json (the publisher's order)
        storage.put_bytes(media_key(stream_id, relative), data)
    storage.put_bytes(media_key(stream_id, LIVE_PRESENTATION), json.dumps(live.to_dict()).encode(),
                      content_type="application/json")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path_factory.mktemp("ll_dash") / "data")}
    with app_client(env) as client:
        yield client


@pytest.fixture
def ll(api):
    """A fresh LL stream per test: segments 1-3 complete, parts 4.0 and 4.1 published, 4.2 hinted."""
    stream = api.post("/v1/live-streams", json={"latency_mode": "low", "segment_duration": 1.0}).json()
    live = _live()
    parts = {f"360p/00004.{i}.m4s": bytes([i]) * (100 + i) for i in range(2)}
    _publish(api.app.state.ctx.storage, stream["id"], live, parts)
    return api, stream["id"], f"/play/{stream['playback_ids'][0]['id']}/360p", live


def test_segment_being_written_is_the_finished_segment(ll):
    client, stream_id, base, live = ll
    storage = client.app.state.ctx.storage
    segment = bytes([0]) * 100 + bytes([1]) * 101 + bytes([2]) * 102 + bytes([3]) * 103

    def publisher():
        time.sleep(0.3)
        live.parts["360p"].append(Part(4, 2, 250, False))
        _publish(storage, stream_id, live, {"360p/00004.2.m4s": bytes([2]) * 102})
        time.sleep(0.3)  # part 3 and the segment in one go, as the publisher does at a segment's end
        live.parts["360p"].append(Part(4, 3, 250, False))
        for track in live.presentation.tracks:
            track.segments.append(Segment(4, 3100, 1000, len(segment)))
        _publish(storage, stream_id, live, {"360p/00004.3.m4s": bytes([3]) * 103, "360p/00004.m4s": segment})

    thread = threading.Thread(target=publisher)
    thread.start()
    r = client.get(f"{base}/00004.m4s")
    thread.join()
    assert r.status_code == 200 and r.content == segment
    assert "content-length" not in r.headers and r.headers["content-type"] == "video/mp4"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get(f"{base}/00006.m4s").status_code == 404  # further ahead than the segment being written
    assert client.head(f"{base}/00005.m4s").status_code == 404


def test_filtered_mpd_stays_low_latency(ll):
    client, _, base, _ = ll
    mpd = client.get(base.rsplit("/", 1)[0] + "/manifest.mpd", params={"max_height": 200}).text
    assert 'id="360p"' not in mpd and 'id="180p"' in mpd
    assert 'availabilityTimeComplete="false"' in mpd and "<ServiceDescription" in mpd


def test_preload_hint_held_until_published(ll):
    client, stream_id, base, live = ll
    storage = client.app.state.ctx.storage

    def publisher():
        time.sleep(0.5)
        live.parts["360p"].append(Part(4, 2, 250, False))
        _publish(storage, stream_id, live, {"360p/00004.2.m4s": b"part two"})

    thread = threading.Thread(target=publisher)
    thread.start()
    started = time.monotonic()
    r = client.get(f"{base}/00004.2.m4s")
    took = time.monotonic() - started
    thread.join()
    assert r.status_code == 200 and r.content == b"part two" and 0.4 < took < 2.0, took
    assert client.get(f"{base}/00004.9.m4s").status_code == 404  # not the hint: not waited for
    assert client.get(f"{base}/00003.4.m4s").status_code == 404  # segment 3 finished with parts 0-3


def test_preload_hint_times_out_with_no_store(ll):
    client, _, base, _ = ll
    started = time.monotonic()
    r = client.get(f"{base}/00004.2.m4s")
    took = time.monotonic() - started
    assert r.status_code == 503 and r.headers["cache-control"] == "no-store" and 2.9 < took < 4.5, took
