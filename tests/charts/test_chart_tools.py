"""The real judges of the chart: `helm lint --strict`, `kubeconform -strict` against offline Kubernetes
1.31 and 1.34 schemas, and the helm-unittest suites in charts/sentiment-platform/tests/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.charts.chartlib import CHART, KUBE_VERSIONS, PROFILES, helm_template, run, tool


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_helm_lint_strict(profile: str, kube_version: str) -> None:
    result = run([tool("helm"), "lint", str(CHART), "--strict", "--kube-version", kube_version, *PROFILES[profile]])
    assert result.returncode == 0, f"helm lint ({profile}, {kube_version}):\n{result.stdout}\n{result.stderr}"
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def kubeconform(schemas: Path, kube_version: str, manifests: str) -> tuple[int, dict[str, int], str]:
    result = run(
        [
            tool("kubeconform"),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-schema-location",
            str(schemas),
            "-kubernetes-version",
            kube_version,
            "-",
        ],
        stdin=manifests,
    )
    report = json.loads(result.stdout)
    return result.returncode, report["summary"], result.stdout


# Resources each profile must render: a template silently rendering nothing would still "validate".
MIN_RESOURCES = {"default": 29, "kind": 29, "external": 20, "toggles": 20}


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_kubeconform_strict_offline(kube_schemas: Path, profile: str, kube_version: str) -> None:
    manifests = helm_template(*PROFILES[profile], kube_version=kube_version)
    code, summary, report = kubeconform(kube_schemas, kube_version, manifests)
    assert code == 0, f"kubeconform ({profile}, {kube_version}):\n{report}"
    assert summary["invalid"] == 0, summary
    assert summary["errors"] == 0, summary
    assert summary["skipped"] == 0, summary
    assert summary["valid"] >= MIN_RESOURCES[profile], summary


def test_kubeconform_schemas_are_strict(kube_schemas: Path) -> None:
    """The offline schemas reject an unknown field and a wrong type (they are not permissive stubs)."""
    bad = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  replica: 2
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
        - name: c
          image: nginx:1.27
          ports: [{containerPort: "http"}]
"""
    code, summary, report = kubeconform(kube_schemas, "1.34.0", bad)
    assert code != 0, report
    assert summary["invalid"] == 1, report
    assert "replica" in report, report
    assert "containerPort" in report, report


def test_helm_unittest_suites() -> None:
    suites = sorted((CHART / "tests").glob("*_test.yaml"))
    assert len(suites) >= 6, f"expected the helm-unittest suites in {CHART / 'tests'}"
    result = run([tool("helm-unittest"), "--color=false", str(CHART)], timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"helm-unittest failed:\n{output}"
    summary = re.search(r"Tests:\s+(\d+) passed, (\d+) total", output)
    assert summary, output
    passed, total = map(int, summary.groups())
    assert passed == total >= 60, output
    assert f"Test Suites: {len(suites)} passed" in output, output
