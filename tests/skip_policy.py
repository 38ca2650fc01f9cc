"""No silent skips: with CI=true a skip that is not on the allow-list below fails the run.

A skip hides a test that did not run; in CI everything the suite needs is
installed (`.ci/run`), so a skip there means something is missing or broken
(the DASH schema check once skipped and cut off the rest of several
end-to-end tests). Outside CI skips stay skips, and every run ends with one
line that counts them. Loaded by tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import os

import pytest

# test (path::name, without parameters) -> why skipping it can be right even in CI.
CI_SKIP_ALLOWED: dict[str, str] = {
    "tests/origin/test_fastpath.py::test_read_cached_refuses_to_wait_for_the_disk":
        "on a tmpfs/ramfs checkout every page stays in memory: there is no disk read to refuse",
    "tests/core/media/test_runner.py::test_child_dies_with_its_parent":
        "PR_SET_PDEATHSIG exists on Linux only (CI is Linux: it runs there)",
}

_counts = {"allowed": 0, "unlisted": 0}
_unlisted: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _allowed(nodeid: str) -> bool:
    return nodeid.split("[", 1)[0] in CI_SKIP_ALLOWED


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _judge(report) -> None:
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    if _allowed(report.nodeid):
        _counts["allowed"] += 1
        return
    _counts["unlisted"] += 1
    _unlisted.append(report.nodeid)
    if in_ci():
        reason = _reason(report)
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI, and {report.nodeid.split('[', 1)[0]} is not on the CI skip allow-list "
                           f"(tests/skip_policy.py): {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _judge(outcome.get_result())


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report):
    # A module-level skip (`pytest.importorskip`) skips every test in it at collection time.
    _judge(report)


def pytest_terminal_summary(terminalreporter):
    total = _counts["allowed"] + _counts["unlisted"]
    verdict = "they failed this CI run" if in_ci() else "these fail with CI=true"
    line = (f"skips: {total} ({_counts['allowed']} on the CI allow-list, {_counts['unlisted']} not: {verdict})"
            if _counts["unlisted"] else f"skips: {total} ({_counts['allowed']} on the CI allow-list, 0 not)")
    terminalreporter.write_line(line)
