"""The nginx front's config planner (core/origin/front.py): pure, and what real nginx accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
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
from core.layout import media_key
from core.origin.paths import Kind, classify
from tests.origin.live import find_perl_module, find_nginx


def python_re(nginx_pattern: str) -> re.Pattern:
    return re.compile(nginx_pattern.replace("(?<", "(?P<"))


PATHS = ["h264-720p/00001.m4s", "h264-720p/init.mp4", "vp8-360p/00012.webm", "vp8-360p/init.webm", "audio/00003.m4s",
         "audio-2/init.mp4", "h264-720p/00042.3.m4s", "h264-720p/index.m3u8", "master.m3u8", "manifest.mpd",
         "h264-720p/1.m4s", "h264-720p/00001.mp4", "H264-720p/00001.m4s", "h264-720p/sub/00001.m4s",
         "-bad/00001.m4s", "thumbnail.jpg", "presentation.json", "h264-720p/00001.m4s.tmp"]


def plan(**changes) -> FrontPlan:
    base = dict(listen_host="127.0.0.1", listen_port=8000, upstream_port=9000, prefix=Path("/run/abr-front"), module="/usr/lib/nginx/modules/ngx_http_perl_module.so")
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
    assert text.splitlines()[1:4] == ["load_module /usr/lib/nginx/modules/ngx_http_perl_module.so;", "user root;",
                                      "worker_processes 3;"]
    assert "access_log /dev/stdout;" in text and "root /run/abr-front/ids;" in text
    assert "server 127.0.0.1:9000;" in text and "listen 127.0.0.1:8000 reuseport backlog=4096;" in text
    assert "user root;" not in render_conf(plan())
    # No secret is ever written into the file: nginx reads the keys from its environment.
    assert "env ABR_FRONT_KEYS;" in text


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


def test_keys_go_to_the_script_by_kid():
    assert keys_env({"b": b"second", "a": b"first"}) == '{"a": "first", "b": "second"}'


def test_real_nginx_accepts_the_config(tmp_path):
    module = find_perl_module()
    nginx = find_nginx()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_conf(plan(prefix=tmp_path, module=module, cors_origins="https://a.example")))
    done = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_api_links_the_ids_nginx_may_send_files_for(tmp_path):
    from core.origin.front_index import bucket
    from core.storage import open_storage
    from tests.helpers import app_client
    from tests.origin.fabricate import fabricate

    index = tmp_path / "ids"
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, front_index=str(index)) as client:
        ctx = client.app.state.ctx
        storage = open_storage(ctx.settings.resolved_storage_url)
        made = fabricate(ctx.engine, storage)
        live = client.post("/v1/live-streams", json={})
        assert live.status_code == 201, live.text
        live_id = live.json()["playback_ids"][0]["id"]
        started = time.time()
        for playback_id in (made.public_id, made.signed_id, live_id, "nosuchid"):
            client.get(f"/play/{playback_id}/master.m3u8")  # the signed one's 403 still resolves the id
        # (Each link is in the window it was made in: a request may fall on the next one.)
        links = {f"{p.parent.name}/{p.name}": p for p in index.glob("*/*/*")}
        assert sorted(links) == sorted([f"p/{made.public_id}", f"s/{made.signed_id}"])  # live, unknown: the API's
        assert all(p.parent.parent.name in (bucket(started), bucket(time.time())) for p in links.values())
        media = storage.local_path(media_key(made.asset_id, "h264-720p/00001.m4s"))
        assert (links[f"p/{made.public_id}"] / "h264-720p/00001.m4s").resolve() == media.resolve()
    shutil.rmtree(index)
    with app_client(env) as client:  # no front: no links
        assert client.get(f"/play/{made.public_id}/master.m3u8").status_code == 200
    assert not index.exists()


@pytest.mark.parametrize("fast_path", [True, False])
def test_the_gate_links_an_id_and_sends_nginx_back_or_elsewhere(tmp_path, fast_path):
    from core.origin.front_index import bucket
    from core.storage import open_storage
    from tests.helpers import app_client
    from tests.origin.fabricate import fabricate

    index = tmp_path / "ids"
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data")}
    with app_client(env, front_index=str(index), origin_fast_path=fast_path) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, open_storage(ctx.settings.resolved_storage_url))
        live = client.post("/v1/live-streams", json={})
        live_id = live.json()["playback_ids"][0]["id"]
        window = bucket(time.time())

        def gate(path: str) -> str:
            answer = client.get(f"/_abr/front/admit/{path}")
            assert answer.status_code == 200 and answer.content == b""
            assert set(answer.headers) - {"content-length", "x-request-id", "date", "server"} == {"x-accel-redirect"}
            return answer.headers["x-accel-redirect"]

        segment = "h264-720p/00001.m4s"
        assert gate(f"{window}/p/{made.public_id}/{segment}") == f"/play/{made.public_id}/{segment}"
        assert (index / window / "p" / made.public_id).is_symlink()
        token = "a.b.c"
        assert gate(f"{window}/s/{made.signed_id}/{segment}?token={token}") \
            == f"/play/{made.signed_id}/{segment}?token={token}"  # nginx checked the token already
        # The file need not be there: nginx, finding the link, answers the 404 itself.
        assert gate(f"{window}/p/{made.public_id}/h264-720p/00099.m4s") == f"/play/{made.public_id}/h264-720p/00099.m4s"
        assert gate(f"{window}/s/{made.public_id}/{segment}") == "@api"  # a public id asked with a token
        assert gate(f"{window}/p/{made.signed_id}/{segment}") == "@api"  # a signed one without: the API's 403
        assert gate(f"{window}/p/nosuchid0/{segment}") == "@unknown"
        assert gate(f"{window}/p/{live_id}/{segment}") == "@api"
        assert not (index / window / "p" / live_id).exists()
        for junk in (f"{bucket(time.time() + 20)}/p/{made.public_id}/{segment}",  # a window not begun
                     f"zz/p/{made.public_id}/{segment}", f"{window}/x/{made.public_id}/{segment}",
                     f"{window}/p/{made.public_id}/presentation.json", f"{window}/p/NOT-AN-ID/{segment}"):
            assert gate(junk) == "@api", junk
    with app_client(env, origin_fast_path=fast_path) as client:  # no front: no gate
        assert client.get(f"/_abr/front/admit/{window}/p/{made.public_id}/{segment}").status_code == 404


def test_behind_the_front_manifests_say_how_long_nginx_may_keep_them(tmp_path):
    from core.storage import open_storage
    from tests.helpers import app_client
    from tests.origin.fabricate import fabricate

    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path / "data"), "ABR_SIGNING_KEY": "k" * 40}
    with app_client(env, front_index=str(tmp_path / "ids")) as client:
        ctx = client.app.state.ctx
        made = fabricate(ctx.engine, open_storage(ctx.settings.resolved_storage_url))
        for _ in range(2):  # the routes, then the fast path
            public = client.get(f"/play/{made.public_id}/master.m3u8")
            assert public.headers["x-accel-expires"] == "5" and "x-abr-max-age" not in public.headers
        from core.services.playback import SigningKeys, sign_token

        keys = SigningKeys.from_settings(ctx.settings.signing_key, ctx.settings.signing_keys_previous,
                                         ctx.settings.signing_key_id)
        tok = sign_token(made.signed_id, keys=keys, expires_at=int(time.time()) + 100)
        for _ in range(2):
            signed = client.get(f"/play/{made.signed_id}/manifest.mpd?token={tok}")
            assert signed.headers["x-accel-expires"] == "5" and signed.headers["x-abr-max-age"] == "86400"
            assert signed.headers["cache-control"] in ("public, max-age=100", "public, max-age=99")
    with app_client(env) as client:
        assert "x-accel-expires" not in client.get(f"/play/{made.public_id}/master.m3u8").headers


def test_the_fronts_own_files_go_to_a_roomy_memory_filesystem_else_the_temp_dir(tmp_path, monkeypatch):
    from cli import front as cli_front

    assert cli_front.scratch_parent(tmp_path) == str(tmp_path)  # writable, with room
    assert cli_front.scratch_parent(tmp_path / "absent") is None
    monkeypatch.setattr(cli_front, "MEMORY_DIR_MIN_FREE", 1 << 62)  # Docker's 64 MB /dev/shm, say
    assert cli_front.scratch_parent(tmp_path) is None
