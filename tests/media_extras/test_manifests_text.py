"""Text tracks in the manifests and in presentation.json (pure, on the hand-built presentation)."""

from __future__ import annotations

import json

from core.media.manifests import render_mpd, render_multivariant_playlist
from core.media.manifests.hls import render_subtitles_playlist
from core.media.model import Presentation, TextTrack
from tests.core.media.manifests.conftest import build_presentation
from tests.core.media.manifests.mpd_schema import validate_mpd

EN = TextTrack("tt_en", "en", "English", default=True)
PT = TextTrack("tt_pt", "pt-BR", "Português")


def _with_text(*tracks: TextTrack) -> Presentation:
    p = build_presentation()
    p.text_tracks = list(tracks)
    return p


def test_hls_master_lists_subtitles_and_every_variant_refers_to_them():
    master = render_multivariant_playlist(_with_text(EN, PT), query="token=t")
    assert (
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,'
        'URI="text/tt_en/index.m3u8?token=t"\n'
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Português",LANGUAGE="pt-BR",DEFAULT=NO,AUTOSELECT=YES,'
        'URI="text/tt_pt/index.m3u8?token=t"\n'
    ) in master
    stream_infs = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert stream_infs and all(line.endswith(',SUBTITLES="subs"') for line in stream_infs)


def test_hls_master_without_text_tracks_is_unchanged():
    assert "SUBTITLES" not in render_multivariant_playlist(build_presentation())


def test_subtitles_media_playlist_is_one_segment_for_the_whole_duration():
    assert render_subtitles_playlist(_with_text(EN), EN, query="token=t") == (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:11\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:10.500000,\n../tt_en.vtt?token=t\n#EXT-X-ENDLIST\n"
    )


def test_dash_text_adaptation_sets_validate_against_the_schema():
    mpd = render_mpd(_with_text(EN, PT), query="token=t")
    validate_mpd(mpd)
    assert (
        '<AdaptationSet id="4" contentType="text" mimeType="text/vtt" lang="en">\n'
        '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main" />\n'
        '      <Representation id="text-tt_en" bandwidth="256">\n'
        "        <Label>English</Label>\n"
        "        <BaseURL>text/tt_en.vtt?token=t</BaseURL>\n"
    ) in mpd
    assert 'lang="pt-BR"' in mpd and 'value="subtitle"' in mpd


def test_presentation_json_round_trips_text_tracks_and_reads_old_files():
    p = _with_text(EN, PT)
    again = Presentation.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again.text_tracks == [EN, PT]
    old = build_presentation().to_dict()
    assert "text_tracks" not in old  # files without text tracks are written as before
    assert Presentation.from_dict(old).text_tracks == []
