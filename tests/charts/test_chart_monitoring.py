"""The chart's monitoring: its own Prometheus (kind profile) or the Operator's PodMonitor and PrometheusRule.

Its own Prometheus finds every replica through DNS (a headless Service per scraped component), not kubernetes_sd.

One source of truth: the rules the chart ships are observability/alerts/sentiment.rules.yaml, byte for byte (its
own server) or group for group (PrometheusRule). The generated scrape config passes `promtool check config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.charts.chartlib import NAMESPACE, RELEASE, REPO_ROOT, by_kind, documents, helm_template, run, tool

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


def test_the_own_prometheus_scrapes_every_replica_of_each_component_through_a_headless_service() -> None:
    docs = documents("kind")
    config = yaml.safe_load(by_kind(docs, "ConfigMap")[f"{RELEASE}-prometheus"]["data"]["prometheus.yml"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {f"sentiment-{c}" for c in ("inference", "mlflow", "prefect-server", "prefect-worker")}
    services = by_kind(docs, "Service")
    workloads = {
        doc["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: doc
        for doc in docs
        if doc["kind"] == "Deployment"
    }
    for name, job in jobs.items():
        # DNS discovery (in every Prometheus build), no kubernetes_sd: no API token, no Role.
        assert set(job) == {"job_name", "metrics_path", "dns_sd_configs", "relabel_configs"}, name
        (sd,) = job["dns_sd_configs"]
        (host,) = sd["names"]
        assert sd["type"] == "A", name
        service_name, namespace, svc = host.split(".")
        assert (namespace, svc) == (NAMESPACE, "svc"), host
        # Headless: the name resolves to every pod's IP, not one load-balanced ClusterIP.
        service = services[service_name]
        assert service["spec"]["clusterIP"] == "None", service_name
        component = name.removeprefix("sentiment-")
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == component
        container_ports = {
            port["containerPort"]
            for container in workloads[component]["spec"]["template"]["spec"]["containers"]
            for port in container.get("ports", [])
        }
        assert sd["port"] in container_ports, f"{name} scrapes port {sd['port']}, the pods expose {container_ports}"
        assert [p["port"] for p in service["spec"]["ports"]] == [sd["port"]], service_name
    assert f"{RELEASE}-prometheus" not in by_kind(docs, "Role")
    assert f"{RELEASE}-prometheus" not in by_kind(docs, "RoleBinding")


def test_headless_services_only_exist_for_the_own_prometheus() -> None:
    for docs in (documents("default"), rendered(*OPERATOR)):
        headless = {name for name, svc in by_kind(docs, "Service").items() if svc["spec"].get("clusterIP") == "None"}
        # The StatefulSet's governing Service is the only other headless one.
        assert headless == {f"{RELEASE}-postgresql-headless"}


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
