"""`sentiment-trainer deploy` against a real Prefect server; a process worker runs the `local` deployment; the
Kubernetes pool's template and the `k8s` deployment's job variables render a valid Job manifest (offline schema)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from sentiment_core import registry
from sentiment_local.process import executable
from sentiment_local.servers import LOCAL_POOL, HttpServer, prefect_env
from sentiment_trainer import deployments
from sentiment_trainer.cli import app
from services.trainer.tests.k8s_job_render import (
    POD_SPEC_FIELDS_DROPPED_BY_API_SERVER,
    as_stored_by_api_server,
    render_k8s_job,
)

pytestmark = pytest.mark.slow

IN_CLUSTER_MLFLOW = "http://sentiment-mlflow:5000"
KUBERNETES_VERSION = "1.34.0"


@pytest.fixture(scope="module")
def deployed(prefect_server: HttpServer) -> dict[str, str]:
    """Both deployments registered once for this module."""
    env = {"PREFECT_API_URL": f"{prefect_server.url}/api"}
    result = CliRunner().invoke(app, ["deploy", "--update-pools"], env=env)
    assert result.exit_code == 0, result.output
    return {"output": result.stdout, **env}


def _read(coroutine_factory: Any) -> Any:
    return asyncio.run(coroutine_factory())


def test_deploy_registers_both_deployments_and_is_idempotent(deployed: dict[str, str], prefect_api: str) -> None:
    from prefect import get_client

    assert "sentiment-training/local" in deployed["output"]
    assert "sentiment-training/k8s" in deployed["output"]

    async def read() -> tuple[Any, Any, Any, Any]:
        async with get_client() as client:
            return (
                await client.read_work_pool("sentiment-local"),
                await client.read_work_pool("sentiment-k8s"),
                await client.read_deployment_by_name("sentiment-training/local"),
                await client.read_deployment_by_name("sentiment-training/k8s"),
            )

    local_pool, k8s_pool, local, k8s = _read(read)
    assert (local_pool.type, k8s_pool.type) == ("process", "kubernetes")
    assert k8s_pool.base_job_template == deployments.k8s_base_job_template()
    assert local.work_pool_name == "sentiment-local"
    assert k8s.work_pool_name == "sentiment-k8s"
    assert local.entrypoint == k8s.entrypoint == "sentiment_trainer.flow.training_flow"
    # The image carries the code: no build/push, only a working directory to pull.
    assert k8s.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/app/services/trainer"}}
    ]
    trainer_dir = Path(deployments.__file__).resolve().parents[2]
    assert local.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(trainer_dir)}}]
    assert k8s.parameters == {"set_champion": True}

    # Again: nothing is created twice, the same deployment is updated in place.
    again = CliRunner().invoke(app, ["deploy", "--only", "local"], env={"PREFECT_API_URL": prefect_api})
    assert again.exit_code == 0, again.output
    assert "sentiment-local (process): exists" in again.stdout
    assert str(local.id) in again.stdout


def test_deploy_without_a_prefect_api_is_one_line() -> None:
    from sentiment_local.process import free_port

    result = CliRunner().invoke(app, ["deploy"], env={"PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"})
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.strip().startswith("error: cannot reach the Prefect API")
    bad = CliRunner().invoke(app, ["deploy", "--only", "cloud"], env={"PREFECT_API_URL": "http://x/api"})
    assert bad.exit_code == 1
    assert "--only must be 'local' or 'k8s'" in bad.stderr


def test_k8s_deployment_renders_a_valid_job_manifest(deployed: dict[str, str], prefect_api: str) -> None:
    from prefect import get_client

    async def render() -> dict[str, Any]:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("sentiment-training/k8s")
            pool = await client.read_work_pool("sentiment-k8s")
            return await render_k8s_job(deployment.job_variables, pool.base_job_template, deployment=deployment)

    manifest = _read(render)
    stored = as_stored_by_api_server(manifest)
    kubernetes_validate.validate(stored, KUBERNETES_VERSION, strict=True)
    # The only difference with what the worker submits: the two keys prefect-kubernetes requires in the pod spec.
    pod_spec = manifest["spec"]["template"]["spec"]
    assert {key: pod_spec[key] for key in POD_SPEC_FIELDS_DROPPED_BY_API_SERVER} == {
        "parallelism": 1,
        "completions": 1,
    }

    # The deployment sets nothing release-specific: the pool's template decides (the chart fills its defaults).
    assert stored["kind"] == "Job"
    assert stored["metadata"]["namespace"] == "mlops"
    assert stored["spec"]["ttlSecondsAfterFinished"] == 86400
    assert stored["spec"]["backoffLimit"] == 0
    pod = stored["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert container["image"] == "sentiment-trainer:dev"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == ["prefect", "flow-run", "execute"]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "3Gi"},
    }
    # A read-only root filesystem: the pool's emptyDirs give the run its writable /tmp and home.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/home/app"}
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == IN_CLUSTER_MLFLOW
    assert env["DATA_PATH"] == "/data/reviews.csv.gz"
    assert env["LOG_FORMAT"] == "json"
    assert env["PREFECT__FLOW_RUN_ID"]


def test_k8s_pool_template_renders_valid_jobs_with_its_defaults_and_volumes(prefect_api: str) -> None:
    """The pool alone (a deployment with no job variables), and with a data volume mounted through the variables."""
    bare = asyncio.run(render_k8s_job({}))
    kubernetes_validate.validate(as_stored_by_api_server(bare), KUBERNETES_VERSION, strict=True)
    container = bare["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "sentiment-trainer:dev"
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "3Gi"}

    with_data = asyncio.run(
        render_k8s_job(
            {
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "sentiment-data"}}],
                "volume_mounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
            }
        )
    )
    kubernetes_validate.validate(as_stored_by_api_server(with_data), KUBERNETES_VERSION, strict=True)
    assert with_data["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == "/data"


def test_local_deployment_runs_to_completed_on_a_process_worker(
    deployed: dict[str, str],
    prefect_api: str,
    prefect_server: HttpServer,
    tracking_uri: str,
    trainer_data: Path,
    model_name: str,
    tmp_path: Path,
) -> None:
    from prefect import get_client
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        "sentiment-training/local",
        parameters={
            "data_path": str(trainer_data),
            "overrides": {"n_features": 2048, "ngram_max": 1},
            "model_name": model_name,
            "experiment_name": model_name,
        },
        timeout=0,
    )
    # --run-once: the worker takes the scheduled run, executes it as a subprocess, waits for it, exits.
    worker = subprocess.run(
        [executable("prefect"), "worker", "start", "--pool", LOCAL_POOL, "--type", "process", "--run-once"],
        env={**os.environ, **prefect_env(tmp_path / "worker-home", prefect_api)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = worker.stdout[-3000:] + worker.stderr[-3000:]
    assert worker.returncode == 0, log

    async def final_state() -> Any:
        async with get_client() as client:
            for _ in range(60):
                state = (await client.read_flow_run(flow_run.id)).state
                if state is not None and state.is_final():
                    return state
                await asyncio.sleep(1)
            return state

    state = _read(final_state)
    assert state is not None, log
    assert state.is_completed(), f"{state}\n{log}"

    client = MlflowClient(tracking_uri)
    champion = registry.alias_version(client, model_name, "champion")
    assert champion is not None
    assert champion.tags[registry.TAG_FLOW_RUN_ID] == str(flow_run.id)
    assert client.get_run(champion.run_id).data.params["model.n_features"] == "2048"


def test_sync_pool_applies_a_changed_template_and_keeps_ui_edits_across_restarts(
    prefect_api: str, tmp_path: Path
) -> None:
    """The worker's init container: `sentiment-trainer sync-pool` at every (re)start of the worker pod."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    name = "sync-pool-test"
    template = deployments.k8s_base_job_template()
    template_file = tmp_path / "template.json"
    template_file.write_text(json.dumps(template))
    env = {"PREFECT_API_URL": prefect_api}

    def sync() -> str:
        result = CliRunner().invoke(
            app, ["sync-pool", "--name", name, "--base-job-template", str(template_file)], env=env
        )
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    async def read() -> Any:
        async with get_client() as client:
            return await client.read_work_pool(name)

    async def edit_in_the_ui(pool_template: dict[str, Any]) -> None:
        async with get_client() as client:
            await client.update_work_pool(name, WorkPoolUpdate(base_job_template=pool_template))

    assert sync() == f"work pool {name} (kubernetes): created"
    assert _read(read).base_job_template == template
    # An operator edits the pool in the Prefect UI; the worker restarts with the same chart template: kept.
    edited = json.loads(json.dumps(template))
    edited["variables"]["properties"]["finished_job_ttl"]["default"] = 60
    _read(lambda: edit_in_the_ui(edited))
    assert sync() == f"work pool {name} (kubernetes): exists"
    assert _read(read).base_job_template == edited
    # A chart upgrade changes the template: applied, replacing the edit.
    template["variables"]["properties"]["finished_job_ttl"]["default"] = 600
    template_file.write_text(json.dumps(template))
    assert sync() == f"work pool {name} (kubernetes): updated"
    assert _read(read).base_job_template == template
    # A pool of another type under that name is refused in one line.
    bad = CliRunner().invoke(
        app, ["sync-pool", "--name", name, "--type", "process", "--base-job-template", str(template_file)], env=env
    )
    assert bad.exit_code == 1
    assert "exists with type 'kubernetes'" in bad.stderr
