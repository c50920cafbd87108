"""The three images `make compose-up` built: non-root entry point, their own HEALTHCHECK passes on its own, and
the runtime stage carries no uv, compiler or build cache (those stay in the builder stage)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.compose_e2e.stack import wait_until

IMAGES = ("sentiment-trainer:dev", "sentiment-inference:dev", "sentiment-mlflow:dev")
WITH_HEALTHCHECK = ("sentiment-inference:dev", "sentiment-mlflow:dev")


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=180, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result


@pytest.fixture
def containers() -> Iterator[list[str]]:
    created: list[str] = []
    yield created
    for name in created:
        docker("rm", "--force", name, check=False)


@pytest.mark.parametrize("image", IMAGES)
def test_entry_point_runs_as_uid_10001(image: str) -> None:
    assert docker("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip() == "10001"
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"].split(":")[0] == "10001"


@pytest.mark.parametrize("image", IMAGES)
def test_runtime_stage_has_no_uv_compiler_or_build_cache(image: str) -> None:
    probe = (
        "for tool in uv uvx gcc cc c++ make; do command -v $tool; done;"
        " ls -d /root/.cache/uv /root/.cache/pip /app/.venv/lib/python*/site-packages/uv 2>/dev/null; true"
    )
    found = docker("run", "--rm", "--user", "0", "--entrypoint", "sh", image, "-c", probe).stdout.split()
    assert found == [], f"{image} runtime carries {found}"


@pytest.mark.parametrize("image", WITH_HEALTHCHECK)
def test_image_healthcheck_passes_on_its_own(image: str, containers: list[str]) -> None:
    name = f"health-{image.split(':')[0]}-{uuid.uuid4().hex[:6]}"
    containers.append(name)
    # Probe every 2 s instead of 15 s: the same command, sooner.
    docker("run", "--detach", "--name", name, "--health-interval", "2s", image)

    def status() -> str | None:
        state = docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        assert state != "unhealthy", docker("logs", name).stderr[-2000:]
        return state if state == "healthy" else None

    wait_until(f"{image} to become healthy", status, timeout=180, interval=1)
