"""Tests never skip in silence: CI fails unlisted skips, and the MPD schema ships with the tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.core.media.manifests.mpd_schema import SCHEMA_DIR, validate_mpd
from tests.skip_policy import CI_SKIP_ALLOWED

SAMPLE = '''
import pytest

def test_runs():
    assert True

def test_needs_something_missing():
    pytest.skip("something is not installed")

@pytest.mark.skipif(True, reason="never here")
def test_marked():
    pass
'''


OPTIONAL = '''
import pytest

no_such = pytest.importorskip("no_such_module_abr")  # skips the whole module at collection


def test_never_collected():
    pass
'''


def _pytest(tmp_path, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "test_optional.py").write_text(OPTIONAL)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.skip_policy", "-p", "no:cacheprovider",
                           "test_sample.py", "test_optional.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_under_ci_an_unlisted_skip_fails_the_run(tmp_path):
    done = _pytest(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "not on the CI skip allow-list" in done.stdout and "something is not installed" in done.stdout
    assert "no_such_module_abr" in done.stdout  # the module-level importorskip too
    assert "1 failed, 1 passed, 2 errors" in done.stdout, done.stdout
    assert "skips: 3 (0 on the CI allow-list, 3 not: they failed this CI run)" in done.stdout


def test_outside_ci_skips_stay_skips_and_one_line_counts_them(tmp_path):
    done = _pytest(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 3 skipped" in done.stdout, done.stdout
    assert "skips: 3 (0 on the CI allow-list, 3 not: these fail with CI=true)" in done.stdout


def test_the_allow_list_is_short_and_says_why():
    assert len(CI_SKIP_ALLOWED) <= 5
    for nodeid, why in CI_SKIP_ALLOWED.items():
        path, _, name = nodeid.partition("::")
        assert (REPO_ROOT / path).is_file() and f"def {name}(" in (REPO_ROOT / path).read_text(), nodeid
        assert len(why) > 20, nodeid


def test_the_dash_schema_is_vendored_with_its_provenance_and_validates():
    provenance = (SCHEMA_DIR / "PROVENANCE.md").read_text()
    assert SCHEMA_DIR.is_relative_to(REPO_ROOT) and "MPEGGroup/DASHSchema" in provenance
    for name in ("DASH-MPD.xsd", "xlink.xsd"):
        digest = hashlib.sha256((SCHEMA_DIR / name).read_bytes()).hexdigest()
        assert f"{digest}  tests/dash_schema/{name}" in provenance, name
    validate_mpd('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" '
                 'type="static" minBufferTime="PT2S" mediaPresentationDuration="PT4S"><Period/></MPD>')
    try:
        validate_mpd('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period/></MPD>')
    except AssertionError as exc:
        assert "profiles" in str(exc) or "minBufferTime" in str(exc)
    else:
        raise AssertionError("an MPD without @profiles/@minBufferTime validated")
