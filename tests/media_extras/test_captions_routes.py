"""Text tracks through the API and the origin, on a real asset."""

from __future__ import annotations

import pytest

VTT = b"WEBVTT\n\n00:00.500 --> 00:02.000\nHello\n\n00:02.500 --> 00:05.000\nWorld\n"
SRT = b"1\n00:00:01,000 --> 00:00:03,000\nOla <b>mundo</b>\n"


def _upload(ready, data: bytes, filename: str, **fields):
    return ready.client.post(f"/v1/assets/{ready.id}/text-tracks", files={"file": (filename, data, "text/plain")},
                             data=fields)


@pytest.fixture(scope="module")
def tracks(ready):
    en = _upload(ready, VTT, "en.vtt", language="en", name="English", default="true")
    pt = _upload(ready, SRT, "pt.srt", language="pt-BR")
    assert en.status_code == 201, en.text
    assert pt.status_code == 201, pt.text
    return en.json(), pt.json()


def test_upload_answers_the_track(tracks):
    en, pt = tracks
    assert en["language"] == "en" and en["name"] == "English" and en["default"] is True
    assert en["source_format"] == "vtt" and en["cues"] == 2 and en["url"] == f"text/{en['id']}.vtt"
    assert pt["name"] == "pt-BR" and pt["default"] is False and pt["source_format"] == "srt"


def test_list_and_get(ready, tracks):
    listed = ready.client.get(f"/v1/assets/{ready.id}/text-tracks").json()
    assert listed["count"] >= 2
    assert [t["id"] for t in listed["data"]][:2] == [t["id"] for t in tracks]
    one = ready.client.get(f"/v1/assets/{ready.id}/text-tracks/{tracks[0]['id']}")
    assert one.status_code == 200 and one.json()["id"] == tracks[0]["id"]


def test_served_as_webvtt_with_segment_caching(ready, tracks):
    pt = tracks[1]
    r = ready.client.get(f"/play/{ready.public_id}/text/{pt['id']}.vtt")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/vtt")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.text == "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nOla <b>mundo</b>\n"
    assert ready.client.get(f"/play/{ready.public_id}/text/{pt['id']}.vtt",
                            headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_manifests_list_the_tracks(ready, tracks):
    en = tracks[0]
    master = ready.client.get(f"/play/{ready.public_id}/master.m3u8").text
    assert f'URI="text/{en["id"]}/index.m3u8"' in master and 'LANGUAGE="pt-BR"' in master
    assert all(line.endswith('SUBTITLES="subs"') for line in master.splitlines()
               if line.startswith("#EXT-X-STREAM-INF"))
    playlist = ready.client.get(f"/play/{ready.public_id}/text/{en['id']}/index.m3u8")
    assert playlist.status_code == 200
    assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert f"../{en['id']}.vtt" in playlist.text and "#EXT-X-ENDLIST" in playlist.text
    mpd = ready.client.get(f"/play/{ready.public_id}/manifest.mpd").text
    assert 'contentType="text" mimeType="text/vtt" lang="en"' in mpd
    from tests.core.media.manifests.mpd_schema import validate_mpd

    validate_mpd(mpd)


def test_signed_playback_carries_the_token_into_text_urls(ready, tracks):
    en = tracks[0]
    assert ready.client.get(f"/play/{ready.signed_id}/text/{en['id']}.vtt").status_code in (401, 403)
    token = ready.client.post("/v1/playback-tokens", json={"playback_id": ready.signed_id}).json()["token"]
    master = ready.client.get(f"/play/{ready.signed_id}/master.m3u8", params={"token": token}).text
    assert f'URI="text/{en["id"]}/index.m3u8?token={token}"' in master
    playlist = ready.client.get(f"/play/{ready.signed_id}/text/{en['id']}/index.m3u8", params={"token": token}).text
    assert f"../{en['id']}.vtt?token={token}" in playlist
    assert ready.client.get(f"/play/{ready.signed_id}/text/{en['id']}.vtt", params={"token": token}).status_code == 200


@pytest.mark.parametrize(
    ("files", "fields", "status", "fragment"),
    [
        pytest.param({"file": ("x.vtt", b"not subtitles", "text/plain")}, {"language": "en"}, 422, "neither",
                     id="not-subtitles"),
        pytest.param({"file": ("x.vtt", b"WEBVTT\n\n00:05.000 --> 00:01.000\nx\n", "text/vtt")}, {"language": "en"},
                     422, "ends before it starts", id="backwards-cue"),
        pytest.param({"file": ("x.vtt", VTT, "text/vtt")}, {"language": "english!"}, 422, "BCP 47", id="bad-language"),
        pytest.param({"file": ("x.vtt", VTT, "text/vtt")}, {}, 422, "language", id="no-language"),
        pytest.param({"file": ("x.vtt", VTT, "text/vtt")}, {"language": "en", "default": "maybe"}, 422, "default",
                     id="bad-default"),
        pytest.param({"file": ("x.vtt", b"WEBVTT\n\n" + b"x" * (3 * 1024 * 1024), "text/vtt")}, {"language": "en"},
                     413, "", id="too-large"),
    ],
)
def test_invalid_uploads(ready, files, fields, status, fragment):
    r = ready.client.post(f"/v1/assets/{ready.id}/text-tracks", files=files, data=fields)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]["message"]


def test_errors_for_unknown_things(ready):
    assert _upload(ready, VTT, "x.vtt", language="en").status_code == 201
    assert ready.client.post("/v1/assets/as_nope/text-tracks", files={"file": ("x.vtt", VTT)},
                             data={"language": "en"}).status_code == 404
    assert ready.client.get("/v1/assets/as_nope/text-tracks").status_code == 404
    assert ready.client.delete(f"/v1/assets/{ready.id}/text-tracks/tt_nope").status_code == 404
    assert ready.client.get(f"/play/{ready.public_id}/text/tt_nope.vtt").status_code == 404
    assert ready.client.get(f"/play/{ready.public_id}/text/tt_nope/index.m3u8").status_code == 404
    no_key = ready.client.get(f"/v1/assets/{ready.id}/text-tracks", headers={"Authorization": ""})
    assert no_key.status_code == 401


def test_delete_removes_it_everywhere(ready):
    made = _upload(ready, VTT, "gone.vtt", language="fr", name="Français").json()
    assert f"text/{made['id']}/index.m3u8" in ready.client.get(f"/play/{ready.public_id}/master.m3u8").text
    assert ready.client.delete(f"/v1/assets/{ready.id}/text-tracks/{made['id']}").status_code == 204
    assert ready.client.get(f"/v1/assets/{ready.id}/text-tracks/{made['id']}").status_code == 404
    assert f"text/{made['id']}/" not in ready.client.get(f"/play/{ready.public_id}/master.m3u8").text
    assert ready.client.get(f"/play/{ready.public_id}/text/{made['id']}.vtt").status_code == 404
    assert not ready.pipeline.storage.exists(f"media/{ready.id}/text/{made['id']}.vtt")
