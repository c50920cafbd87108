"""Register the deployments of prefect.yaml against a Prefect API, with their work pools.

`prefect deploy` (run as a subprocess) stays the one reader of prefect.yaml; this module adds what it does not do:
create the pools (the Kubernetes one with our base job template), and give the {{ $VARS }} of prefect.yaml defaults.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from sentiment_trainer import FLOW_NAME, K8S_DEPLOYMENT, K8S_POOL, LOCAL_DEPLOYMENT, LOCAL_POOL
from sentiment_trainer.errors import TrainerError

Target = Literal["local", "k8s"]
PREFECT_FILE = "prefect.yaml"
K8S_TEMPLATE_RESOURCE = "k8s/base-job-template.json"


@dataclass(frozen=True)
class PoolSpec:
    name: str
    type: str
    deployment: str

    @property
    def full_deployment_name(self) -> str:
        return f"{FLOW_NAME}/{self.deployment}"


POOLS: dict[Target, PoolSpec] = {
    "local": PoolSpec(LOCAL_POOL, "process", LOCAL_DEPLOYMENT),
    "k8s": PoolSpec(K8S_POOL, "kubernetes", K8S_DEPLOYMENT),
}


@dataclass(frozen=True)
class PoolResult:
    name: str
    type: str
    action: Literal["created", "exists", "updated"]


@dataclass(frozen=True)
class DeploymentResult:
    name: str
    id: str
    work_pool: str


def k8s_base_job_template() -> dict[str, Any]:
    """The `sentiment-k8s` pool's base job template (the Helm chart mounts the same file)."""
    text = resources.files("sentiment_trainer").joinpath(K8S_TEMPLATE_RESOURCE).read_text()
    return json.loads(text)


def base_job_template(pool_type: str) -> dict[str, Any]:
    if pool_type == "kubernetes":
        return k8s_base_job_template()
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def find_project_dir(explicit: Path | None = None, trainer_dir: Path | None = None) -> Path:
    """The directory of prefect.yaml: --project-dir, else TRAINER_DIR, else this checkout, else the cwd (image)."""
    package_checkout = Path(__file__).resolve().parents[2]
    candidates = [path for path in (explicit, trainer_dir) if path is not None]
    if candidates:
        chosen = candidates[0].expanduser().resolve()
        if not (chosen / PREFECT_FILE).is_file():
            raise TrainerError(f"no {PREFECT_FILE} in {chosen}")
        return chosen
    for directory in (package_checkout, Path.cwd().resolve()):
        if (directory / PREFECT_FILE).is_file():
            return directory
    raise TrainerError(f"cannot find {PREFECT_FILE}; run from services/trainer or pass --project-dir / TRAINER_DIR")


def template_env(project_dir: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Values for prefect.yaml's {{ $VARS }}: the environment where set, else our defaults."""
    environ = os.environ if environ is None else environ
    return {"TRAINER_DIR": environ.get("TRAINER_DIR") or str(project_dir)}


async def ensure_pools(targets: Sequence[Target], update: bool = False) -> list[PoolResult]:
    """Create the pools that are missing. An existing pool keeps its template unless `update` (idempotent)."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    results: list[PoolResult] = []
    async with get_client() as client:
        for target in targets:
            spec = POOLS[target]
            template = base_job_template(spec.type)
            try:
                existing = await client.read_work_pool(spec.name)
            except ObjectNotFound:
                await client.create_work_pool(
                    WorkPoolCreate(name=spec.name, type=spec.type, base_job_template=template)
                )
                results.append(PoolResult(spec.name, spec.type, "created"))
                continue
            if existing.type != spec.type:
                raise TrainerError(
                    f"work pool '{spec.name}' exists with type '{existing.type}', expected '{spec.type}';"
                    " delete it or point PREFECT_API_URL elsewhere"
                )
            if update and existing.base_job_template != template:
                await client.update_work_pool(spec.name, WorkPoolUpdate(base_job_template=template))
                results.append(PoolResult(spec.name, spec.type, "updated"))
            else:
                results.append(PoolResult(spec.name, spec.type, "exists"))
    return results


# The pool's description records which template was last applied, so a restart can tell "same template as last
# time" (keep the pool, and any edit made in the Prefect UI) from "a new template" (a chart upgrade: apply it).
TEMPLATE_DIGEST_MARK = "base job template sha256:"


def template_digest(template: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def applied_digest(description: str | None) -> str | None:
    match = re.search(re.escape(TEMPLATE_DIGEST_MARK) + r"([0-9a-f]{16})", description or "")
    return match.group(1) if match else None


async def sync_pool(name: str, pool_type: str, template: Mapping[str, Any]) -> PoolResult:
    """Create the pool, or apply `template` when it differs from the one applied last (not on every restart)."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    digest = template_digest(template)
    description = (
        f"Managed by sentiment-trainer sync-pool ({TEMPLATE_DIGEST_MARK}{digest}). Edits made here are kept"
        " until a different template is applied (a chart upgrade that changes it)."
    )
    async with get_client() as client:
        try:
            existing = await client.read_work_pool(name)
        except ObjectNotFound:
            await client.create_work_pool(
                WorkPoolCreate(name=name, type=pool_type, base_job_template=dict(template), description=description)
            )
            return PoolResult(name, pool_type, "created")
        if existing.type != pool_type:
            raise TrainerError(f"work pool '{name}' exists with type '{existing.type}', expected '{pool_type}'")
        if applied_digest(existing.description) == digest:
            return PoolResult(name, pool_type, "exists")
        await client.update_work_pool(name, WorkPoolUpdate(base_job_template=dict(template), description=description))
        return PoolResult(name, pool_type, "updated")


def run_prefect_deploy(
    project_dir: Path, targets: Sequence[Target], api_url: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`prefect --no-prompt deploy` for the chosen deployments of prefect.yaml, from its directory."""
    # Bare deployment names: `flow/deployment` patterns are matched against the entrypoint's *function* name
    # (training_flow), not the flow name, by prefect 3.8's deploy command.
    names: list[str] = []
    for target in targets:
        names += ["--name", POOLS[target].deployment]
    env = {**os.environ, **template_env(project_dir), "PREFECT_API_URL": api_url}
    prefect = Path(sys.executable).parent / "prefect"
    command = [str(prefect) if prefect.is_file() else "prefect", "--no-prompt", "deploy", "--prefect-file"]
    result = subprocess.run(
        [*command, str(project_dir / PREFECT_FILE), *names],
        cwd=project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + "\n" + result.stderr).strip().splitlines()
        useful = [line.strip() for line in output if line.strip() and not line.startswith("│")]
        raise TrainerError(f"prefect deploy failed (exit {result.returncode}): {useful[-1] if useful else 'no output'}")
    return result


async def read_deployments(targets: Sequence[Target]) -> list[DeploymentResult]:
    from prefect import get_client

    async with get_client() as client:
        found = []
        for target in targets:
            spec = POOLS[target]
            deployment = await client.read_deployment_by_name(spec.full_deployment_name)
            found.append(
                DeploymentResult(spec.full_deployment_name, str(deployment.id), deployment.work_pool_name or "")
            )
        return found
