"""docker/ stays valid without a Docker engine: compose structure, health checks, files, commands, dashboards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

DOCKER = Path(__file__).resolve().parents[2] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_every_service_has_a_healthcheck(compose):
    services = compose["services"]
    assert {"postgres", "redis", "minio", "api", "worker-transcode", "worker-live", "cache", "ingest",
            "srt-ingest"} <= set(services)
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"


def test_referenced_files_exist(compose):
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = (DOCKER / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
            if "target" in build:
                assert f"AS {build['target']}" in (context / build["dockerfile"]).read_text(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), f"{name}: {source} missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
        for dep in service.get("depends_on", {}):
            assert dep in compose["services"], f"{name} depends on unknown {dep}"


def test_app_commands_are_valid_abr_commands(compose):
    from cli.main import build_parser

    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command[0] == "abr" and "--help" not in command:
            build_parser().parse_args(command[1:])  # SystemExit on an unknown option


def test_queues_are_split_for_live(compose):
    live = compose["services"]["worker-live"]["command"]
    transcode = compose["services"]["worker-transcode"]["command"]
    assert live[live.index("--queues") + 1] == "live"
    assert "live" not in transcode[transcode.index("--queues") + 1].split(",")


def test_prometheus_and_dashboard_use_metrics_that_exist():
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    assert {job["job_name"] for job in config["scrape_configs"]} == {"abr-api", "abr-workers"}
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "abr-origin.json").read_text())
    source = (Path(__file__).resolve().parents[2] / "core" / "metrics.py").read_text()
    known = set(re.findall(r'"(abr_[a-z_]+)"', source)) | {"abr_jobs", "abr_assets", "abr_live_streams"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"\babr_[a-z_]+", target["expr"]):
                base = re.sub(r"_(total|bucket|sum|count)$", "", name)
                assert base in known, f"{panel['title']}: unknown metric {name}"


SECRETS = {"api": ["ABR_SIGNING_KEY", "ABR_API_KEYS", "ABR_INGEST_SECRET", "ABR_METRICS_TOKEN",
                   "AWS_SECRET_ACCESS_KEY"],
           "postgres": ["POSTGRES_PASSWORD"], "minio": ["MINIO_ROOT_PASSWORD"], "ingest": ["ABR_INGEST_SECRET"]}


def test_secrets_come_from_the_environment_with_no_default(compose):
    text = (DOCKER / "compose.yaml").read_text()
    assert "change-me" not in text.replace("change-me-ingest-secret|", "")  # only the template's placeholder, replaced
    for service, names in SECRETS.items():
        environment = compose["services"][service]["environment"]
        for name in names:
            value = environment[name]
            assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), f"{service}: {name}={value}"
    # Anything named like a secret is required (`:?`), never defaulted (`:-`, `-`).
    for var, operator in re.findall(r"\$\{([A-Z0-9_]+)(:?[-?=+]?)", text):
        if re.search(r"SECRET|PASSWORD|TOKEN|_KEY", var):
            assert operator == ":?", f"${{{var}{operator}…}} has a default"
    database_url = compose["services"]["api"]["environment"]["ABR_DATABASE_URL"]
    assert "${ABR_POSTGRES_PASSWORD:?" in database_url


def test_ingest_and_prometheus_get_the_real_secrets(compose):
    from core.live.ingest import _TEMPLATE_SECRET

    ingest = " ".join(compose["services"]["ingest"]["command"])
    assert f"s|{_TEMPLATE_SECRET}|$$ABR_INGEST_SECRET|g" in ingest  # the template's placeholder never goes live
    assert _TEMPLATE_SECRET in (DOCKER / "nginx-rtmp.conf").read_text()
    assert compose["secrets"]["metrics_token"] == {"environment": "ABR_METRICS_TOKEN"}
    assert "metrics_token" in compose["services"]["prometheus"]["secrets"]
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    api_job = next(job for job in config["scrape_configs"] if job["job_name"] == "abr-api")
    assert api_job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/metrics_token"}
