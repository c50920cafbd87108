"""values.yaml is documented (helm-docs `# --` comments), the strict schema is generated and current, the
profiles keep credentials where they belong, and the kind cluster is pinned."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.charts.chartlib import CHART, K8S_DEV, REPO_ROOT, SCRIPTS, run

# Subtrees documented as a whole by the comment on their key (their inner keys are Prefect's, not ours).
DOCUMENTED_AS_A_WHOLE = {"prefectWorker.workPool.baseJobTemplate"}
CREDENTIAL_KEYS = {"rootPassword", "password", "value"}


@dataclass
class Key:
    path: str
    documented: bool
    children: list[Key] = field(default_factory=list)


def parse_values_comments(text: str) -> list[Key]:
    """The key tree of a values file, each key marked documented when a `# --` comment block sits above it."""
    roots: list[Key] = []
    stack: list[tuple[int, Key]] = []
    comment_block: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment_block = []
            continue
        if stripped.startswith("#"):
            comment_block.append(stripped)
            continue
        match = re.match(r"^(\s*)([A-Za-z0-9_.\-\"]+):(\s|$)", line)
        if not match or stripped.startswith("- "):
            comment_block = []
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else None
        path = f"{parent.path}.{match.group(2)}" if parent else match.group(2)
        key = Key(path=path, documented=any(c.startswith("# --") for c in comment_block))
        (parent.children if parent else roots).append(key)
        stack.append((indent, key))
        comment_block = []
    return roots


def undocumented(keys: list[Key], inherited: bool = False) -> list[str]:
    missing: list[str] = []
    for key in keys:
        covered = inherited or key.documented
        if key.path in DOCUMENTED_AS_A_WHOLE:
            if not covered:
                missing.append(key.path)
            continue
        if key.children:
            missing += undocumented(key.children, covered)
        elif not covered:
            missing.append(key.path)
    return missing


def test_every_value_has_a_helm_docs_comment() -> None:
    keys = parse_values_comments((CHART / "values.yaml").read_text())
    assert len(keys) >= 15, "the values parser found too few keys"
    missing = undocumented(keys)
    assert not missing, f"values without a `# --` comment: {missing}"


def test_the_comment_checker_catches_an_undocumented_value() -> None:
    keys = parse_values_comments("a:\n  # -- documented\n  b: 1\n  c: 2\n# -- whole\nd:\n  e: 1\n")
    assert undocumented(keys) == ["a.c"]


def test_values_schema_is_generated_and_current() -> None:
    result = run([sys.executable, str(SCRIPTS / "values_schema.py"), "--check"])
    assert result.returncode == 0, result.stderr


def leaf_values(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in leaf_values(value, f"{path}.{key}".lstrip("."))]
    return [(path, node)]


def schema_allows_unknown(schema: dict[str, Any], path: str = "") -> list[str]:
    """Object schemas that accept keys they do not declare (except typed maps and Prefect's template)."""
    loose: list[str] = []
    if schema.get("type") == "object" and "properties" in schema and schema.get("additionalProperties") is not False:
        loose.append(path or "<root>")
    for key, value in schema.get("properties", {}).items():
        if f"{path}.{key}".lstrip(".") in DOCUMENTED_AS_A_WHOLE:
            continue
        if isinstance(value, dict):
            loose += schema_allows_unknown(value, f"{path}.{key}".lstrip("."))
    for name, value in schema.get("definitions", {}).items():
        loose += schema_allows_unknown(value, f"#{name}")
    return loose


def test_schema_refuses_unknown_keys_everywhere() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema_allows_unknown(schema) == []
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(schema["properties"]) == set(values), "schema and values.yaml disagree on the top-level keys"


def test_no_credentials_in_default_or_external_values() -> None:
    for path in (CHART / "values.yaml", K8S_DEV / "values-external.yaml"):
        values = yaml.safe_load(path.read_text())
        for key, value in leaf_values(values):
            if key.rsplit(".", 1)[-1] in CREDENTIAL_KEYS and not key.startswith("prefectWorker."):
                assert value in ("", None), f"{path.name}: {key} holds a credential"


def test_kind_profile_is_small_persistent_and_uses_loaded_images() -> None:
    values = yaml.safe_load((K8S_DEV / "values-kind.yaml").read_text())
    assert values["images"]["pullPolicy"] == "Never", "kind-loaded images must not be pulled"
    assert values["images"]["registry"] == ""
    assert values["minio"]["auth"]["rootPassword"], "dev credentials are allowed (and handy) here"
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults["minio"]["persistence"]["enabled"]
    assert defaults["postgresql"]["persistence"]["enabled"]
    assert "enabled" not in values["minio"].get("persistence", {}), "persistence stays on in kind"
    # Replicas are Ready before the first champion too (the registry has none), so rollouts keep capacity.
    strategy = values["inference"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0, "a rollout of the single kind replica must not drop requests"


def test_external_profile_switches_minio_and_postgres_off() -> None:
    values = yaml.safe_load((K8S_DEV / "values-external.yaml").read_text())
    assert values["minio"]["enabled"] is False
    assert values["postgresql"]["enabled"] is False
    assert values["database"]["host"]
    assert values["database"]["existingSecret"]
    assert values["s3"]["endpoint"].startswith("https://")
    assert values["s3"]["existingSecret"]


def test_kind_node_image_is_pinned() -> None:
    config = yaml.safe_load((K8S_DEV / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster"
    assert config["name"] == "sentiment"
    images = [node["image"] for node in config["nodes"]]
    assert images, "the node image must be pinned"
    # By digest (kind: "you must use the @sha256 digest"), at the minor the local test cluster runs.
    cluster_script = (REPO_ROOT / "harness" / "local-cluster" / "cluster.sh").read_text()
    minor = re.search(r"^K8S_VERSION=v1\.(\d+)\.", cluster_script, re.MULTILINE)
    assert minor, "harness/local-cluster/cluster.sh pins no K8S_VERSION"
    for image in images:
        assert re.fullmatch(rf"kindest/node:v1\.{minor.group(1)}\.\d+@sha256:[0-9a-f]{{64}}", image), image


def test_chart_has_no_dependencies_to_fetch() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert "dependencies" not in chart
    assert not (CHART / "charts").exists()
    assert chart["apiVersion"] == "v2"


def test_one_resource_per_template_named_by_its_kind() -> None:
    for template in (CHART / "templates").rglob("*.yaml"):
        text = template.read_text()
        kinds = re.findall(r"^kind: (\w+)", text, re.MULTILINE)
        relative = template.relative_to(CHART / "templates")
        if template.name == "validate.yaml":
            assert kinds == []
            continue
        assert len(kinds) == 1, f"{relative} holds {kinds}"
        assert template.stem.split("-")[0] == kinds[0].lower(), f"{relative} holds a {kinds[0]}"


def test_notes_print_the_port_forwards_and_urls() -> None:
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    for needle in (
        "5001:5000",
        "4200:4200",
        "9001:9001",
        "8000:8000",
        "9090:9090",
        "http://localhost:5001",
        "helm test",
    ):
        assert needle in notes, needle


def test_readme_walks_from_zero_to_a_prediction() -> None:
    readme = (K8S_DEV / "README.md").read_text()
    steps = ["make kind-up", "make images", "make kind-load", "make deploy", "make port-forward", "make train"]
    positions = [readme.find(step) for step in [*steps, "make smoke"]]
    assert all(p >= 0 for p in positions), dict(zip([*steps, "make smoke"], positions, strict=True))
    assert positions == sorted(positions), "the README steps are out of order"
    for url in ("http://localhost:5001", "http://localhost:4200", "http://localhost:9001", "http://localhost:8000"):
        assert url in readme, url
