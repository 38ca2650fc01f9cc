"""The API against its own OpenAPI document: no 5xx, and no response its schema does not allow.

schemathesis (4.x) generates requests for every operation of `/openapi.json`
and sends them to the in-process ASGI app, authenticated with a valid key.
Nothing is encoded: no worker runs, and random multipart bodies are refused
at the probe. Bounded: 25 examples per operation, explicit + generate phases.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")

from hypothesis import HealthCheck, Phase, settings

from cli.migrate import upgrade
from tests.helpers import TEST_KEY, settings_from

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
# Streams that only end when an asset finishes or a live source stops: nothing here makes them end.
STREAMING = r"^/v1/assets/\{asset_id\}/events$|^/play/\{playback_id\}/preview\.mjpeg$"


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    from api.app import create_app

    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    settings = settings_from({"ABR_ENV": "test", "ABR_DATA_DIR": str(data_dir)}, api_keys=TEST_KEY,
                             rate_limit=0)  # 429s are tested elsewhere; here they would hide everything else
    upgrade(settings.resolved_database_url)
    app = create_app(settings)
    yield schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=STREAMING)
    app.state.ctx.engine.dispose()


def _failures_of(operation, mode, checks, max_examples: int) -> list[str]:
    """Run `max_examples` generated cases of one operation; the distinct failures, as text."""
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable

    found: dict[str, str] = {}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=max_examples, deadline=None, phases=[Phase.explicit, Phase.generate],
              derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        try:
            case.call_and_validate(headers=AUTH, checks=checks)
        except (AssertionError, BaseExceptionGroup) as exc:  # a schemathesis FailureGroup, or one failure
            text = str(exc).strip()
            found.setdefault(text.splitlines()[0] if text else type(exc).__name__, text[:1500])

    try:
        run()
    except Unsatisfiable:  # nothing to negate (an operation without parameters or body)
        pass
    return [f"{operation.label} [{mode.value}]: {text}" for text in found.values()]


@pytest.mark.timeout(300)
def test_api_conforms_to_its_openapi_document(api_schema):
    """Positive cases: every documented check. Negative cases (invalid input): never a 5xx."""
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    conformance = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_schema_conformance]
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        failures += _failures_of(operation, GenerationMode.POSITIVE, conformance, 25)
        failures += _failures_of(operation, GenerationMode.NEGATIVE, [not_a_server_error], 10)
    assert operations >= 20
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
