"""`/docs` and `/redoc` render every operation with no network: every request to another host is aborted.

The API runs in-process under uvicorn on a free loopback port; Chromium
(Debian's, via Playwright) loads the pages with a route handler that aborts
and records any request that is not for 127.0.0.1. The Authorize button is
used for real: a keyed request made from the page succeeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import free_port
from tests.helpers import TEST_KEY

OPERATIONS_AT_LEAST = 40


@pytest.fixture(scope="module")
def api_url(tmp_path_factory) -> Iterator[str]:
    import uvicorn

    from api.app import create_app
    from cli.migrate import upgrade
    from tests.helpers import settings_from

    settings = settings_from({"ABR_ENV": "test", "ABR_DATA_DIR": str(tmp_path_factory.mktemp("docs") / "data")},
                             api_keys=TEST_KEY)
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.state.ctx.engine.dispose()


@pytest.fixture
def offline_page(chromium_browser):
    """A page whose every request to anything but 127.0.0.1 is aborted; `page.blocked` lists them."""
    context = chromium_browser.new_context()
    page = context.new_page()
    page.blocked, page.errors = [], []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))

    def route(r) -> None:
        if urlsplit(r.request.url).hostname in ("127.0.0.1",) or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            page.blocked.append(r.request.url)
            r.abort("internetdisconnected")

    context.route("**/*", route)
    yield page
    context.close()


def test_swagger_ui_renders_offline_and_authorize_works(api_url, offline_page):
    page = offline_page
    page.goto(f"{api_url}/docs", wait_until="load")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= OPERATIONS_AT_LEAST
    # Authorize with the API key, then run GET /v1/assets from the page.
    page.click("button.authorize")
    page.fill(".modal-ux input", TEST_KEY)
    page.click(".modal-ux .auth-btn-wrapper button.authorize")
    page.click(".modal-ux button.btn-done")
    op = page.locator("#operations-assets-list_assets_v1_assets_get")
    op.locator(".opblock-summary").first.click()
    op.locator("button.try-out__btn").click()
    op.locator("button.execute").click()
    status = op.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=15_000)
    assert status.inner_text().strip().startswith("200"), op.locator(".live-responses-table").inner_text()
    assert f"Bearer {TEST_KEY}" in op.locator(".curl-command").inner_text()  # the header the button set
    # The documented error body is shown, not FastAPI's `{"detail": …}`.
    assert "HTTPValidationError" not in page.content()
    assert page.blocked == [] and page.errors == []


def test_redoc_renders_offline(api_url, offline_page):
    page = offline_page
    page.goto(f"{api_url}/redoc", wait_until="load")
    page.wait_for_selector("[data-section-id^='operation/']", timeout=60_000)
    assert page.locator("[data-section-id^='operation/']").count() >= OPERATIONS_AT_LEAST
    assert page.get_by_text("Update Asset").count() >= 1
    assert page.blocked == [] and page.errors == []
