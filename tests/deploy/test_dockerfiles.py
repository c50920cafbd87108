"""The three Dockerfiles: hadolint-clean, pinned, layered for caching, and consistent with the workspace.

No Docker engine here: the build steps are checked statically, and the dependency layer's exact
`uv sync` command is replayed (dry run) on exactly the files the Dockerfile copies before it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.conftest import IMAGES, REPO_ROOT, find_tool, run, workspace_members

PYTHON_BASE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")
UV_IMAGE = "ghcr.io/astral-sh/uv:0.13.9"
# image -> (workspace member it installs, console script it must ship, port it serves or None)
EXPECTED = {
    "trainer": ("sentiment-trainer", "sentiment-trainer", None),
    "inference": ("sentiment-inference", "sentiment-inference", 8000),
    "mlflow": ("sentiment-mlflow-server", None, 5000),
}
HEALTH_PATHS = {"inference": "/health/live", "mlflow": "/health"}
DOCKERIGNORE_MUST_EXCLUDE = [".venv", ".tools", ".local", "data", ".git", "bench/results", ".env"]


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int

    def flags_and_words(self) -> tuple[dict[str, str], list[str]]:
        words = shlex.split(self.args)
        flags: dict[str, str] = {}
        while words and words[0].startswith("--"):
            key, _, value = words.pop(0)[2:].partition("=")
            flags[key] = value
        return flags, words


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction] = field(default_factory=list)
    stages: list[tuple[str, str]] = field(default_factory=list)  # (image, alias)

    def of(self, keyword: str, stage: int | None = None) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword and (stage is None or i.stage == stage)]

    @property
    def final_stage(self) -> int:
        return len(self.stages) - 1


def parse_dockerfile(path: Path) -> Dockerfile:
    """Instructions with line continuations joined and comments dropped (enough for our own Dockerfiles)."""
    parsed = Dockerfile(path)
    logical: list[str] = []
    buffer = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            parsed.stages.append((words[0], alias))
        parsed.instructions.append(Instruction(keyword, args.strip(), len(parsed.stages) - 1))
    return parsed


def dockerignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def is_ignored(rel_path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; a pattern also covers everything below it."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        parts = rel_path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, pattern.removeprefix("**/")) for p in prefixes
        ) or (pattern.startswith("**/") and any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts)):
            ignored = not negate
    return ignored


def uv_syncs(dockerfile: Dockerfile) -> list[list[str]]:
    commands = []
    for instruction in dockerfile.of("RUN"):
        _, words = instruction.flags_and_words()
        if words[:2] == ["uv", "sync"]:
            commands.append(words)
    return commands


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def member_dir(name: str) -> str:
    return workspace_members()[name].relative_to(REPO_ROOT).as_posix()


def workspace_closure(name: str) -> set[str]:
    """The member and every workspace member it depends on, transitively."""
    members = workspace_members()
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        data = tomllib.loads((members[current] / "pyproject.toml").read_text())
        sources = data.get("tool", {}).get("uv", {}).get("sources", {})
        for dependency in data["project"].get("dependencies", []):
            dep_name = re.split(r"[\s\[<>=!~;]", dependency, maxsplit=1)[0]
            if dep_name in members and sources.get(dep_name, {}).get("workspace"):
                todo.append(dep_name)
    return seen


@pytest.fixture(params=IMAGES)
def image(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def dockerfile(image: str) -> Dockerfile:
    path = REPO_ROOT / "services" / image / "Dockerfile"
    assert path.is_file(), path
    return parse_dockerfile(path)


def test_hadolint_is_clean(dockerfile: Dockerfile) -> None:
    result = run([find_tool("hadolint"), "--no-color", str(dockerfile.path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_pinned(dockerfile: Dockerfile) -> None:
    images = [image for image, _ in dockerfile.stages]
    assert (UV_IMAGE, "uv") in dockerfile.stages, "uv comes from the pinned ghcr.io/astral-sh/uv image"
    pythons = [i for i in images if i.startswith("python:")]
    assert len(pythons) >= 2, "multi-stage: a builder and a runtime stage"
    assert len(set(pythons)) == 1, f"builder and runtime must use the same base (the venv links to it): {pythons}"
    assert PYTHON_BASE.match(pythons[0]), f"{pythons[0]} is not a pinned python:3.11.<patch>-slim-bookworm"
    assert dockerfile.stages[-1][0] == pythons[0], "the final stage is the slim runtime"


def test_uv_sync_installs_the_right_workspace_member(image: str, dockerfile: Dockerfile) -> None:
    members = workspace_members()
    syncs = uv_syncs(dockerfile)
    assert len(syncs) == 2, "one dependency layer, one source layer"
    for words in syncs:
        package = option(words, "--package")
        assert package in members, f"--package {package} is not a workspace member ({sorted(members)})"
        assert package == EXPECTED[image][0]
        assert members[package] == dockerfile.path.parent, "each service's Dockerfile installs that service"
        assert {"--locked", "--no-dev", "--no-editable"} <= set(words), words
    dependencies, source = syncs
    assert "--no-install-workspace" in dependencies, "the dependency layer must not need any workspace source"
    assert not {"--no-install-workspace", "--no-install-project"} & set(source), "the source layer installs the code"


def test_every_copied_file_exists_and_reaches_the_build_context(dockerfile: Dockerfile) -> None:
    patterns = dockerignore_patterns()
    copies = [i for i in dockerfile.of("COPY") + dockerfile.of("ADD") if "from" not in i.flags_and_words()[0]]
    assert copies, "no COPY from the build context"
    for instruction in copies:
        _, words = instruction.flags_and_words()
        for source in words[:-1]:
            matches = list(REPO_ROOT.glob(source.rstrip("/"))) if any(c in source for c in "*?[") else []
            path = REPO_ROOT / source
            assert path.exists() or matches, f"{dockerfile.path.name}: COPY {source} does not exist in the repo"
            rel = source.rstrip("/")
            assert not is_ignored(rel, patterns), f"COPY {source} is excluded by .dockerignore"


def test_dependency_layer_copies_only_manifests_and_all_of_them(dockerfile: Dockerfile) -> None:
    first_sync = next(i for i, ins in enumerate(dockerfile.instructions) if ins.args.find("uv sync") >= 0)
    before = [
        i for i in dockerfile.instructions[:first_sync] if i.keyword == "COPY" and "from" not in i.flags_and_words()[0]
    ]
    sources = {Path(s).as_posix() for i in before for s in i.flags_and_words()[1][:-1]}
    expected = {"pyproject.toml", "uv.lock"} | {f"{member_dir(name)}/pyproject.toml" for name in workspace_members()}
    assert sources == expected, (
        f"before the first uv sync copy exactly the lockfile and manifests: {sources ^ expected}"
    )


def test_source_layer_copies_the_member_and_its_workspace_dependencies(image: str, dockerfile: Dockerfile) -> None:
    first_sync = next(i for i, ins in enumerate(dockerfile.instructions) if ins.args.find("uv sync") >= 0)
    after = [
        i
        for i in dockerfile.instructions[first_sync:]
        if i.keyword == "COPY" and "from" not in i.flags_and_words()[0] and i.stage != dockerfile.final_stage
    ]
    copied = {Path(s).as_posix() for i in after for s in i.flags_and_words()[1][:-1]}
    needed = {member_dir(name) for name in workspace_closure(EXPECTED[image][0])}
    assert copied == needed, f"source COPYs {copied} != the member's workspace closure {needed}"


def test_dependency_layer_command_works_on_exactly_the_copied_files(tmp_path: Path, dockerfile: Dockerfile) -> None:
    """Replays the dependency layer: same files, same `uv sync` (dry run). Fails on a stale uv.lock too."""
    first_sync = next(i for i, ins in enumerate(dockerfile.instructions) if ins.args.find("uv sync") >= 0)
    for instruction in dockerfile.instructions[:first_sync]:
        flags, words = instruction.flags_and_words()
        if instruction.keyword != "COPY" or "from" in flags:
            continue
        *sources, dest = words
        for source in sources:
            target_dir = tmp_path / dest if dest not in {".", "./"} else tmp_path
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / source, target_dir / Path(source).name)
    command = uv_syncs(dockerfile)[0]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / ".venv"), "UV_PYTHON_DOWNLOADS": "never"}
    result = run([find_tool("uv"), *command[1:], "--dry-run", "--directory", str(tmp_path)], env=env)
    assert result.returncode == 0, "\n".join(result.stderr.splitlines()[-6:])
    workspace_code = re.findall(r"^\s*\+ (sentiment-[\w-]+)", result.stderr, re.MULTILINE)
    assert not workspace_code, f"the dependency layer would need workspace code: {workspace_code}"


def test_runtime_is_non_root_with_the_venv_on_path(image: str, dockerfile: Dockerfile) -> None:
    final = dockerfile.final_stage
    users = dockerfile.of("USER", final)
    assert users, "the runtime sets USER"
    assert users[-1].args.split(":")[0] == "10001", "the runtime runs as uid 10001"
    assert any("--uid 10001" in i.args for i in dockerfile.of("RUN", final)), "create the uid 10001 user"
    env = " ".join(i.args for i in dockerfile.of("ENV", final))
    assert re.search(r'PATH="?/app/\.venv/bin:', env), "venv at /app/.venv on PATH"
    copies = [i.flags_and_words() for i in dockerfile.of("COPY", final)]
    assert ({"from": "builder"}, ["/app/.venv", "/app/.venv"]) in copies, "the runtime gets the builder's venv"
    assert not [w for f, w in copies if "from" not in f], "the runtime copies nothing from the context directly"


def test_healthcheck_and_command_follow_the_architecture(image: str, dockerfile: Dockerfile) -> None:
    final = dockerfile.final_stage
    member, script, port = EXPECTED[image]
    healthchecks = dockerfile.of("HEALTHCHECK", final)
    cmd = dockerfile.of("CMD", final)[-1].args
    if port is None:
        assert not healthchecks, "the trainer image runs several commands: compose/chart probe each one"
    else:
        assert len(healthchecks) == 1
        check = healthchecks[0].args
        assert "urllib.request" in check
        assert HEALTH_PATHS[image] in check
        assert f"EXPOSE {port}" in {f"EXPOSE {i.args}" for i in dockerfile.of("EXPOSE", final)}
    if script is not None:
        scripts = tomllib.loads((workspace_members()[member] / "pyproject.toml").read_text())["project"]["scripts"]
        assert script in scripts, f"{member} does not define the console script {script}"
    if image == "inference":
        assert cmd == '["sentiment-inference"]'
    if image == "mlflow":
        assert cmd.startswith('["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"')


def test_trainer_image_works_from_the_prefect_yaml_folder() -> None:
    dockerfile = parse_dockerfile(REPO_ROOT / "services" / "trainer" / "Dockerfile")
    final = dockerfile.final_stage
    assert dockerfile.of("WORKDIR", final)[-1].args == "/app/services/trainer"
    copies = [i.flags_and_words() for i in dockerfile.of("COPY", final)]
    assert ({"from": "builder"}, ["/app/services/trainer", "/app/services/trainer"]) in copies, (
        "prefect.yaml is copied with the trainer source"
    )
    env = " ".join(i.args for i in dockerfile.of("ENV", final))
    for variable in ("PREFECT_HOME=/home/app", "PREFECT_UI_STATIC_DIRECTORY=/home/app"):
        assert variable in env, f"{variable}...: uid 10001 cannot write the root-owned venv"
    trainer = tomllib.loads((REPO_ROOT / "services" / "trainer" / "pyproject.toml").read_text())
    dependencies = " ".join(trainer["project"]["dependencies"])
    assert "prefect>=" in dependencies
    assert "prefect-kubernetes" in dependencies


@pytest.mark.parametrize("entry", DOCKERIGNORE_MUST_EXCLUDE)
def test_dockerignore_keeps_local_state_out_of_the_context(entry: str) -> None:
    assert is_ignored(entry, dockerignore_patterns()), f".dockerignore must exclude {entry}"


def test_dockerignore_matcher_sees_nested_and_negated_entries() -> None:
    patterns = ["**/__pycache__", "data", "docs", "!docs/keep.md"]
    assert is_ignored("libs/sentiment_core/src/sentiment_core/__pycache__", patterns)
    assert is_ignored("data/reviews.csv.gz", patterns)
    assert not is_ignored("docs/keep.md", patterns)
    assert not is_ignored("libs/sentiment_core/pyproject.toml", patterns)


def test_no_frontend_pull_and_the_commit_recorded(dockerfile: Dockerfile) -> None:
    """The built-in BuildKit frontend handles RUN --mount; a `# syntax=` line would pull one from a registry."""
    text = dockerfile.path.read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE), "no `# syntax=` directive"
    final = dockerfile.final_stage
    assert "GIT_COMMIT=unknown" in {i.args for i in dockerfile.of("ARG", final)}, "ARG GIT_COMMIT in the runtime"
    env = " ".join(i.args for i in dockerfile.of("ENV", final))
    assert "GIT_COMMIT=${GIT_COMMIT}" in env, "lineage reads GIT_COMMIT at run time"
