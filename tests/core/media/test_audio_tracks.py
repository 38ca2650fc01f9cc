"""The audio-track planner: which source streams, languages (BCP 47), names, roles, the default."""

from __future__ import annotations

import pytest

from core.media.audio_tracks import TrackLabel, bcp47, plan_audio_tracks
from core.media.ladder import plan_audio
from core.media.probe import AudioInfo


def stream(position: int, language: str | None = None, title: str | None = None, channels: int = 2) -> AudioInfo:
    return AudioInfo("aac", channels, None, 48000, None, language=language, title=title, position=position)


@pytest.mark.parametrize(("tag", "out"), [("eng", "en"), ("fre", "fr"), ("fra", "fr"), ("ger", "de"),
                                          ("pt-BR", "pt-BR"), ("haw", "haw"), ("und", ""), (None, ""),
                                          ("", ""), ("english", ""), ("EN", "en")])
def test_bcp47(tag, out):
    assert bcp47(tag) == out


def test_a_single_untagged_stream_is_the_classic_track():
    assert plan_audio_tracks([stream(0)]) == [plan_audio(2, 48000)]


def test_all_streams_default_first_with_tags_and_labels():
    streams = [stream(0, "eng", "English"), stream(1, "fre"), stream(2, "eng", "English", channels=1)]
    planned = plan_audio_tracks(streams, default=1, labels={2: TrackLabel(role="description", name="Described")})
    assert [(r.id, r.source_stream, r.language, r.name, r.role, r.default, r.channels) for r in planned] == [
        ("audio", 1, "fr", "", "", True, 2),
        ("audio-2", 0, "en", "English", "", False, 2),
        ("audio-3", 2, "en", "Described", "description", False, 1),
    ]


def test_repeated_names_are_numbered():
    planned = plan_audio_tracks([stream(0, "eng", "Main"), stream(1, "eng", "Main"), stream(2, "eng")])
    assert [r.name for r in planned] == ["Main", "Main 2", ""]
    # Two unnamed tracks of one language would share NAME="en" in HLS: the second is numbered.
    planned = plan_audio_tracks([stream(0, "eng"), stream(1, "eng")])
    assert [r.name for r in planned] == ["", "en 2"]


def test_chosen_subset_and_language_override():
    planned = plan_audio_tracks([stream(0, "eng"), stream(1, "ita")], tracks=[1], labels={1: TrackLabel("pt-BR")})
    assert [(r.id, r.source_stream, r.language) for r in planned] == [("audio", 1, "pt-BR")]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"tracks": [3]}, "no audio stream 3"),
    ({"default": 4}, "no audio stream 4"),
    ({"tracks": [0], "default": 1}, "not among the chosen"),
    ({"labels": {0: TrackLabel(role="karaoke")}}, "role"),
])
def test_bad_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_audio_tracks([stream(0), stream(1)], **kwargs)
