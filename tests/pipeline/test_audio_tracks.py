"""Multi-language audio end to end: a source with three audio streams becomes three tracks in HLS and DASH."""

from __future__ import annotations

import array
import io
import json
import time

import av

from tests.core.media.manifests.mpd_schema import validate_mpd
from tests.media_fixtures import make_multi_audio_clip


def tone_hz(storage, asset_id: str, track) -> float:
    """A pure tone's frequency from its zero crossings (each source stream is a different tone)."""
    data = storage.get_bytes(f"media/{asset_id}/{track.init_uri}")
    data += b"".join(storage.get_bytes(f"media/{asset_id}/{track.segment_uri(s.number)}") for s in track.segments)
    samples = array.array("f")
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            assert frame.format.name == "fltp"  # the AAC decoder's output: planar float
            samples.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
    body = samples[len(samples) // 4: len(samples) * 3 // 4]  # away from the encoder's ramp-in and padding
    crossings = sum(1 for a, b in zip(body, body[1:]) if (a < 0) != (b < 0))
    return crossings / 2 / (len(body) / track.rendition.sample_rate)


def test_three_audio_streams_become_three_tracks(pipeline, tmp_path):
    src = make_multi_audio_clip(tmp_path / "three.mp4", duration=3)
    created = pipeline.upload(src, {"segment_duration": 2, "audio": {
        "default": 1, "labels": {"2": {"role": "description", "name": "Español (AD)"}}}})
    assert [r["id"] for r in created["renditions"] if r["codec"] == "aac"] == ["audio", "audio-2", "audio-3"]
    asset = pipeline.wait(created["id"])
    assert asset["status"] == "ready", asset["error"]

    p = pipeline.presentation(asset["id"])
    audio = p.audio_tracks
    assert [(t.id, t.rendition.language, t.rendition.name, t.rendition.default) for t in audio] == [
        ("audio", "fr", "Français", True), ("audio-2", "en", "English", False),
        ("audio-3", "es", "Español (AD)", False)]
    # Each track is encoded from the stream it names: 660 Hz French, 440 Hz English, 880 Hz Spanish.
    tones = [tone_hz(pipeline.storage, asset["id"], t) for t in audio]
    assert [round(hz / 10) * 10 for hz in tones] == [660, 440, 880], tones

    play = f"/play/{asset['playback_ids'][0]['id']}"
    master = pipeline.client.get(f"{play}/master.m3u8").text
    media = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:TYPE=AUDIO")]
    assert len(media) == 3, master
    assert 'LANGUAGE="fr",DEFAULT=YES' in media[0] and 'LANGUAGE="en",DEFAULT=NO' in media[1]
    assert 'CHARACTERISTICS="public.accessibility.describes-video"' in media[2]
    for uri in ("audio-2/index.m3u8", "audio-3/00001.m4s"):
        got = pipeline.client.get(f"{play}/{uri}")
        assert got.status_code == 200, uri
    assert pipeline.client.get(f"{play}/audio-3/00001.m4s").headers["content-type"] == "audio/mp4"

    mpd = pipeline.client.get(f"{play}/manifest.mpd").text
    validate_mpd(mpd)
    assert mpd.count('contentType="audio"') == 3 and 'lang="es"' in mpd and 'value="description"' in mpd

    only_en = pipeline.client.get(f"{play}/master.m3u8?audio_lang=en").text
    assert only_en.count("TYPE=AUDIO") == 1 and 'LANGUAGE="en",DEFAULT=YES' in only_en
    assert pipeline.client.get(f"{play}/manifest.mpd?audio_lang=de").status_code == 404
    assert pipeline.client.get(f"{play}/manifest.mpd?audio_lang=e!").status_code == 400


def test_audio_settings_errors_are_422(pipeline, tmp_path):
    src = make_multi_audio_clip(tmp_path / "two.mp4", duration=2, tracks=(("eng", "A", 440), ("ger", "B", 550)))
    for bad in ({"tracks": [5]}, {"tracks": [0], "default": 1}, {"labels": {"0": {"role": "karaoke"}}},
                {"tracks": []}):
        got = pipeline.client.post("/v1/assets", files={"file": ("two.mp4", src.read_bytes(), "video/mp4")},
                                   data={"settings": json.dumps({"audio": bad})})
        assert got.status_code == 422, (bad, got.text)
    only_german = pipeline.upload(src, {"audio": {"tracks": [1]}})
    assert [r["id"] for r in only_german["renditions"] if r["codec"] == "aac"] == ["audio"]


def test_a_dub_added_later_appears_in_the_manifests(pipeline, clips, tmp_path):
    created = pipeline.upload(clips("plain.mp4", duration=3, width=160, height=96), {"segment_duration": 2})
    asset = pipeline.wait(created["id"])
    assert asset["status"] == "ready", asset["error"]
    play = f"/play/{asset['playback_ids'][0]['id']}"
    assert pipeline.client.get(f"{play}/master.m3u8").text.count("TYPE=AUDIO") == 1

    # A shorter dub (2 s of 660 Hz) is padded with silence to the asset's 3 s.
    dub = make_multi_audio_clip(tmp_path / "dub.mp4", duration=2, tracks=(("ger", "x", 660),))
    with open(dub, "rb") as fh:
        got = pipeline.client.post(f"/v1/assets/{asset['id']}/audio-tracks", files={"file": ("dub.mp4", fh)},
                                   data={"language": "de", "name": "Deutsch"})
    assert got.status_code == 202, got.text
    assert got.json() == {"id": "audio-2", "asset_id": asset["id"], "language": "de", "name": "Deutsch",
                          "role": "dub", "status": "pending"}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        renditions = pipeline.client.get(f"/v1/assets/{asset['id']}").json()["renditions"]
        if {r["id"]: r["status"] for r in renditions}.get("audio-2") in ("ready", "errored"):
            break
        time.sleep(0.3)
    assert {r["id"]: r["status"] for r in renditions}["audio-2"] == "ready", pipeline.log.read_text()[-3000:]
    pipeline.client.app.state.ctx.extra["origin"].forget(asset["id"])  # this test's origin cache

    p = pipeline.presentation(asset["id"])
    dub_track = next(t for t in p.tracks if t.id == "audio-2")
    assert (dub_track.rendition.language, dub_track.rendition.role) == ("de", "dub")
    assert abs(dub_track.duration_seconds - p.audio.duration_seconds) < 0.1  # ends with the main audio
    master = pipeline.client.get(f"{play}/master.m3u8").text
    assert 'NAME="Deutsch",LANGUAGE="de",DEFAULT=NO' in master, master
    mpd = pipeline.client.get(f"{play}/manifest.mpd").text
    validate_mpd(mpd)
    assert 'lang="de"' in mpd and 'value="dub"' in mpd

    # Not ready, no audio, bad language: 4xx.
    assert pipeline.client.post("/v1/assets/nope/audio-tracks", files={"file": ("d.mp4", dub.read_bytes())},
                                data={"language": "de"}).status_code == 404
    silent = clips("silent.mp4", duration=1, width=160, height=96, audio_channels=None)
    bad = pipeline.client.post(f"/v1/assets/{asset['id']}/audio-tracks", files={"file": ("s.mp4", silent.read_bytes())},
                               data={"language": "de"})
    assert bad.status_code == 422 and "no audio" in bad.text
    bad = pipeline.client.post(f"/v1/assets/{asset['id']}/audio-tracks", files={"file": ("d.mp4", dub.read_bytes())},
                               data={"language": "german!"})
    assert bad.status_code == 422
