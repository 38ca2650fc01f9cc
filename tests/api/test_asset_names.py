"""Assets have names and metadata: from the upload's file name, set in settings or PATCH, searched with `?q=`."""

from __future__ import annotations

import json

import pytest

from core.services.assets import name_from_url, search_filter
from tests.helpers import app_client, upload_asset
from tests.media_fixtures import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("names") / "Team Meeting 2026.mp4", duration=1.0, width=160, height=120)


@pytest.fixture
def client(backend_env):
    with app_client(backend_env) as c:
        yield c


def test_the_upload_names_the_asset_and_settings_can_say_more(client, clip):
    named_by_file = upload_asset(client, clip)
    assert named_by_file["name"] == "Team Meeting 2026.mp4"
    assert named_by_file["meta"] == {"title": None, "creator_id": None, "external_id": None}
    given = upload_asset(client, clip, {"name": "Kick-off", "passthrough": "crm:991",
                                        "meta": {"title": "Q1 kick-off", "creator_id": "u_7", "external_id": "EXT-1"}})
    assert (given["name"], given["passthrough"]) == ("Kick-off", "crm:991")
    assert given["meta"] == {"title": "Q1 kick-off", "creator_id": "u_7", "external_id": "EXT-1"}
    assert "name" not in given["settings"] and "meta" not in given["settings"]  # how to encode, not what it is
    assert client.get(f"/v1/assets/{given['id']}").json()["meta"]["external_id"] == "EXT-1"


def test_patch_changes_only_what_it_names(client, clip):
    asset = upload_asset(client, clip, {"meta": {"title": "Draft", "external_id": "E-9"}, "passthrough": "p1"})
    r = client.patch(f"/v1/assets/{asset['id']}", json={"name": "Final", "meta": {"title": "Final cut"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Final" and body["passthrough"] == "p1"
    assert body["meta"] == {"title": "Final cut", "creator_id": None, "external_id": "E-9"}
    assert body["updated_at"] >= asset["updated_at"]
    cleared = client.patch(f"/v1/assets/{asset['id']}", json={"passthrough": None, "meta": None}).json()
    assert cleared["passthrough"] is None and cleared["name"] == "Final"
    assert cleared["meta"] == {"title": None, "creator_id": None, "external_id": None}
    assert client.get(f"/v1/assets/{asset['id']}").json()["name"] == "Final"


@pytest.mark.parametrize(("body", "status", "words"), [
    pytest.param({"name": "x" * 256}, 422, "name", id="name-too-long"),
    pytest.param({"meta": {"external_id": "x" * 129}}, 422, "external_id", id="external-id-too-long"),
    pytest.param({"meta": {"rating": 5}}, 422, "rating", id="unknown-meta-key"),
    pytest.param({"status": "ready"}, 422, "status", id="not-settable"),
])
def test_patch_refuses_what_it_cannot_store(client, clip, body, status, words):
    asset = upload_asset(client, clip)
    r = client.patch(f"/v1/assets/{asset['id']}", json=body)
    assert r.status_code == status and words in r.json()["error"]["message"], r.text


def test_patch_of_an_unknown_asset_is_404(client):
    r = client.patch("/v1/assets/as_missing", json={"name": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_search_covers_name_title_and_external_id_in_any_case(client, clip):
    ids = {}
    for key, settings in {"by-name": {"name": "Holiday_Party 100%"}, "by-title": {"meta": {"title": "The HOLIDAY recap"}},
                          "by-ext": {"meta": {"external_id": "holiday-77"}}, "other": {"name": "Budget"}}.items():
        ids[key] = upload_asset(client, clip, settings)["id"]

    def found(q: str) -> set[str]:
        page = client.get("/v1/assets", params={"q": q, "limit": 100}).json()
        assert page["count"] == len(page["data"])
        return {a["id"] for a in page["data"]}

    assert found("holiday") == {ids["by-name"], ids["by-title"], ids["by-ext"]}
    assert found("BUDGET") == {ids["other"]}
    assert found("100%") == {ids["by-name"]}  # % is a character, not a wildcard
    assert found("y_P") == {ids["by-name"]}  # so is _
    assert found("_") == {ids["by-name"]}
    assert found("nothing like it") == set()
    assert len(found("")) >= 4  # empty: no filter
    assert client.get("/v1/assets", params={"q": "x" * 201}).status_code == 422


def test_an_import_is_named_after_its_url(client):
    r = client.post("/v1/assets", json={"input_url": "https://media.example/talks/My%20Talk.mp4?sig=abc"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "My Talk.mp4"
    r = client.post("/v1/assets", json={"input_url": "https://media.example/v/1", "name": "Given"})
    assert r.json()["name"] == "Given"


@pytest.mark.parametrize(("url", "name"), [
    ("https://a.example/x/clip.mp4", "clip.mp4"),
    ("https://a.example/x/dir/", "dir"),
    ("https://a.example/", None),
    ("https://a.example/a%0Ab.mp4", "ab.mp4"),  # control characters never reach a terminal
])
def test_name_from_url(url, name):
    assert name_from_url(url) == name


def test_search_filter_without_query_is_no_filter():
    assert str(search_filter(None)) == "true"
    assert str(search_filter("   ")) == "true"


def test_a_file_under_another_field_name_is_a_400_that_names_the_field(client, clip):
    with open(clip, "rb") as fh:
        r = client.post("/v1/assets", files={"video": (clip.name, fh, "video/mp4")},
                        data={"settings": json.dumps({})})
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "'file'" in message and "'video'" in message and "-F file=@" in message


def test_names_travel_with_tus_uploads(client, clip):
    import base64

    up = client.post("/v1/uploads", json={"settings": {"meta": {"creator_id": "u_1"}}}).json()
    data = clip.read_bytes()
    meta = "filename " + base64.b64encode("Übung 3.mp4".encode()).decode()
    tus = {"Tus-Resumable": "1.0.0"}
    r = client.post(up["url"], headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": meta})
    assert r.status_code == 201, r.text
    r = client.patch(r.headers["location"], content=data, headers={
        **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 204, r.text
    done = client.get(f"/v1/uploads/{up['id']}").json()
    asset = client.get(f"/v1/assets/{done['asset_id']}").json()
    assert asset["name"] == "Übung 3.mp4" and asset["meta"]["creator_id"] == "u_1"
