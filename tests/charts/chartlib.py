"""Helpers of the chart tests: the real helm/kubeconform/helm-unittest binaries, offline Kubernetes schemas
and cached renders of the chart for each values profile.

A missing tool FAILS the test (never skips): on this machine these binaries are the only judges of the
charts, since no cluster can be reached.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
VENV_BIN = Path(sys.executable).parent
CHART = REPO_ROOT / "charts" / "sentiment-platform"
K8S_DEV = REPO_ROOT / "k8s-dev"
SCRIPTS = REPO_ROOT / "scripts" / "charts"
SCHEMA_DIR = REPO_ROOT / ".tools" / "kube-schemas"
KUBE_VERSIONS = ("1.31.0", "1.34.0")
RELEASE = "sentiment"
NAMESPACE = "mlops"

# name -> extra `helm` arguments. `kind` and `external` are the shipped profiles; `toggles` flips every
# optional template on or off so each one is rendered and validated at least once.
PROFILES: dict[str, tuple[str, ...]] = {
    "default": (),
    "kind": ("-f", str(K8S_DEV / "values-kind.yaml")),
    "external": ("-f", str(K8S_DEV / "values-external.yaml")),
    "toggles": (
        "--set",
        "minio.persistence.enabled=false,postgresql.persistence.enabled=false,serviceAccount.create=false,"
        "inference.autoscaling.enabled=true,inference.podDisruptionBudget.enabled=true,"
        "inference.adminToken.enabled=false,training.registerDeployments.enabled=false,"
        "s3.createBuckets.enabled=false,training.s3Access=false,global.imageRegistry=registry.example.com,"
        "global.imagePullSecrets[0]=regcred,global.nodeSelector.pool=ml",
    ),
}

# The scripts of the kind loop import each other as top-level modules (`python scripts/charts/x.py`).
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


def tool(name: str) -> str:
    """Absolute path of a real tool in .tools/bin or the venv; fails the test when it is missing."""
    for directory in (TOOLS_BIN, VENV_BIN, REPO_ROOT / ".venv" / "bin"):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"required tool `{name}` is missing from {TOOLS_BIN} and the venv: run `make install`")


def run(argv: Sequence[str], stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root with text output; never raises on a non-zero exit."""
    return subprocess.run(
        list(argv), cwd=REPO_ROOT, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )


def helm_template(*args: str, kube_version: str = "1.34.0", show_only: str | None = None) -> str:
    """`helm template` of the chart as release `sentiment` in `mlops`; the test fails on a render error."""
    argv = [
        tool("helm"),
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
        *args,
    ]
    if show_only:
        argv += ["--show-only", show_only]
    result = run(argv)
    assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def helm_template_error(*args: str) -> str:
    """stderr of a `helm template` that must fail (values rejected by the schema or the chart)."""
    result = run([tool("helm"), "template", RELEASE, str(CHART), "-n", NAMESPACE, "--kube-version", "1.34.0", *args])
    assert result.returncode != 0, f"helm template {' '.join(args)} should have failed but rendered"
    return result.stderr


@cache
def _render(profile: str, kube_version: str) -> str:
    return helm_template(*PROFILES[profile], kube_version=kube_version)


def render(profile: str, kube_version: str = "1.34.0") -> str:
    return _render(profile, kube_version)


def documents(profile: str) -> list[dict[str, Any]]:
    """Parsed manifests of a profile (fresh copies: tests may mutate them)."""
    return [d for d in yaml.safe_load_all(render(profile)) if d]


def build_kube_schemas() -> Path:
    """Offline strict standalone schemas for kubeconform (built once from kubernetes-validate; idempotent)."""
    result = run(
        [sys.executable, str(SCRIPTS / "build_kube_schemas.py"), "--out", str(SCHEMA_DIR), "--versions", *KUBE_VERSIONS]
    )
    assert result.returncode == 0, result.stderr
    for version in KUBE_VERSIONS:
        assert (SCHEMA_DIR / f"v{version}-standalone-strict" / "deployment-apps-v1.json").is_file()
    return SCHEMA_DIR


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload manifest, or None for non-workloads."""
    kind = doc["kind"]
    if kind == "Pod":
        return doc["spec"]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return doc["spec"]["template"]["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind of container, container) pairs of a workload: 'init' or 'main'."""
    spec = pod_spec(doc) or {}
    for container in spec.get("initContainers", []):
        yield "init", container
    for container in spec.get("containers", []):
        yield "main", container
