"""The OpenAPI document tells the truth: the real error body, examples that match their schemas, the bearer scheme."""

from __future__ import annotations

import jsonschema
import pytest

from tests.helpers import app_client

METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path_factory.mktemp("openapi"))}) as client:
        yield client.get("/openapi.json").json()


def _operations(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method in METHODS:
                yield method, path, op


def _validate(doc: dict, schema: dict, value) -> None:
    # The document is the root, so `#/components/schemas/…` references resolve (OpenAPI 3.1 = JSON Schema 2020-12).
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(value)


def test_every_documented_error_is_the_error_body_with_a_valid_example(doc):
    checked = 0
    for method, path, op in _operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            if (path, status) in (("/player/{playback_id}", "404"), ("/readyz", "503")):
                continue  # the embed shows a "not found" page; /readyz answers its own body

            assert list(content) == ["application/json"], (method, path, status)
            media = content["application/json"]
            assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            _validate(doc, media["schema"], media["example"])
            assert set(media["example"]["error"]) == {"code", "message"}
            checked += 1
    assert checked > 150
    # FastAPI's `{"detail": [...]}` validation body is never sent, so it is not documented either.
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert "HTTPValidationError" not in str(doc["paths"])


def test_every_operation_documents_the_4xx_it_can_answer(doc):
    ops = {(m, p): op for m, p, op in _operations(doc)}
    statuses = {key: {int(s) for s in op["responses"]} for key, op in ops.items()}
    assert {400, 401, 403, 413, 415, 422, 429} <= statuses[("post", "/v1/assets")]
    assert {401, 403, 404, 422, 429} <= statuses[("patch", "/v1/assets/{asset_id}")]
    assert {409} <= statuses[("post", "/v1/assets/{asset_id}/text-tracks")]
    assert {404} <= statuses[("get", "/play/{playback_id}/master.m3u8")]
    for (method, path), op in ops.items():
        if op.get("parameters") or op.get("requestBody"):
            assert 422 in statuses[(method, path)], (method, path)
        if "{" in path:
            assert 404 in statuses[(method, path)], (method, path)


def test_keyed_operations_carry_the_bearer_scheme(doc):
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["apiKey"]["description"]}
    keyed = [(m, p) for m, p, op in _operations(doc) if op.get("security") == [{"apiKey": []}]]
    v1 = [(m, p) for m, p, _ in _operations(doc) if p.startswith("/v1/")]
    assert set(v1) <= set(keyed)  # every management operation needs a key, and says so
    for method, path, op in _operations(doc):
        if op.get("security"):
            assert {"401", "403", "429"} <= set(op["responses"]), (method, path)


def test_every_operation_has_example_requests_and_answers(doc):
    for method, path, op in _operations(doc):
        for param in op.get("parameters", []):
            if param["in"] in ("path", "query"):
                assert "example" in param, (method, path, param["name"])
                _validate(doc, param["schema"], param["example"])
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            assert "example" in media, (method, path, media_type)
            if media_type == "application/json":
                _validate(doc, media["schema"], media["example"])
        success = [(s, r) for s, r in op["responses"].items() if 200 <= int(s) < 300]
        assert success, (method, path)
        if path.startswith("/tus/") or all(s == "204" for s, _ in success):
            continue  # tus answers and deletions carry no body
        for status, response in success:
            assert response.get("content"), (method, path, status)
            for media_type, media in response["content"].items():
                assert "example" in media, (method, path, status, media_type)
                if media_type == "application/json":
                    _validate(doc, media["schema"], media["example"])


def test_the_origin_documents_the_media_types_it_sends(doc):
    assert list(doc["paths"]["/play/{playback_id}/master.m3u8"]["get"]["responses"]["200"]["content"]) == [
        "application/vnd.apple.mpegurl"]
    assert list(doc["paths"]["/play/{playback_id}/manifest.mpd"]["get"]["responses"]["200"]["content"]) == [
        "application/dash+xml"]


def test_real_errors_have_the_documented_shape(tmp_path, doc):
    error_schema = {"$ref": "#/components/schemas/ErrorBody"}
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path)}) as client:
        answers = [client.get("/v1/assets", params={"limit": 1000}),  # 422 from parameter validation
                   client.patch("/v1/assets/as_nothing", json={"name": "x"}),  # 404
                   client.patch("/v1/assets/as_nothing", json={"nickname": "x"}),  # 422: unknown field
                   client.get("/v1/assets", headers={"Authorization": "Bearer wrong"})]  # 401
    assert [r.status_code for r in answers] == [422, 404, 422, 401]
    for r in answers:
        _validate(doc, error_schema, r.json())
    assert "limit" in answers[0].json()["error"]["message"]


def test_docs_pages_load_nothing_from_other_sites(tmp_path):
    with app_client({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path)}) as client:
        for page in ("/docs", "/redoc"):
            r = client.get(page)
            assert r.status_code == 200
            assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text, r.text
            for src in [part.split('"')[0] for part in r.text.split('src="')[1:]]:
                script = client.get(src)
                assert script.status_code == 200 and "immutable" in script.headers["cache-control"], src
