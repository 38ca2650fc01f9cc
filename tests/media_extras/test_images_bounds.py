"""Anonymous image requests do bounded work: snapped parameters, a stored-image budget per asset.

What is real here: the app, its routes, the origin's lookups, the planners,
the image gate and local storage. What is not: ffmpeg's picture (a few bytes
are written where it would write the image) and the media (a fabricated
asset), so ten thousand URLs take seconds. The real pictures are checked in
test_images_routes.py.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
from pathlib import Path

import httpx
import pytest

from core.media import image_sizes, images
from core.services import images as image_service
from tests.core.media.manifests.conftest import build_presentation
from tests.helpers import app_client
from tests.origin.fabricate import fabricate

BUDGET = 40


@pytest.fixture
def cheap_ffmpeg(monkeypatch) -> list[list[str]]:
    runs: list[list[str]] = []

    def fake_run(argv, **_kwargs):
        runs.append(argv)
        Path(argv[-1]).write_bytes(b"picture " + str(len(runs)).encode())

    monkeypatch.setattr(image_service, "run_ffmpeg", fake_run)
    return runs


def random_queries(rng: random.Random, count: int) -> set[tuple[str, str]]:
    """`count` distinct (format, query string) pairs of thumbnail requests, many of them out of range in time."""
    found: set[tuple[str, str]] = set()
    while len(found) < count:
        query = f"time={rng.uniform(0, 12):.2f}&width={rng.randint(1, 1920)}"
        if rng.random() < 0.5:
            query += f"&height={rng.randint(1, 1920)}&fit_mode={rng.choice(images.FIT_MODES)}"
        found.add((rng.choice(("jpg", "webp")), query))
    return found


def test_ten_thousand_thumbnail_urls_store_a_bounded_number_of_files(tmp_path, cheap_ffmpeg):
    """The planner and storage path of the route: parse, plan, make (budgeted), for 10,000 distinct URLs."""
    from urllib.parse import parse_qsl

    from core.storage.local import LocalStorage

    storage = LocalStorage(tmp_path / "storage")
    presentation = build_presentation()
    for track in presentation.video_tracks:  # stand-in segment bytes (ffmpeg is not run)
        for relative in [track.init_uri] + [track.segment_uri(seg.number) for seg in track.segments]:
            storage.put_bytes(f"media/as_x/{relative}", b"segment")
    made, refused = 0, 0
    for fmt, query in sorted(random_queries(random.Random(13), 10_000)):
        plan = images.plan_thumbnail(presentation, images.ThumbnailRequest.from_query(dict(parse_qsl(query))), fmt)
        try:
            image_service.make_image(storage, ffmpeg="ffmpeg", work_dir=tmp_path / "work", asset_id="as_x",
                                     plan=plan, max_variants=BUDGET)
            made += 1
        except image_sizes.TooManyImages:
            refused += 1
    stored = list(storage.list("media/as_x/images"))
    assert len(stored) == BUDGET and len(cheap_ffmpeg) == BUDGET
    assert made + refused == 10_000 and made >= BUDGET  # a URL that snaps to a stored image is served


def test_thumbnail_route_refuses_beyond_the_budget_and_keeps_serving(tmp_path, cheap_ffmpeg):
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, max_image_variants=BUDGET) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, ctx.storage)
        urls = sorted(f"/play/{made.public_id}/thumbnail.{fmt}?{query}"
                      for fmt, query in random_queries(random.Random(5), 1000))

        async def get_all() -> dict[str, httpx.Response]:
            # One event loop for all of them: the test client's thread hop per request would cost more.
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as session:
                return {url: await session.get(url) for url in urls}

        answers = asyncio.run(get_all())
        codes = collections.Counter(r.status_code for r in answers.values())
        assert set(codes) == {200, 422}, codes
        refused = [r for r in answers.values() if r.status_code == 422]
        assert all(r.json()["error"]["code"] == "too_many_images" and r.headers["cache-control"] == "no-store"
                   for r in refused)
        assert len(list(ctx.storage.list(f"media/{made.asset_id}/images"))) == BUDGET == len(cheap_ffmpeg)
        # Images already made are still served once the budget is spent, without ffmpeg.
        served = [url for url, r in answers.items() if r.status_code == 200][-20:]
        assert all(client.get(url).status_code == 200 for url in served)
        assert len(cheap_ffmpeg) == BUDGET


def test_urls_snap_to_few_plans():
    """Without the budget, 10,000 distinct URLs of a 10.5 s asset name a few thousand plans at most."""
    p = build_presentation()
    rng = random.Random(7)
    names = set()
    for _ in range(10_000):
        request = images.ThumbnailRequest(time=rng.uniform(0, 12), width=rng.randint(1, 1920),
                                          height=rng.randint(1, 1920), fit_mode=rng.choice(images.FIT_MODES[:4]))
        names.add(images.plan_thumbnail(p, request, "jpg").name)
    # 12 times (0..10 s and the last frame) x 14 widths x 14 heights x 4 fit modes
    assert len(names) <= 12 * 14 * 14 * 4


@pytest.mark.parametrize(
    ("value", "snapped"),
    [(1, 90), (90, 90), (91, 120), (200, 240), (641, 720), (1919, 1920), (1920, 1920), (None, None)],
)
def test_sizes_round_up_to_the_set(value, snapped):
    assert image_sizes.snap_up(value, image_sizes.IMAGE_SIZES) == snapped


@pytest.mark.parametrize(("seconds", "snapped"), [(0.0, 0.0), (0.49, 0.0), (0.5, 1.0), (2.5, 3.0), (5.256, 5.0)])
def test_times_round_to_whole_seconds(seconds, snapped):
    assert image_sizes.snap_time(seconds) == snapped


def test_budget_counts_images_but_not_the_storyboard():
    names = [f"media/a/images/thumb-{i}.jpg" for i in range(3)] + ["media/a/images/storyboard-h264-240p-x.jpg"]
    assert image_sizes.stored_variants(names) == 3
    image_sizes.check_variant_budget(names, 4)
    with pytest.raises(image_sizes.TooManyImages, match="already has its 3 stored images"):
        image_sizes.check_variant_budget(names, 3)


def test_equal_after_snapping_is_one_plan():
    p = build_presentation()
    plans = {images.plan_thumbnail(p, images.ThumbnailRequest(time=t, width=w), "jpg").name
             for t, w in itertools.product((4.6, 5.0, 5.49), (161, 170, 180))}
    assert plans == {"thumb-h264-720p-t500-180x101-preserve.jpg"}
