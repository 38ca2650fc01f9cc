"""ManifestFilter: parsing the request, and what each filter leaves in the manifests."""

from __future__ import annotations

import pytest

from core.errors import BadRequest, NotFound
from core.media.manifests import ManifestFilter, append_query, render_mpd, render_multivariant_playlist

from .mpd_schema import validate_mpd


def ids(presentation):
    return [t.id for t in presentation.tracks]


def test_empty_query_is_no_filter():
    selected = ManifestFilter.from_query({"codecs": "", "min_height": "", "max_height": " ", "token": "x"})
    assert selected == ManifestFilter() and selected.is_empty


def test_parses_every_key():
    selected = ManifestFilter.from_query(
        {"codecs": "VP8, h264", "min_height": "240", "max_height": "720", "max_bitrate": "2500000"}
    )
    assert selected == ManifestFilter(frozenset({"vp8", "h264"}), 240, 720, 2_500_000)


@pytest.mark.parametrize(
    "query, message",
    [
        pytest.param({"codecs": "vp9"}, "unknown codec vp9", id="unknown-codec"),
        pytest.param({"codecs": "h264,hevc"}, "unknown codec hevc", id="one-unknown-codec"),
        pytest.param({"max_height": "abc"}, "max_height must be a whole number", id="not-a-number"),
        pytest.param({"min_height": "-1"}, "min_height must be a whole number", id="negative"),
        pytest.param({"max_bitrate": "2.5e6"}, "max_bitrate must be a whole number", id="float"),
        pytest.param({"max_height": "٣٦٠"}, "max_height must be a whole number", id="non-ascii-digits"),
        pytest.param({"min_height": "1080", "max_height": "720"}, "above max_height", id="min-above-max"),
    ],
)
def test_bad_values_are_bad_requests(query, message):
    with pytest.raises(BadRequest, match=message):
        ManifestFilter.from_query(query)


def test_codecs_vp8_keeps_vp8_and_audio(presentation):
    only_vp8 = ManifestFilter.from_query({"codecs": "vp8"}).apply(presentation)
    assert ids(only_vp8) == ["vp8-360p", "audio"]
    assert ids(presentation) == ["h264-720p", "h264-360p", "h265-720p", "vp8-360p", "audio"]  # untouched
    mpd = render_mpd(only_vp8)
    validate_mpd(mpd)
    assert "vp8-360p/init.webm" in mpd and "h264" not in mpd
    with pytest.raises(NotFound, match="HLS has no VP8"):
        render_multivariant_playlist(only_vp8)


def test_max_height(presentation):
    small = ManifestFilter.from_query({"max_height": "360"}).apply(presentation)
    assert ids(small) == ["h264-360p", "vp8-360p", "audio"]


def test_min_height_and_codec(presentation):
    selected = ManifestFilter.from_query({"codecs": "h264", "min_height": "480"}).apply(presentation)
    assert ids(selected) == ["h264-720p", "audio"]


def test_max_bitrate_uses_planned_bitrate(presentation):
    selected = ManifestFilter.from_query({"max_bitrate": "1000000"}).apply(presentation)
    assert ids(selected) == ["h264-360p", "vp8-360p", "audio"]


def test_filter_that_leaves_nothing_is_not_found(presentation):
    with pytest.raises(NotFound, match="no rendition matches min_height=1080"):
        ManifestFilter.from_query({"min_height": "1080"}).apply(presentation)


def test_audio_only_presentation_passes_any_filter(presentation):
    presentation.tracks = [presentation.audio]
    assert ids(ManifestFilter(min_height=1080).apply(presentation)) == ["audio"]


@pytest.mark.parametrize(
    "uri, query, expected",
    [
        ("a/init.mp4", "", "a/init.mp4"),
        ("a/init.mp4", "token=x", "a/init.mp4?token=x"),
        ("a/init.mp4", "?token=x", "a/init.mp4?token=x"),
        ("a/init.mp4?v=1", "token=x", "a/init.mp4?v=1&token=x"),
    ],
)
def test_append_query(uri, query, expected):
    assert append_query(uri, query) == expected


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        pytest.param({}, None, id="no-filter"),
        pytest.param({"max_height": "5000"}, None, id="keeps-all"),
        pytest.param({"max_height": "700"}, frozenset({"h264-360p", "vp8-360p"}), id="max-height-700"),
        pytest.param({"max_height": "360"}, frozenset({"h264-360p", "vp8-360p"}), id="max-height-360-same-subset"),
        pytest.param({"min_height": "361"}, frozenset({"h264-720p", "h265-720p"}), id="min-height"),
        pytest.param({"max_bitrate": "999999"}, frozenset({"h264-360p"}), id="max-bitrate"),
        pytest.param({"codecs": "vp8,h264,h265"}, None, id="every-codec"),
        pytest.param({"max_height": "100"}, frozenset(), id="nothing"),
    ],
)
def test_selection_is_the_set_of_kept_renditions(presentation, query, kept):
    assert ManifestFilter.from_query(query).selection(presentation) == kept


def test_absurdly_long_numbers_are_clamped_not_parsed():
    assert ManifestFilter.from_query({"max_height": "9" * 5000}).max_height == 10**12
