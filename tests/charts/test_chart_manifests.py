"""Whole-platform checks on the rendered manifests: every component's wiring points at something the chart
renders (Services, ports, Secrets and their keys, ConfigMaps, ServiceAccounts), and every container is
hardened, probed, sized and pinned."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.charts.chartlib import (
    NAMESPACE,
    PROFILES,
    RELEASE,
    by_kind,
    containers,
    documents,
    helm_template,
    pod_spec,
    run,
    tool,
)

WORKLOADS = {"Deployment", "StatefulSet", "Job", "Pod"}
LONG_RUNNING = {"Deployment", "StatefulSet"}
URL_RE = re.compile(r"(?:https?|postgresql\+\w+)://(?:[^@/\s]*@)?([A-Za-z0-9.-]+):(\d+)")
REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
)
PINNED_THIRD_PARTY = {
    "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
    "docker.io/library/postgres:17.6-bookworm",
}
# The kind profile also runs the chart's own Prometheus (prometheus.enabled).
PROMETHEUS_IMAGE = "quay.io/prometheus/prometheus:v3.5.0"


def profile_values(profile: str) -> dict[str, Any]:
    """The profile's values file (empty for profiles made of --set flags)."""
    args = PROFILES[profile]
    return yaml.safe_load(Path(args[1]).read_text()) if args[:1] == ("-f",) else {}


def external_secrets(profile: str) -> set[str]:
    """Secrets the profile says exist outside the chart (existingSecret values)."""
    values = profile_values(profile)
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "existingSecret" and value:
                    found.add(value)
                walk(value)

    walk(values)
    return found


def external_hosts(profile: str) -> set[str]:
    values = profile_values(profile)
    hosts = {values.get("database", {}).get("host", "")}
    endpoint = values.get("s3", {}).get("endpoint", "")
    if endpoint:
        hosts.add(urlsplit(endpoint).hostname or "")
    return {h for h in hosts if h}


def services(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return by_kind(docs, "Service")


def service_hosts(name: str) -> set[str]:
    return {name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc", f"{name}.{NAMESPACE}.svc.cluster.local"}


def env_strings(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(where, value) of every literal env value, ConfigMap value and command argument of the release,
    including the flow-run container of the work pool's base job template."""
    found: list[tuple[str, str]] = []
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                if key == "base-job-template.json":
                    template = json.loads(value)
                    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
                    for env in pod["containers"][0].get("env", []):
                        if "value" in env:
                            found.append((f"{where} base job template {env['name']}", env["value"]))
                else:
                    found.append((f"{where} {key}", str(value)))
        for _, container in containers(doc):
            for env in container.get("env", []):
                if "value" in env:
                    found.append((f"{where}/{container['name']} {env['name']}", str(env["value"])))
            for arg in container.get("command", []) + container.get("args", []):
                found.append((f"{where}/{container['name']} argv", str(arg)))
    return found


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_url_points_at_a_rendered_service_port(profile: str) -> None:
    docs = documents(profile)
    svc_ports: dict[str, set[int]] = {}
    for name, svc in services(docs).items():
        ports = {int(p["port"]) for p in svc["spec"]["ports"]}
        for host in service_hosts(name):
            svc_ports[host] = ports
    allowed_outside = external_hosts(profile) | {"localhost", "0.0.0.0", "127.0.0.1"}  # noqa: S104
    checked = 0
    for where, value in env_strings(docs):
        for host, port in URL_RE.findall(value):
            if host in allowed_outside:
                continue
            assert host in svc_ports, f"{where}: {value} points at {host}, which the chart does not render"
            assert int(port) in svc_ports[host], f"{where}: {host} has no port {port} (it has {svc_ports[host]})"
            checked += 1
    assert checked >= 10, f"only {checked} in-cluster URLs found: the parser no longer sees the wiring"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_database_hosts_are_rendered_or_external(profile: str) -> None:
    docs = documents(profile)
    hosts = set().union(*(service_hosts(n) for n in services(docs)))
    for doc in docs:
        for _, container in containers(doc):
            for env in container.get("env", []):
                if env["name"] in {"PGHOST"}:
                    assert env["value"] in hosts | external_hosts(profile), env


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_secret_and_configmap_reference_exists(profile: str) -> None:
    docs = documents(profile)
    secrets = {
        name: set((d.get("data") or {}) | (d.get("stringData") or {})) for name, d in by_kind(docs, "Secret").items()
    }
    config_maps = {name: set(d.get("data") or {}) for name, d in by_kind(docs, "ConfigMap").items()}
    outside = external_secrets(profile)
    references = 0

    def check_secret(where: str, name: str, key: str | None) -> None:
        nonlocal references
        references += 1
        if name in outside:
            return
        assert name in secrets, f"{where} reads Secret {name!r}, which the chart does not render"
        if key is not None:
            assert key in secrets[name], f"{where} reads key {key!r} of Secret {name!r} (keys: {secrets[name]})"

    def env_refs(where: str, env_list: list[dict[str, Any]]) -> None:
        for env in env_list:
            ref = env.get("valueFrom", {})
            if "secretKeyRef" in ref:
                check_secret(f"{where} {env['name']}", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])
            if "configMapKeyRef" in ref:
                cm = ref["configMapKeyRef"]
                assert cm["key"] in config_maps.get(cm["name"], set()), f"{where}: {cm}"

    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = pod_spec(doc)
        if spec is None:
            continue
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, f"{where}: volume {volume}"
            if "secret" in volume:
                check_secret(where, volume["secret"]["secretName"], None)
        for _, container in containers(doc):
            env_refs(f"{where}/{container['name']}", container.get("env", []))
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, f"{where}: {source}"
                if "secretRef" in source:
                    check_secret(where, source["secretRef"]["name"], None)
    # The flow-run Jobs the worker creates read Secrets too.
    for name, cm in by_kind(docs, "ConfigMap").items():
        for key, value in (cm.get("data") or {}).items():
            if key == "base-job-template.json":
                pod = json.loads(value)["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
                env_refs(f"ConfigMap/{name} base job template", pod["containers"][0].get("env", []))
    assert references >= 5, references


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_service_accounts_exist_and_only_the_worker_mounts_a_token(profile: str) -> None:
    docs = documents(profile)
    accounts = by_kind(docs, "ServiceAccount")
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        name = spec.get("serviceAccountName", "default")
        assert name in accounts or name == "default", f"{where} uses ServiceAccount {name!r}, not rendered"
        token = spec.get("automountServiceAccountToken")
        # The worker creates flow-run Jobs; nothing else calls the API (Prometheus finds its targets through DNS).
        if doc["metadata"]["name"] == f"{RELEASE}-prefect-worker":
            assert token is True, where
        else:
            assert token is False, f"{where} mounts an API token it does not need"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_services_select_pods_that_expose_their_target_ports(profile: str) -> None:
    docs = documents(profile)
    pods = [
        (doc, (doc["spec"]["template"]["metadata"]["labels"]), pod_spec(doc))
        for doc in docs
        if doc["kind"] in LONG_RUNNING
    ]
    for name, svc in services(docs).items():
        selector = svc["spec"]["selector"]
        matching = [(d, spec) for d, labels, spec in pods if selector.items() <= labels.items()]
        assert len(matching) == 1, f"Service {name} selects {len(matching)} workloads"
        workload, spec = matching[0]
        port_names = {p.get("name") for c in spec["containers"] for p in c.get("ports", [])}
        port_numbers = {p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            target = port["targetPort"]
            ok = target in port_names if isinstance(target, str) else target in port_numbers
            assert ok, f"Service {name} targets {target!r}; {workload['metadata']['name']} exposes {port_names}"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_workload_selectors_match_their_pod_labels(profile: str) -> None:
    for doc in documents(profile):
        if doc["kind"] in LONG_RUNNING:
            selector = doc["spec"]["selector"]["matchLabels"]
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), doc["metadata"]["name"]
            assert "app.kubernetes.io/version" not in selector, "the selector would change on every upgrade"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_resource_carries_the_standard_labels(profile: str) -> None:
    for doc in documents(profile):
        labels = doc["metadata"].get("labels", {})
        missing = [label for label in REQUIRED_LABELS if label not in labels]
        assert not missing, f"{doc['kind']}/{doc['metadata']['name']} lacks {missing}"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        if doc["kind"] in LONG_RUNNING:
            pod_labels = doc["spec"]["template"]["metadata"]["labels"]
            assert all(label in pod_labels for label in REQUIRED_LABELS), doc["metadata"]["name"]


def hardened(where: str, pod: dict[str, Any], container: dict[str, Any], read_only_root: bool = True) -> None:
    pod_ctx = pod.get("securityContext", {})
    ctx = container.get("securityContext", {})
    assert ctx.get("allowPrivilegeEscalation") is False, where
    assert ctx.get("privileged") is not True, where
    assert ctx.get("readOnlyRootFilesystem") is read_only_root, where
    assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
    assert not ctx.get("capabilities", {}).get("add"), where
    assert (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")) is True, where
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    assert isinstance(uid, int), f"{where} sets no uid"
    assert uid > 0, f"{where} runs as root"
    seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
    assert seccomp.get("type") == "RuntimeDefault", where
    if read_only_root:
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{where}: a read-only root filesystem needs a writable /tmp"


def sized(where: str, container: dict[str, Any]) -> None:
    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            assert resources.get(kind, {}).get(resource), f"{where} has no {kind}.{resource}"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_container_is_hardened_and_sized(profile: str) -> None:
    checked = 0
    for doc in documents(profile):
        spec = pod_spec(doc)
        if spec is None:
            continue
        for role, container in containers(doc):
            where = f"{doc['kind']}/{doc['metadata']['name']}/{role}:{container['name']}"
            hardened(where, spec, container)
            sized(where, container)
            checked += 1
    assert checked >= 8, checked


def test_the_flow_run_container_is_hardened_and_sized() -> None:
    docs = documents("default")
    template = json.loads(by_kind(docs, "ConfigMap")[f"{RELEASE}-prefect-worker"]["data"]["base-job-template.json"])
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    # Read-only root: prefect.yaml sets no volumes, so the pool's /tmp and home emptyDirs are always there.
    defaults = {name: prop.get("default") for name, prop in template["variables"]["properties"].items()}
    hardened("flow-run Job", pod, {**container, "volumeMounts": defaults["volume_mounts"]})
    assert pod["volumes"] == "{{ volumes }}"
    assert container["volumeMounts"] == "{{ volume_mounts }}"
    mounts = {m["mountPath"]: m for m in defaults["volume_mounts"]}
    assert {"/tmp", "/home/app", "/data"} <= set(mounts)
    assert mounts["/data"]["readOnly"] is True
    claims = [v["persistentVolumeClaim"]["claimName"] for v in defaults["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [f"{RELEASE}-data"]
    assert claims[0] in by_kind(docs, "PersistentVolumeClaim")
    for variable in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
        assert defaults[variable], f"the pool has no default {variable}"
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_long_running_containers_have_startup_liveness_and_readiness_probes(profile: str) -> None:
    for doc in documents(profile):
        if doc["kind"] not in LONG_RUNNING:
            continue
        for role, container in containers(doc):
            if role != "main":
                continue
            where = f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}"
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{where} has no {probe}"
                handler = container[probe]
                if "httpGet" in handler:
                    port = handler["httpGet"]["port"]
                    names = {p.get("name") for p in container.get("ports", [])}
                    numbers = {p["containerPort"] for p in container.get("ports", [])}
                    assert port in names or port in numbers, f"{where} {probe} probes unknown port {port}"
                else:
                    assert "exec" in handler or "tcpSocket" in handler, f"{where} {probe}"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_image_is_pinned(profile: str) -> None:
    images: set[str] = set()
    for doc in documents(profile):
        for _, container in containers(doc):
            images.add(container["image"])
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name, f"{image} has no tag"
        assert "/" not in tag, f"{image} has no tag"
        assert tag, f"{image} has an empty tag"
        assert tag != "latest", f"{image} is not pinned"
    third_party = {i for i in images if not i.rsplit("/", 1)[-1].startswith("sentiment-")}
    if profile == "default":
        assert third_party == PINNED_THIRD_PARTY, third_party
    if profile == "kind":
        assert third_party == PINNED_THIRD_PARTY | {PROMETHEUS_IMAGE}, third_party
    project = {i.rsplit("/", 1)[-1].split(":")[0] for i in images} - {"minio", "postgres", "prometheus"}
    assert project == {"sentiment-trainer", "sentiment-inference", "sentiment-mlflow"}, project


def test_make_deploy_tag_reaches_every_project_image_and_the_pool() -> None:
    docs = [d for d in yaml.safe_load_all(helm_template("--set-string", "images.tag=abc123def456")) if d]
    for doc in docs:
        for _, container in containers(doc):
            if container["image"].startswith("sentiment-"):
                assert container["image"].endswith(":abc123def456"), container["image"]
    template = json.loads(by_kind(docs, "ConfigMap")[f"{RELEASE}-prefect-worker"]["data"]["base-job-template.json"])
    assert template["variables"]["properties"]["image"]["default"] == "sentiment-trainer:abc123def456"


def test_no_plain_credentials_outside_the_dev_profile() -> None:
    """Default and external profiles render no literal password/token: only Secret references."""
    for profile in ("default", "external"):
        for doc in documents(profile):
            for _, container in containers(doc):
                for env in container.get("env", []):
                    if re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY", env["name"]):
                        assert "valueFrom" in env, f"{profile}: {env['name']} is a literal in {doc['metadata']['name']}"
    for profile in ("default",):
        for secret in by_kind(documents(profile), "Secret").values():
            for key, value in secret["data"].items():
                text = base64.b64decode(value).decode()
                assert text not in {"", "password", "changeme", "admin"}, (secret["metadata"]["name"], key)


def test_config_changes_roll_the_pods() -> None:
    """checksum annotations: changing a ConfigMap value changes the consuming pod template."""

    def annotations(args: tuple[str, ...], name: str) -> dict[str, str]:
        docs = [d for d in yaml.safe_load_all(helm_template(*args)) if d]
        workloads = {d["metadata"]["name"]: d for d in docs if d["kind"] in LONG_RUNNING}
        return workloads[name]["spec"]["template"]["metadata"]["annotations"]

    base = (
        "--set",
        "postgresql.password=fixedA,minio.auth.rootPassword=fixedpass1,inference.adminToken.value=tokentokentoken1",
    )
    before = annotations(base, f"{RELEASE}-inference")
    after = annotations((*base, "--set", "inference.config.logLevel=DEBUG"), f"{RELEASE}-inference")
    assert before["checksum/config"] != after["checksum/config"]
    assert before["checksum/secret"] == after["checksum/secret"]
    rotated = annotations((*base[:1], base[1].replace("tokentokentoken1", "tokentokentoken2")), f"{RELEASE}-inference")
    assert rotated["checksum/secret"] != before["checksum/secret"]
    worker_before = annotations(base, f"{RELEASE}-prefect-worker")
    worker_after = annotations((*base, "--set", "training.resources.limits.memory=5Gi"), f"{RELEASE}-prefect-worker")
    assert worker_before["checksum/base-job-template"] != worker_after["checksum/base-job-template"]
    db_before = annotations(base, f"{RELEASE}-mlflow")
    db_after = annotations((*base[:1], base[1].replace("fixedA", "fixedB")), f"{RELEASE}-mlflow")
    assert db_before["checksum/db-secret"] != db_after["checksum/db-secret"]


def test_hooks_run_in_order_and_tests_cover_every_health_endpoint() -> None:
    docs = documents("default")
    hooks = {
        d["metadata"]["name"]: d["metadata"].get("annotations", {})
        for d in docs
        if "helm.sh/hook" in d["metadata"].get("annotations", {})
    }
    order = [hooks[f"{RELEASE}-{name}"] for name in ("create-buckets", "register-deployments")]
    assert {hook["helm.sh/hook"] for hook in order} == {"post-install,post-upgrade"}
    weights = [int(hook["helm.sh/hook-weight"]) for hook in order]
    assert weights == sorted(set(weights)), f"buckets, then deployments: {weights}"
    tests = [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert len(tests) == 2
    health = next(d for d in tests if d["metadata"]["name"] == f"{RELEASE}-test-health")
    checks = json.loads(next(e["value"] for e in health["spec"]["containers"][0]["env"] if e["name"] == "CHECKS"))
    urls = {c["url"] for c in checks}
    # Every HTTP probe path of every long-running workload that has a Service is hit by `helm test`.
    for doc in docs:
        if doc["kind"] not in LONG_RUNNING:
            continue
        service = doc["metadata"]["name"]
        if service not in services(docs):
            continue
        for _, container in containers(doc):
            for probe in ("livenessProbe", "startupProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http:
                    assert any(u.startswith(f"http://{service}:") and u.endswith(http["path"]) for u in urls), (
                        f"helm test does not call {service}{http['path']}"
                    )


def test_inline_shell_scripts_pass_shellcheck(tmp_path: Path) -> None:
    """`sh -c` scripts embedded in the rendered containers are linted like the repository's scripts."""
    scripts = 0
    for doc in documents("default"):
        for _, container in containers(doc):
            argv = container.get("command", []) + container.get("args", [])
            if len(argv) >= 3 and argv[0] in {"sh", "bash"} and argv[1].startswith("-") and "c" in argv[1]:
                path = tmp_path / f"{doc['metadata']['name']}-{container['name']}.sh"
                path.write_text(f"#!/bin/{argv[0]}\n{argv[2]}")
                result = run([tool("shellcheck"), "--severity=style", str(path)])
                assert result.returncode == 0, f"{path.name}:\n{result.stdout}"
                scripts += 1
    assert scripts >= 2, scripts


# MLflow's own host check, loaded without importing the (slow) mlflow package: security_utils only needs
# mlflow.environment_variables. Reads the flag value as the server does (it exports it to this variable).
MLFLOW_HOST_CHECK = r"""
import importlib.util, json, sys, types
from pathlib import Path
root = Path(importlib.util.find_spec("mlflow").submodule_search_locations[0])
for name, path in (("mlflow", root), ("mlflow.server", root / "server")):
    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module
from mlflow.server.security_utils import get_allowed_hosts_from_env, is_allowed_host_header
allowed = get_allowed_hosts_from_env()
print(json.dumps({host: is_allowed_host_header(allowed, host) for host in json.loads(sys.argv[1])}))
"""


@pytest.mark.parametrize("profile", ["default", "external"])
def test_mlflow_accepts_the_host_header_of_every_client(profile: str) -> None:
    docs = documents(profile)
    mlflow = by_kind(docs, "Deployment")[f"{RELEASE}-mlflow"]["spec"]["template"]["spec"]["containers"][0]
    argv = mlflow["command"]
    allowed = argv[argv.index("--allowed-hosts") + 1]
    clients = {
        f"{host}:{port}"
        for _, value in env_strings(docs)
        for host, port in URL_RE.findall(value)
        if host.startswith(f"{RELEASE}-mlflow")
    }
    assert clients, "no client of MLflow found in the rendered chart"
    wanted = sorted(clients | {"localhost:5001", "127.0.0.1:5001", f"{RELEASE}-mlflow.{NAMESPACE}.svc:5000"})
    refused = ["evil.example.com", "evil.example.com:5000"]
    result = subprocess.run(
        [sys.executable, "-c", MLFLOW_HOST_CHECK, json.dumps(wanted + refused)],
        env={**os.environ, "MLFLOW_SERVER_ALLOWED_HOSTS": allowed},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert [host for host in wanted if not verdict[host]] == [], f"MLflow would answer 403 to {verdict}"
    assert not any(verdict[host] for host in refused), "the allowed hosts are too wide"


@pytest.mark.parametrize("profile", ["default", "kind", "external"])
def test_every_claim_has_a_consumer_that_helm_wait_does_not_wait_behind(profile: str) -> None:
    """A WaitForFirstConsumer claim binds only once a pod uses it, and `helm --wait` counts a PVC ready only when
    Bound, before any post-install hook runs: each PVC of the release needs a consumer that is not a hook."""
    docs = documents(profile)
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    consumed: set[str] = set()
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job") or "helm.sh/hook" in doc["metadata"].get(
            "annotations", {}
        ):
            continue
        volumes = doc["spec"]["template"]["spec"].get("volumes", [])
        consumed |= {v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v}
    assert claims <= consumed, f"claims only hooks (or nothing) would use: {sorted(claims - consumed)}"
