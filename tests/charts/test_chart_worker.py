"""The work pool the chart creates: its base job template passes Prefect's own checks, and the Job that
prefect-kubernetes builds from it for a flow run is a valid, hardened Kubernetes Job wired to the release.
The worker's RBAC covers every Kubernetes call prefect-kubernetes makes (read from its source)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.chartlib import (
    CHART,
    K8S_DEV,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    REPO_ROOT,
    by_kind,
    documents,
    run,
    tool,
)

# Runs in a subprocess (prefect is slow to import and reads its settings from the environment): renders
# the Job for a fake flow run exactly as the worker does, after Prefect's server-side template check.
RENDER_JOB = r"""
import asyncio, json, sys, uuid
from prefect.client.schemas.objects import FlowRun
from prefect.utilities.templating import find_placeholders
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

out = []
for path in sys.argv[1:]:
    template = json.load(open(path))
    # Same rule as prefect.server.schemas.actions.validate_base_job_template (`prefect work-pool create`).
    used = {p.name for value in template["job_configuration"].values() for p in find_placeholders(json.dumps(value))}
    declared = set(template["variables"]["properties"])
    job_variables = json.load(open(path.replace(".json", ".vars")))
    config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(template, job_variables))
    config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="brave-otter", flow_id=uuid.uuid4()))
    out.append({"undeclared": sorted(used - declared), "job": config.job_manifest})
print(json.dumps(out))
"""

# Keys prefect-kubernetes insists on at the pod-spec level (its default template has them too); the API
# server drops them with a warning, so they are removed before strict schema validation.
PREFECT_POD_SPEC_QUIRKS = ("parallelism", "completions")


PREFECT_YAML = REPO_ROOT / "services" / "trainer" / "prefect.yaml"
PLACEHOLDER = re.compile(r"^\{\{\s*\$(\w+)\s*\}\}$")


def deployment_job_variables(profile: str) -> dict[str, Any]:
    """The k8s deployment's job_variables from services/trainer/prefect.yaml, with its {{ $VAR }} placeholders
    filled from the environment of the chart's registration Job (what `prefect deploy` does there)."""
    assert PREFECT_YAML.is_file(), f"{PREFECT_YAML} is missing: the k8s deployment cannot be registered"
    docs = documents(profile)
    pool = json.loads(json.dumps(by_kind(docs, "Deployment")[f"{RELEASE}-prefect-worker"]))
    pool_name = pool["spec"]["template"]["spec"]["containers"][0]["command"][4]
    deployments = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    k8s = [d for d in deployments if d.get("work_pool", {}).get("name") == pool_name]
    assert len(k8s) == 1, f"prefect.yaml has {len(k8s)} deployments on the chart's pool {pool_name!r}"
    job = by_kind(docs, "Job")[f"{RELEASE}-register-deployments"]
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, str) and (match := PLACEHOLDER.match(node)):
            assert match.group(1) in env, f"prefect.yaml reads ${match.group(1)}; the chart's registration Job lacks it"
            return env[match.group(1)]
        return node

    return fill(k8s[0]["work_pool"].get("job_variables", {}))


def base_job_template(profile: str) -> dict[str, Any]:
    config_map = by_kind(documents(profile), "ConfigMap")[f"{RELEASE}-prefect-worker"]
    return json.loads(config_map["data"]["base-job-template.json"])


@pytest.fixture(scope="module")
def flow_run_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """profile -> the Job manifest prefect-kubernetes builds for a flow run of the pool."""
    folder = tmp_path_factory.mktemp("pool")
    profiles = ("default", "kind", "external")
    paths = []
    for profile in profiles:
        path = folder / f"{profile}.json"
        path.write_text(json.dumps(base_job_template(profile)))
        (folder / f"{profile}.vars").write_text(json.dumps(deployment_job_variables(profile)))
        paths.append(str(path))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_API_URL": f"http://{RELEASE}-prefect-server:4200/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", RENDER_JOB, *paths], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert result.returncode == 0, f"prefect-kubernetes refused the base job template:\n{result.stderr[-4000:]}"
    rendered = json.loads(result.stdout.strip().splitlines()[-1])
    for profile, item in zip(profiles, rendered, strict=True):
        assert item["undeclared"] == [], f"{profile}: placeholders without a variable: {item['undeclared']}"
    return {profile: item["job"] for profile, item in zip(profiles, rendered, strict=True)}


@pytest.mark.parametrize("profile", ["default", "kind", "external"])
def test_flow_run_job_is_wired_to_the_release(flow_run_jobs: dict[str, dict[str, Any]], profile: str) -> None:
    job = flow_run_jobs[profile]
    docs = documents(profile)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert job["metadata"]["namespace"] == NAMESPACE
    assert pod["serviceAccountName"] in by_kind(docs, "ServiceAccount")
    assert container["image"].split("/")[-1].startswith("sentiment-trainer:")
    assert container["args"] == ["prefect", "flow-run", "execute"]
    assert env["PREFECT_API_URL"]["value"] == f"http://{RELEASE}-prefect-server:4200/api"
    assert env["MLFLOW_TRACKING_URI"]["value"] == f"http://{RELEASE}-mlflow:5000"
    assert "PREFECT__FLOW_RUN_ID" in env
    assert env["HOME"]["value"] == "/home/app"
    # Least privilege: training reads the PVC and logs through MLflow's proxy, so it gets no S3 identity.
    assert not {name for name in env if name.startswith("AWS_")}, sorted(env)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["metadata"]["labels"]["prefect.io/flow-run-id"] == env["PREFECT__FLOW_RUN_ID"]["value"]
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    # The dataset volume of prefect.yaml is the chart's PVC, and the file the prepare Job writes is the one
    # the deployment's `data_path` reads.
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims, "the flow run mounts no dataset volume"
    assert claims <= set(by_kind(docs, "PersistentVolumeClaim")), claims
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    # DATA_PATH (read by the trainer's settings) is where the PVC is mounted: the flow reads the PVC's file.
    data_path = env["DATA_PATH"]["value"]
    assert any(data_path.startswith(f"{mount}/") for mount in mounts), (data_path, mounts)
    prepare = by_kind(docs, "Job")[f"{RELEASE}-prepare-data-1"]["spec"]["template"]["spec"]
    assert next(e["value"] for e in prepare["containers"][0]["env"] if e["name"] == "DATA_FILE") == data_path
    written = {v["persistentVolumeClaim"]["claimName"] for v in prepare["volumes"] if "persistentVolumeClaim" in v}
    assert written == claims
    # The deployment's job variables carry the chart's training resources and pull policy.
    values = yaml.safe_load((K8S_DEV / "values-kind.yaml").read_text()) if profile == "kind" else {}
    resources = (
        values.get("training", {}).get("resources")
        or yaml.safe_load((CHART / "values.yaml").read_text())["training"]["resources"]
    )
    assert container["resources"] == {k: {r: str(q) for r, q in v.items()} for k, v in resources.items()}
    if profile == "kind":
        assert container["imagePullPolicy"] == "Never", "kind loads the images into the node"


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_flow_run_job_is_a_valid_kubernetes_job(
    flow_run_jobs: dict[str, dict[str, Any]], kube_schemas: Path, kube_version: str
) -> None:
    manifests = []
    for job in flow_run_jobs.values():
        job = json.loads(json.dumps(job))
        pod = job["spec"]["template"]["spec"]
        for key in PREFECT_POD_SPEC_QUIRKS:
            assert pod.pop(key) == 1
        job["metadata"]["name"] = job["metadata"].pop("generateName") + "x"
        manifests.append(json.dumps(job))
    result = run(
        [
            tool("kubeconform"),
            "-strict",
            "-summary",
            "-schema-location",
            str(kube_schemas),
            "-kubernetes-version",
            kube_version,
            "-",
        ],
        stdin="\n---\n".join(manifests),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Valid: {len(manifests)}, Invalid: 0, Errors: 0, Skipped: 0" in result.stdout, result.stdout


# ------------------------------------------------------------------------------------------------ RBAC

VERB_OF = {"create": "create", "read": "get", "list": "list", "delete": "delete", "patch": "patch", "replace": "update"}
RESOURCE_OF = {"job": ("batch", "jobs"), "pod": ("", "pods"), "pod_log": ("", "pods/log"), "secret": ("", "secrets")}
# Secrets are touched only for Prefect Cloud API keys / auth strings and PREFECT_..._STORE_ENV_AS_SECRET,
# none of which the chart uses (checked below).
OPTIONAL = {("", "secrets")}
# kopf (the worker's observer) lists and watches the pods and Jobs it follows.
WATCHED = {("", "pods"), ("batch", "jobs")}


def prefect_kubernetes_calls() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every namespaced Kubernetes call in prefect-kubernetes' worker."""
    package = Path(str(distribution("prefect-kubernetes").locate_file("prefect_kubernetes")))
    calls: set[tuple[str, str, str]] = set()
    for module in ("worker.py", "observer.py"):
        source = (package / module).read_text()
        for verb, resource in re.findall(r"\.(create|read|list|delete|patch|replace)_namespaced_(\w+?)\(", source):
            assert resource in RESOURCE_OF, f"prefect-kubernetes now calls *_namespaced_{resource}: extend the Role"
            group, plural = RESOURCE_OF[resource]
            calls.add((group, plural, VERB_OF[verb]))
    for group, plural in WATCHED:
        calls |= {(group, plural, "list"), (group, plural, "watch")}
    return calls


def test_worker_role_covers_what_prefect_kubernetes_calls() -> None:
    role = by_kind(documents("default"), "Role")[f"{RELEASE}-prefect-worker"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = prefect_kubernetes_calls()
    assert ("batch", "jobs", "create") in needed, "the source scan found nothing: has prefect-kubernetes moved?"
    missing = {call for call in needed if call[:2] not in OPTIONAL} - granted
    assert not missing, f"the worker Role lacks {sorted(missing)}"
    assert not any(g[1] == "secrets" for g in granted), "the worker must not read Secrets"
    assert ("", "pods/log", "get") in granted
    assert ("", "events", "list") in granted


def test_worker_settings_keep_secrets_and_cluster_scope_out() -> None:
    worker = by_kind(documents("default"), "Deployment")[f"{RELEASE}-prefect-worker"]
    env = {e["name"]: e.get("value") for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PREFECT_KUBERNETES_CLUSTER_UID"], "without it prefect-kubernetes may read the kube-system namespace"
    assert env["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"] == NAMESPACE, "cluster-wide watch needs more RBAC"
    assert not any("STORE_ENV_AS_SECRET" in name or "API_KEY_SECRET" in name for name in env)
    assert not any(d["kind"] in {"ClusterRole", "ClusterRoleBinding"} for d in documents("default"))
