"""The chart's monitoring: its own Prometheus (kind profile) or the Operator's PodMonitor and PrometheusRule.

One source of truth: the rules the chart ships are observability/alerts/sentiment.rules.yaml, byte for byte (its
own server) or group for group (PrometheusRule). The generated scrape config passes `promtool check config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.charts.chartlib import RELEASE, REPO_ROOT, by_kind, documents, helm_template, run, tool

RULES = REPO_ROOT / "observability" / "alerts" / "sentiment.rules.yaml"
DASHBOARD = REPO_ROOT / "observability" / "dashboards" / "sentiment-platform.json"
OPERATOR = ("--set", "prometheus.enabled=true", "--api-versions", "monitoring.coreos.com/v1")


def rendered(*args: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(helm_template(*args)) if doc]


def test_the_kind_profile_runs_its_own_prometheus_with_the_shared_rules(tmp_path: Path) -> None:
    config_map = by_kind(documents("kind"), "ConfigMap")[f"{RELEASE}-prometheus"]
    assert config_map["data"]["sentiment.rules.yaml"] == RULES.read_text()
    # promtool resolves rule_files: point it at the copy next to the config, as the pod's mount does.
    (tmp_path / "sentiment.rules.yaml").write_text(config_map["data"]["sentiment.rules.yaml"])
    config = config_map["data"]["prometheus.yml"].replace("/etc/prometheus/", f"{tmp_path}/")
    (tmp_path / "prometheus.yml").write_text(config)
    result = run([tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_the_dashboard_config_map_is_the_observability_json() -> None:
    config_map = by_kind(documents("kind"), "ConfigMap")[f"{RELEASE}-dashboards"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"]["sentiment-platform.json"] == DASHBOARD.read_text()


def test_with_the_operator_crds_the_rules_become_a_prometheus_rule_and_no_server_runs() -> None:
    docs = rendered(*OPERATOR)
    rule = by_kind(docs, "PrometheusRule")[RELEASE]
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert RELEASE in by_kind(docs, "PodMonitor")
    names = {doc["metadata"]["name"] for doc in docs}
    assert f"{RELEASE}-prometheus" not in names


def test_monitoring_is_off_by_default() -> None:
    kinds = {doc["kind"] for doc in documents("default")}
    assert not kinds & {"PodMonitor", "PrometheusRule"}
    assert f"{RELEASE}-prometheus" not in {doc["metadata"]["name"] for doc in documents("default")}
