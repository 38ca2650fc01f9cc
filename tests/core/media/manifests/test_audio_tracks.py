"""Several audio tracks (languages, a dub, audio description): HLS group, DASH sets, `?audio_lang=`."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.errors import BadRequest, NotFound
from core.media.manifests import ManifestFilter, render_mpd, render_multivariant_playlist
from core.media.model import Presentation, Rendition, Track, audio_rendition_id, is_audio_rendition_id

from .conftest import segments
from .mpd_schema import validate_mpd


def audio_track(position: int, language: str, name: str, *, role: str = "", default: bool = False,
                sizes=(64_000, 64_000, 40_000)) -> Track:
    rendition = Rendition(audio_rendition_id(position), "aac", bitrate=128_000, channels=2, sample_rate=48_000,
                          language=language, name=name, role=role, default=default, source_stream=position)
    return Track(rendition, "mp4a.40.2", "mp4", 48_000, segments(48_000, list(sizes)), complete=True)


@pytest.fixture
def multi(presentation) -> Presentation:
    """Only the 360p H.264 rung, with English (default), French (louder) and English audio description."""
    video = [t for t in presentation.tracks if t.id == "h264-360p"]
    return dataclasses.replace(presentation, tracks=[
        *video,
        audio_track(0, "en", "English", default=True),
        # peak 160 000 b/s (segment 1), average 1 480 000 bits / 10.5 s = 140 953
        audio_track(1, "fr", "Français", sizes=(80_000, 70_000, 35_000)),
        audio_track(2, "en", "English (AD)", role="description"),
    ])


MULTIVARIANT = """\
#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",\
URI="audio/index.m3u8?token=t"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Français",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",\
URI="audio-2/index.m3u8?token=t"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="English (AD)",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,\
CHARACTERISTICS="public.accessibility.describes-video",CHANNELS="2",URI="audio-3/index.m3u8?token=t"
#EXT-X-STREAM-INF:BANDWIDTH=1160000,AVERAGE-BANDWIDTH=1017144,CODECS="avc1.64001e,mp4a.40.2",\
RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO="audio"
h264-360p/index.m3u8?token=t
"""


def test_multivariant_lists_every_audio_track_exact(multi):
    # BANDWIDTH = video peak 1 000 000 + the most demanding audio track's peak (French, 160 000).
    assert render_multivariant_playlist(multi, query="token=t") == MULTIVARIANT


def audio_sets(mpd: str) -> list[str]:
    blocks = mpd.split("<AdaptationSet ")[1:]
    return ["<AdaptationSet " + b.split("</AdaptationSet>")[0] for b in blocks if 'contentType="audio"' in b]


FRENCH_SET = """\
<AdaptationSet id="2" contentType="audio" mimeType="audio/mp4" lang="fr" segmentAlignment="true" startWithSAP="1">
      <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2" />
      <Label>Français</Label>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="alternate" />
      <Representation id="audio-2" codecs="mp4a.40.2" bandwidth="160000" audioSamplingRate="48000">"""


def test_mpd_one_adaptation_set_per_audio_track(multi):
    mpd = render_mpd(multi)
    validate_mpd(mpd)
    sets = audio_sets(mpd)
    assert len(sets) == 3
    assert 'lang="en"' in sets[0] and '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main" />' in sets[0]
    assert sets[1].startswith(FRENCH_SET)
    assert '<Accessibility schemeIdUri="urn:tva:metadata:cs:AudioPurposeCS:2007" value="1" />' in sets[2]
    assert 'value="description"' in sets[2]


def test_single_unlabelled_track_keeps_its_old_output(presentation):
    # No Role, no Label, lang="und", NAME="Audio": the classic asset renders as before.
    mpd = render_mpd(presentation)
    (only,) = audio_sets(mpd)
    assert "<Role" not in only and "<Label" not in only and 'lang="und"' in only
    assert 'NAME="Audio",DEFAULT=YES' in render_multivariant_playlist(presentation)


def test_incomplete_second_track_holds_the_mpd_back(multi):
    multi.tracks[2].complete = False
    with pytest.raises(NotFound):
        render_mpd(multi)


def test_audio_lang_keeps_matching_tracks_and_picks_the_default(multi):
    french = ManifestFilter.from_query({"audio_lang": "fr"}).apply(multi)
    assert [t.id for t in french.audio_tracks] == ["audio-2"]
    assert french.audio.rendition.default
    text = render_multivariant_playlist(french)
    assert 'NAME="Français",LANGUAGE="fr",DEFAULT=YES' in text and "English" not in text
    # `en` matches both English tracks; listing fr first makes French the default.
    both = ManifestFilter.from_query({"audio_lang": "fr,EN"}).apply(multi)
    assert [t.id for t in both.audio_tracks] == ["audio-2", "audio", "audio-3"]
    assert multi.audio.id == "audio"  # the stored presentation is not changed


def test_audio_lang_subtag_matching(multi):
    multi.tracks[3] = dataclasses.replace(
        multi.tracks[3], rendition=dataclasses.replace(multi.tracks[3].rendition, language="en-GB"))
    only_gb = ManifestFilter.from_query({"audio_lang": "en-gb"}).apply(multi)
    assert [t.id for t in only_gb.audio_tracks] == ["audio-3"]


def test_audio_lang_without_a_match_is_404(multi):
    with pytest.raises(NotFound, match="audio_lang=de"):
        ManifestFilter.from_query({"audio_lang": "de"}).apply(multi)


@pytest.mark.parametrize("raw", ["e", "english!", "en;fr", "x" * 9 + "-a"])
def test_audio_lang_refuses_non_tags(raw):
    with pytest.raises(BadRequest, match="audio_lang"):
        ManifestFilter.from_query({"audio_lang": raw})


def test_presentation_json_round_trip_and_old_files_unchanged(multi, presentation):
    again = Presentation.from_dict(json.loads(json.dumps(multi.to_dict())))
    assert again.audio_tracks[1].rendition == multi.audio_tracks[1].rendition
    # The classic audio rendition writes none of the new keys.
    legacy = next(t for t in presentation.to_dict()["tracks"] if t["rendition"]["id"] == "audio")
    assert set(legacy["rendition"]) == {"id", "codec", "width", "height", "bitrate", "max_bitrate", "buffer_size",
                                        "frame_rate", "channels", "sample_rate"}


def test_audio_rendition_ids():
    assert [audio_rendition_id(i) for i in range(3)] == ["audio", "audio-2", "audio-3"]
    assert is_audio_rendition_id("audio-12") and not is_audio_rendition_id("audio-x")
    assert not is_audio_rendition_id("h264-720p")


def test_audio_lang_is_part_of_the_manifest_cache_key(multi):
    keys = {lang: ManifestFilter.from_query({"audio_lang": lang}).selection(multi)
            for lang in ("fr", "en", "fr,en", "en,fr", "EN")}
    assert len({keys["fr"], keys["en"], keys["fr,en"], keys["en,fr"]}) == 4
    assert keys["en"] == keys["EN"]  # the same manifest, whatever the spelling
    assert ManifestFilter.from_query({}).selection(multi) is None
