"""Every shell script of the deployment path passes shellcheck and parses under its own shell."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.conftest import REPO_ROOT, find_tool, run

SCRIPTS = sorted(
    {*REPO_ROOT.glob("compose/**/*.sh"), *REPO_ROOT.glob("services/*/docker-entrypoint*.sh")},
)


def test_there_are_scripts_to_check() -> None:
    names = {p.name for p in SCRIPTS}
    assert {"mlflow-server.sh", "trainer-worker.sh"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_shellcheck_is_clean(script: Path) -> None:
    result = run([find_tool("shellcheck"), "--severity=style", str(script)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_posix_shebang_and_strict_mode(script: Path) -> None:
    text = script.read_text()
    # The images are Debian slim: /bin/sh is dash, bash is there but the compose commands call `sh`.
    assert text.startswith("#!/bin/sh\n"), f"{script.name}: compose runs it with `sh`"
    assert "set -eu" in text
    syntax = run(["sh", "-n", str(script)])
    assert syntax.returncode == 0, syntax.stderr
