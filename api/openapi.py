"""The OpenAPI document as the API really behaves, and the pages that show it, offline.

FastAPI generates the document from the routes; `document` then fixes it in
one place instead of on every route:

- every 4xx an operation can answer is listed with the one error body
  (`{"error": {code, message}}`) and an example message the API sends; the
  default 422 `{"detail": [...]}` shape, which this API never sends, is gone.
  Routes that need a key can answer 401/403/429; routes with a path
  parameter 404; routes with parameters or a body 422; routes with a body 413.
- every operation has example parameters, bodies and answers
  (api/openapi_examples.py), and the media types the origin really sends;
- the bearer scheme comes from `api/deps.py` (HTTPBearer), so the Authorize
  button of `/docs` fills the header every keyed operation needs.

`/docs` (Swagger UI) and `/redoc` (ReDoc) load their scripts from the pinned,
checksummed files in `player/vendor/` (see player/vendor.py), not from a CDN:
they work on a machine without internet access.
"""

from __future__ import annotations

from copy import deepcopy
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from api.openapi_examples import ERROR_OVERRIDES, ERRORS, PARAMETERS, PUBLIC_ERRORS, REQUESTS, RESPONSES
from player.site import Site

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
KEYED = (401, 403, 429)  # a missing/wrong key, a key without the scope, the per-key rate limit
# Statuses some operations answer that FastAPI cannot see (raised deep in services or middleware).
EXTRA: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/v1/assets"): (400, 413, 415, 422),
    ("post", "/v1/assets/{asset_id}/text-tracks"): (400, 409, 413, 415),
    ("post", "/v1/live-streams"): (422,),
    ("post", "/tus/{upload_id}"): (400, 409, 412, 413),
    ("patch", "/tus/{upload_id}"): (400, 409, 412, 413, 415),
    ("head", "/tus/{upload_id}"): (412,),
    ("delete", "/tus/{upload_id}"): (409, 412),
    ("get", "/play/{playback_id}/thumbnail.jpg"): (400, 503),
}
_TEXT = {"type": "string"}
# Answers of their own shape instead of the error body: (method, path) -> {status: (media type, schema, example)}.
OWN_ERRORS: dict[tuple[str, str], dict[int, tuple[str, dict, object]]] = {
    # the embed shows a page
    ("get", "/player/{playback_id}"): {404: ("text/html", _TEXT, "<!doctype html>… Video not found …")},
    # the same body as 200, with "failing" (checks only for an admin key or a loopback client)
    ("get", "/readyz"): {503: ("application/json", {
        "type": "object", "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["failing"]}, "checks": {"type": "object"}}},
        {"status": "failing"})},
}
_BINARY = {"type": "string", "format": "binary"}


def install(app: FastAPI) -> None:
    """Serve the fixed-up document at `app.openapi_url` and the offline `/docs` and `/redoc`.

    The app must be created with `docs_url=None, redoc_url=None` (FastAPI's own pages use a CDN).
    """

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        site, root = _site(request), request.scope.get("root_path", "")
        return _no_cache(get_swagger_ui_html(
            openapi_url=root + app.openapi_url, title=f"{app.title} API",
            swagger_js_url=root + site.url("vendor/swagger-ui-bundle.js"),
            swagger_css_url=root + site.url("vendor/swagger-ui.css"),
            swagger_favicon_url=root + site.url("favicon.svg"),
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True}))

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        site, root = _site(request), request.scope.get("root_path", "")
        page = get_redoc_html(openapi_url=root + app.openapi_url, title=f"{app.title} API",
                              redoc_js_url=root + site.url("vendor/redoc.standalone.js"),
                              redoc_favicon_url=root + site.url("favicon.svg"), with_google_fonts=False)
        html = page.body.decode().replace("</head>", _HIDE_REMOTE_LOGO, 1)
        return _no_cache(HTMLResponse(html))


def _site(request: Request) -> Site:
    extra = request.app.state.ctx.extra  # the player router keeps the same Site here
    if "player_site" not in extra:
        extra["player_site"] = Site()
    return extra["player_site"]


# Nothing from another site, ever: ReDoc's sidebar names a logo on cdn.redoc.ly, which this
# keeps the browser from even asking for. Both pages start their bundle with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
_HIDE_REMOTE_LOGO = "<style>a[href*='redocly.com'] img { display: none; }</style>\n</head>"


def _no_cache(response: HTMLResponse) -> HTMLResponse:
    response.headers["Cache-Control"] = "no-cache"  # the page names hashed script URLs: revalidate it
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def build(app: FastAPI) -> dict:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                      tags=app.openapi_tags, servers=app.servers)
    document(doc)
    return doc


def document(doc: dict) -> dict:
    """Fix `doc` in place (see the module docstring); returns it."""
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            if method in ("get", "put", "post", "delete", "options", "head", "patch"):
                _errors(op, method, path)
                _examples(op, method, path)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    if "HTTPValidationError" not in str(doc.get("paths")):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return doc


def error_statuses(op: dict, method: str, path: str) -> list[int]:
    """Every 4xx/5xx status this operation can answer."""
    found = {int(s) for s in op.get("responses", {}) if s.isdigit() and int(s) >= 400}
    if op.get("security"):
        found.update(KEYED)
    if "{" in path:
        found.add(404)
    if op.get("parameters") or op.get("requestBody"):
        found.add(422)
    if op.get("requestBody"):
        found.add(413)  # bodies are bounded
    found.update(EXTRA.get((method, path), ()))
    return sorted(found)


def error_example(status: int, method: str, path: str) -> dict:
    public = PUBLIC_ERRORS if path.startswith(("/play/", "/player/", "/tus/")) else {}
    code, message = ERROR_OVERRIDES.get((method, path), {}).get(status) or public.get(status) or ERRORS.get(
        status, ("error", HTTPStatus(status).phrase.lower()))
    return {"error": {"code": code, "message": message}}


def _errors(op: dict, method: str, path: str) -> None:
    responses = op.setdefault("responses", {})
    for status in error_statuses(op, method, path):
        old = responses.get(str(status), {})
        description = old.get("description") or HTTPStatus(status).phrase
        if description in ("Validation Error", "Unprocessable Entity"):
            description = "Unprocessable: a parameter or the body is not valid"
        own = OWN_ERRORS.get((method, path), {}).get(status)
        content = {own[0]: {"schema": own[1], "example": own[2]}} if own else {
            "application/json": {"schema": ERROR_REF, "example": error_example(status, method, path)}}
        responses[str(status)] = {"description": description, "content": content}


def _examples(op: dict, method: str, path: str) -> None:
    for param in op.get("parameters", []):
        if param.get("name") in PARAMETERS:
            param["example"] = PARAMETERS[param["name"]]
    bodies = REQUESTS.get((method, path), {})
    for media_type, content in op.get("requestBody", {}).get("content", {}).items():
        if media_type in bodies:
            content["example"] = deepcopy(bodies[media_type])
    if (method, path) not in RESPONSES:
        return
    status, examples = RESPONSES[(method, path)]
    response = op.setdefault("responses", {}).setdefault(status, {"description": HTTPStatus(int(status)).phrase})
    generated = response.get("content", {}).get("application/json", {}).get("schema")
    content = {}
    for media_type, value in examples.items():
        if media_type == "application/json":
            schema = generated or {"type": "object"}
        else:
            schema = _TEXT if isinstance(value, str) and value != "(binary)" else _BINARY
        content[media_type] = {"schema": schema, "example": deepcopy(value)}
    response["content"] = content
