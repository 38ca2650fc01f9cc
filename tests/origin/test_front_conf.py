"""The nginx front's config planner (core/origin/front.py): pure, and what real nginx accepts."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from core.origin.front import (
    AUDIO_SEGMENT_LOCATION,
    MANIFEST_LOCATION,
    SEGMENT_LOCATION,
    FrontPlan,
    keys_env,
    render_conf,
)
from core.origin.paths import Kind, classify
from tests.origin.live import find_js_module, find_nginx


def python_re(nginx_pattern: str) -> re.Pattern:
    return re.compile(nginx_pattern.replace("(?<", "(?P<"))


PATHS = ["h264-720p/00001.m4s", "h264-720p/init.mp4", "vp8-360p/00012.webm", "vp8-360p/init.webm", "audio/00003.m4s",
         "audio-2/init.mp4", "h264-720p/00042.3.m4s", "h264-720p/index.m3u8", "master.m3u8", "manifest.mpd",
         "h264-720p/1.m4s", "h264-720p/00001.mp4", "H264-720p/00001.m4s", "h264-720p/sub/00001.m4s",
         "-bad/00001.m4s", "thumbnail.jpg", "presentation.json", "h264-720p/00001.m4s.tmp"]


def plan(**changes) -> FrontPlan:
    base = dict(listen_host="127.0.0.1", listen_port=8000, upstream_port=9000, storage_root=Path("/srv/abr/storage"),
                prefix=Path("/run/abr-front"), module="/usr/lib/nginx/modules/ngx_http_js_module.so")
    return FrontPlan(**{**base, **changes})


def kind(path: str) -> Kind | None:
    try:
        return classify(path).kind
    except Exception:
        return None


@pytest.mark.parametrize("path", PATHS)
def test_nginx_takes_exactly_the_segments_the_api_serves(path):
    segment, audio = python_re(SEGMENT_LOCATION), python_re(AUDIO_SEGMENT_LOCATION)
    url = f"/play/abc123/{path}"
    assert bool(segment.match(url)) == (kind(path) is Kind.SEGMENT)
    # nginx tries the audio location first: it must take only audio renditions' segments.
    assert bool(audio.match(url)) == (kind(path) is Kind.SEGMENT and path.split("/")[0].startswith("audio"))
    assert bool(python_re(MANIFEST_LOCATION).match(url)) == (kind(path) in (Kind.MASTER, Kind.MPD,
                                                                            Kind.MEDIA_PLAYLIST))


def test_the_playback_id_pattern_is_the_apis():
    segment = python_re(SEGMENT_LOCATION)
    assert segment.match("/play/" + "a" * 40 + "/audio/00001.m4s")
    assert not segment.match("/play/" + "a" * 41 + "/audio/00001.m4s")
    assert not segment.match("/play/ABC/audio/00001.m4s")


def test_the_same_plan_renders_the_same_config():
    assert render_conf(plan()) == render_conf(plan())
    text = render_conf(plan(workers=3, run_as_root=True, access_log=True))
    assert text.splitlines()[1:4] == ["load_module /usr/lib/nginx/modules/ngx_http_js_module.so;", "user root;",
                                      "worker_processes 3;"]
    assert "access_log /dev/stdout;" in text and "root /srv/abr/storage;" in text
    assert "server 127.0.0.1:9000;" in text and "listen 127.0.0.1:8000 reuseport backlog=4096;" in text
    assert "user root;" not in render_conf(plan())
    # No secret is ever written into the file: nginx reads the keys and the gate's secret from its environment.
    assert "env ABR_FRONT_KEYS;" in text and "env ABR_FRONT_SECRET;" in text


def test_any_origin_gets_a_star_and_a_list_is_echoed_one_at_a_time():
    star = render_conf(plan())
    assert 'add_header Access-Control-Allow-Origin "*" always;' in star and "map $http_origin" not in star
    listed = render_conf(plan(cors_origins="https://b.example, https://a.example:8443/"))
    assert ("    map $http_origin $abr_cors_origin {\n"
            '        default "";\n'
            '        "https://a.example:8443" "https://a.example:8443";\n'
            '        "https://b.example" "https://b.example";\n'
            "    }\n") in listed
    assert 'add_header Vary "Origin" always;' in listed


@pytest.mark.parametrize("origin", ['https://a.example";', "https://a.example/x", "https://$host", "javascript:x",
                                    "https://a example"])
def test_an_origin_that_is_not_one_is_refused(origin):
    with pytest.raises(ValueError):
        render_conf(plan(cors_origins=origin))


def test_keys_go_to_njs_by_kid():
    assert keys_env({"b": b"second", "a": b"first"}) == '{"a": "first", "b": "second"}'


def test_real_nginx_accepts_the_config(tmp_path):
    module = find_js_module()
    nginx = find_nginx()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_conf(plan(prefix=tmp_path, module=module, storage_root=tmp_path,
                                     cors_origins="https://a.example")))
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_apis_gate_tells_nginx_which_ids_it_may_send_files_for(tmp_path):
    from core.storage import open_storage
    from tests.helpers import app_client
    from tests.origin.fabricate import fabricate

    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, front_secret="s3cret-for-the-gate") as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, open_storage(ctx.settings.resolved_storage_url))
        live = client.post("/v1/live-streams", json={})
        assert live.status_code == 201, live.text
        live_id = live.json()["playback_ids"][0]["id"]

        def gate(playback_id: str, secret: str | None = "s3cret-for-the-gate"):
            headers = {"X-Abr-Front-Secret": secret} if secret is not None else {}
            return client.get(f"/_abr/front/playback/{playback_id}", headers=headers)

        def verdict(answer):
            assert answer.status_code == 200
            return (answer.headers["x-abr-asset"], answer.headers["x-abr-signed"], answer.headers["x-abr-unknown"])

        assert verdict(gate(made.public_id)) == (made.asset_id, "0", "")
        assert verdict(gate(made.signed_id)) == (made.asset_id, "1", "")
        assert verdict(gate(live_id)) == ("", "", "")  # live: every request goes to the API
        assert verdict(gate("nosuchid")) == ("", "", "1")
        assert verdict(gate("NOT-AN-ID")) == ("", "", "1")
        for secret in (None, "", "wrong"):
            refused = gate(made.public_id, secret)
            assert refused.status_code == 404 and "x-abr-asset" not in refused.headers
    with app_client(env) as client:  # no front: no gate, whatever is sent
        answer = client.get(f"/_abr/front/playback/{made.public_id}", headers={"X-Abr-Front-Secret": ""})
        assert answer.status_code == 404
