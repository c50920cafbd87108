"""A compose stack driven the way the README tells a user: `make compose-up` in a checkout, then HTTP on the
published ports. Helpers only talk to 127.0.0.1 (published ports) and to the harness engine's socket."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.support.servers import IMDB_DATA_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
# The dataset every test machine has (../shared, or $IMDB_DATA_DIR): read-only, mounted by `prepare`.
SHARED_DATA_DIR = IMDB_DATA_DIR
PROJECT = "sentiment-e2e"
HOST = "127.0.0.1"
PORTS = {
    "mlflow": 5001,
    "prefect": 4200,
    "minio-s3": 9000,
    "minio-console": 9001,
    "inference": 8000,
    "prometheus": 9090,
}
LONG_RUNNING = ("postgres", "minio", "mlflow", "prefect-server", "trainer", "inference", "prometheus")
ONE_SHOT = ("bucket-init", "prepare")
MODEL = "sentiment-classifier"
T = TypeVar("T")


def url(service: str, path: str = "/") -> str:
    return f"http://{HOST}:{PORTS[service]}{path}"


def copy_checkout(target: Path) -> Path:
    """The repository's files as a user's clone has them (tracked + new, not ignored): no .env, .venv, data."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO_ROOT / rel
        if not source.is_file():
            continue  # deleted in the work tree but still in the index
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
    # A clone is world-readable (umask 022); pytest's temp dirs are 0700, which uid 10001 could not enter.
    target.chmod(0o755)
    return target


def git_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def wait_until(what: str, check: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """Poll `check` until it returns something truthy; fail with `what` and the last error on timeout."""
    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (httpx.HTTPError, subprocess.SubprocessError, KeyError, ValueError) as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last})")


@dataclass
class Stack:
    """One checkout and the environment `make` runs in (the engine's DOCKER_HOST, a unique project name)."""

    directory: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, directory: Path, extra: Mapping[str, str]) -> Stack:
        env = {**os.environ, "COMPOSE_PROJECT_NAME": PROJECT, **extra}
        # A user's shell has none of the repository's virtualenv on PATH: compose comes from `docker compose`.
        env.pop("VIRTUAL_ENV", None)
        return cls(copy_checkout(directory), env)

    def run(
        self, argv: list[str], timeout: float = 300, env: Mapping[str, str] | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            cwd=self.directory,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n{output}")
        return result

    def make(
        self, *targets: str, timeout: float = 300, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = self.run(["make", "--no-print-directory", *targets], timeout=timeout, env=env)
        if check and result.returncode != 0:
            # What the services said: the make output only tells which one failed.
            logs = self.compose("logs", "--no-color", "--tail", "25", check=False, timeout=120).stdout
            raise AssertionError(
                f"make {' '.join(targets)} exited {result.returncode}:\n{result.stdout[-2500:]}\n"
                f"{result.stderr[-2500:]}\n--- docker compose logs (last lines) ---\n{logs[-12000:]}"
            )
        return result

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["docker", "compose", *args], timeout=timeout, check=check)

    def containers(self) -> list[dict[str, Any]]:
        """`docker compose ps --all` as dicts (compose prints one JSON object per line, or one list)."""
        out = self.compose("ps", "--all", "--format", "json").stdout.strip()
        if not out:
            return []
        if out.startswith("["):
            return json.loads(out)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def state(self) -> dict[str, dict[str, Any]]:
        return {c["Service"]: c for c in self.containers()}

    def project_objects(self, kind: str) -> list[str]:
        """Names of this project's containers / volumes / networks on the engine (compose labels them)."""
        argv = ["docker", kind, "ls", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}"]
        if kind == "container":
            argv.insert(3, "--all")
        return self.run(argv, check=True).stdout.split()


# ---- the platform's APIs, through the published ports --------------------------------------------------------


def prefect_trigger(client: httpx.Client, parameters: dict[str, Any]) -> str:
    deployment = client.get(url("prefect", "/api/deployments/name/sentiment-training/local"))
    deployment.raise_for_status()
    created = client.post(
        url("prefect", f"/api/deployments/{deployment.json()['id']}/create_flow_run"), json={"parameters": parameters}
    )
    created.raise_for_status()
    return str(created.json()["id"])


def prefect_wait(client: httpx.Client, flow_run_id: str, timeout: float) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run = client.get(url("prefect", f"/api/flow_runs/{flow_run_id}")).json()
        state = run["state"]["type"]
        if state in {"FAILED", "CRASHED", "CANCELLED"}:
            raise AssertionError(f"flow run {flow_run_id} ended {state}: {run['state'].get('message')}")
        return run if state == "COMPLETED" else None

    return wait_until(f"flow run {flow_run_id} to complete", finished, timeout, interval=3)


def champion_version(client: httpx.Client) -> str | None:
    response = client.get(
        url("mlflow", "/api/2.0/mlflow/registered-models/alias"), params={"name": MODEL, "alias": "champion"}
    )
    if response.status_code == 404 or "RESOURCE_DOES_NOT_EXIST" in response.text:
        return None
    response.raise_for_status()
    return str(response.json()["model_version"]["version"])


def run_ids(client: httpx.Client) -> set[str]:
    experiment = client.get(url("mlflow", "/api/2.0/mlflow/experiments/get-by-name"), params={"experiment_name": MODEL})
    experiment.raise_for_status()
    found = client.post(
        url("mlflow", "/api/2.0/mlflow/runs/search"),
        json={"experiment_ids": [experiment.json()["experiment"]["experiment_id"]], "max_results": 100},
    )
    found.raise_for_status()
    return {run["info"]["run_id"] for run in found.json().get("runs", [])}


def serving_version(client: httpx.Client) -> str | None:
    response = client.post(url("inference", "/predict"), json={"text": "A wonderful, moving film."})
    return response.json()["model_version"] if response.status_code == 200 else None
