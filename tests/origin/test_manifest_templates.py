"""A signed id's manifests: one template per variant, each token put in (core/origin/service.py `_render`).

What a viewer gets must be byte for byte what rendering with their token gives, for every
manifest kind, filtered or not, encrypted or not; a token a template cannot take is rendered.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest

from core.media.manifests import ManifestFilter
from core.media.model import Protection
from core.origin.paths import Kind, Target
from core.origin.service import LoadedPresentation, OriginService, render_manifest
from core.services.playback import SigningKeys, sign_token
from core.storage.base import ObjectInfo
from tests.core.media.manifests.conftest import build_presentation

MOMENT = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
TARGETS = [Target(Kind.MASTER), Target(Kind.MPD), Target(Kind.MEDIA_PLAYLIST, rendition="h264-720p"),
           Target(Kind.MEDIA_PLAYLIST, rendition="audio")]


def service_with(presentation) -> tuple[OriginService, LoadedPresentation]:
    origin = OriginService(engine=None, storage=None, keys=SigningKeys.from_settings("k" * 40))
    loaded = LoadedPresentation(presentation, ObjectInfo(size=1, mtime=MOMENT, etag="e1"), time.monotonic() + 60)
    return origin, loaded


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.kind.name}-{t.rendition}")
def test_each_token_gets_exactly_what_rendering_with_it_gives(target, encrypted):
    presentation = build_presentation()
    if encrypted:
        presentation = dataclasses.replace(presentation,
                                           protection=Protection(default_kid="00112233-4455-6677-8899-aabbccddeeff"))
    origin, loaded = service_with(presentation)
    keys = SigningKeys.from_settings("s" * 40)
    root = "https://cdn.example/play/abc" if encrypted else ""
    for selected in (ManifestFilter(), ManifestFilter(max_height=480)):
        for exp in (2_000_000_000, 2_000_000_001):
            query = f"token={sign_token('abc', keys=keys, expires_at=exp)}"
            ours = origin._render("as_1", loaded, target, selected, query, root)
            theirs = render_manifest(presentation, target, selected, query, MOMENT, root)
            assert ours.body == theirs.body and ours.etag == theirs.etag
            assert (ours.content_type, ours.last_modified, ours.complete) == \
                   (theirs.content_type, theirs.last_modified, theirs.complete)
            assert query.encode()[len("token="):] in ours.body and b"abrtoken" not in ours.body


def test_one_template_per_variant_and_odd_queries_rendered_as_they_are():
    origin, loaded = service_with(build_presentation())
    mpd = Target(Kind.MPD)
    origin._render("as_1", loaded, mpd, ManifestFilter(), "token=a.b.c", "")
    origin._render("as_1", loaded, mpd, ManifestFilter(), "token=d.e.f", "")
    assert len(origin._manifests) == 1  # the template; the viewers' own variants are cached by their callers
    for query in ("", "token=a%2Eb", "token=a.b&x=1"):
        assert origin._render("as_1", loaded, mpd, ManifestFilter(), query, "").body == \
            render_manifest(loaded.presentation, mpd, ManifestFilter(), query, MOMENT).body
    assert len(origin._manifests) == 1


def test_only_the_front_gets_a_template_and_only_for_a_token_just_authorized():
    from api.origin import front_template
    from core.origin.service import TEMPLATE_QUERY

    origin, _ = service_with(build_presentation())
    assert front_template(origin, "token=a.b.c", asked=True) is None  # not behind the front: the header means nothing
    origin.front_index = object()  # behind `abr api --front nginx`
    assert front_template(origin, "token=a.b.c", asked=True) == TEMPLATE_QUERY
    assert front_template(origin, "token=a.b.c", asked=False) is None
    assert front_template(origin, "", asked=True) is None  # a public id carries no token
