"""The compose `prometheus` service: it scrapes every compose service that serves metrics, on a port that
service listens on, and loads the one alert rules file (observability/alerts/sentiment.rules.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.charts.chartlib import run, tool
from tests.deploy.conftest import REPO_ROOT

SCRAPE_CONFIG = REPO_ROOT / "compose" / "prometheus.yml"
RULES = REPO_ROOT / "observability" / "alerts" / "sentiment.rules.yaml"
# Compose service -> (container port, metrics path) it serves Prometheus metrics on.
SERVES_METRICS = {
    "inference": (8000, "/metrics"),
    "mlflow": (5000, "/metrics"),
    "prefect-server": (4200, "/api/metrics"),
}


def scrape_jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]}


def test_every_service_with_metrics_is_scraped_under_its_chart_job_name() -> None:
    jobs = scrape_jobs()
    assert set(jobs) == {f"sentiment-{name}" for name in SERVES_METRICS}
    for name, (port, path) in SERVES_METRICS.items():
        job = jobs[f"sentiment-{name}"]
        assert job["static_configs"] == [{"targets": [f"{name}:{port}"]}], job
        assert job.get("metrics_path", "/metrics") == path, job


def test_the_scraped_services_turn_their_metrics_on(services: dict[str, Any]) -> None:
    assert services["mlflow"]["environment"]["MLFLOW_EXPOSE_PROMETHEUS"]
    assert services["prefect-server"]["environment"]["PREFECT_SERVER_METRICS_ENABLED"] == "true"
    ports = {int(p["target"]) for p in services["inference"].get("ports", [])}
    assert SERVES_METRICS["inference"][0] in ports


def test_prometheus_loads_the_shared_rules_file_and_keeps_samples_on_a_volume(services: dict[str, Any]) -> None:
    prometheus = services["prometheus"]
    mounts = {m["target"]: m for m in prometheus["volumes"]}
    rules = mounts["/etc/prometheus/sentiment.rules.yaml"]
    assert rules["source"] == str(RULES), rules
    assert rules["read_only"], rules
    assert mounts["/etc/prometheus/prometheus.yml"]["source"] == str(SCRAPE_CONFIG)
    assert mounts["/prometheus"]["type"] == "volume"
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/sentiment.rules.yaml"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_promtool_accepts_the_scrape_config_and_the_rules(tmp_path: Path) -> None:
    # The container path of the rules file, pointed at the repository's copy (what the compose mount provides).
    config = SCRAPE_CONFIG.read_text().replace("/etc/prometheus/sentiment.rules.yaml", str(RULES))
    (tmp_path / "prometheus.yml").write_text(config)
    result = run([tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
