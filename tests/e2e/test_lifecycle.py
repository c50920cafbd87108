"""The model's whole life on real local services, every step asserted.

prepare (DVC) -> dvc push -> training run as a Prefect deployment run -> v1 champion -> the API serves v1 ->
a better run -> v2 promoted -> the API serves v2 while a client keeps calling it (zero failures) -> rollback ->
v1 again -> a deliberately worse run -> not promoted, the API unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from sentiment_core import registry
from sentiment_core.data import load_dataset, sample_stratified
from sentiment_core.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS
from sentiment_local.process import ManagedProcess, tail
from sentiment_local.servers import (
    DVC_BUCKET,
    LOCAL_POOL,
    HttpServer,
    Minio,
    prefect_env,
    run_training_deployment,
    start_inference,
    start_prefect_worker,
)
from tests.support.dvc_project import DvcProject
from tests.support.traffic import Traffic

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POLL_SECONDS = 1
# A weak first model, so that the default parameters are a real improvement on the same split.
WEAK = {"n_features": 4096, "C": 0.05}
WORSE = {"n_features": 1024, "C": 0.001}


@dataclass
class Platform:
    mlflow: HttpServer
    prefect: HttpServer
    api: HttpServer
    worker: ManagedProcess
    model_name: str
    data: Path
    env: dict[str, str]

    def train_through_prefect(self, overrides: dict[str, object]) -> None:
        result = run_training_deployment(
            self.env,
            {"set_champion": True, "data_path": str(self.data), "model_name": self.model_name, "overrides": overrides},
            timeout=600,
        )
        assert result.returncode == 0, (
            f"flow run failed:\n{result.stdout}\n{result.stderr}\nworker log:\n{tail(self.worker.log_path, 80)}"
        )
        assert "Completed" in result.stdout, result.stdout

    def trainer(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "sentiment-trainer"), *args, "--model-name", self.model_name],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def served_version(self) -> str | None:
        response = httpx.post(f"{self.api.url}/predict", json={"text": "what a great film"}, timeout=10)
        return response.json()["model_version"] if response.status_code == 200 else None

    def wait_for_version(self, version: str, within: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            if self.served_version() == version:
                return time.monotonic() - started
            time.sleep(0.2)
        info = httpx.get(f"{self.api.url}/model-info", timeout=10).text
        raise AssertionError(
            f"API did not serve v{version} within {within}s; model-info: {info}\n{tail(self.api.process.log_path)}"
        )


@pytest.fixture
def platform(
    tmp_path: Path,
    mlflow_server: HttpServer,
    prefect_server: HttpServer,
    minio_server: Minio,
    imdb_path: Path,
    imdb_test_path: Path,
    model_name: str,
) -> Iterator[tuple[Platform, DvcProject]]:
    source = tmp_path / "source.csv.gz"
    sample_stratified(load_dataset(imdb_path), 4_000, seed=21).to_csv(source, index=False)
    # Offline, the prepare stage takes the independent test file (other films) from a local file too.
    project = DvcProject(
        tmp_path / "project", minio_server, {"DATA_SOURCE": str(source), "DATA_TEST_SOURCE": str(imdb_test_path)}
    )
    env = {
        **project.env,
        **prefect_env(tmp_path / "prefect-client", f"{prefect_server.url}/api"),
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "TRAINER_DIR": str(REPO / "services" / "trainer"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    }
    deploy = subprocess.run(
        [str(BIN / "sentiment-trainer"), "deploy", "--only", "local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    worker = start_prefect_worker(
        tmp_path / "prefect-worker",
        f"{prefect_server.url}/api",
        pool=LOCAL_POOL,
        env=env,
        cwd=REPO / "services" / "trainer",
    )
    api = start_inference(
        tmp_path, mlflow_server.url, env={"MODEL_NAME": model_name, "POLL_INTERVAL_SECONDS": str(POLL_SECONDS)}
    )
    try:
        yield Platform(mlflow_server, prefect_server, api, worker, model_name, project.data, env), project
    finally:
        api.process.stop()
        worker.stop()


def eventually(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"not true within {within}s: {what}")


@pytest.mark.slow
def test_model_lifecycle(platform: tuple[Platform, DvcProject], minio_server: Minio) -> None:
    p, project = platform
    client = MlflowClient(p.mlflow.url)

    def champion() -> str | None:
        version = registry.alias_version(client, p.model_name, CHAMPION_ALIAS)
        return str(version.version) if version else None

    # 1. Data: the DVC prepare stage, then `dvc push` to MinIO.
    project.run("repro", "prepare")
    project.run("push")
    assert minio_server.s3().list_objects_v2(Bucket=DVC_BUCKET, Prefix=project.prefix)["KeyCount"] >= 1
    dvc_hash = registry.dvc_data_hash(p.data)
    assert dvc_hash

    # 2. Before any champion the API is Ready (the registry has nothing to serve) and says so on /predict.
    assert httpx.get(f"{p.api.url}/health/ready", timeout=5).json()["ready"] is True
    refused = httpx.post(f"{p.api.url}/predict", json={"text": "fine"}, timeout=5)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "no_champion"

    # 3. First training run, through Prefect: version 1 becomes champion, with lineage back to the data.
    p.train_through_prefect(WEAK)
    assert champion() == "1"
    v1 = client.get_model_version(p.model_name, "1")
    assert v1.tags[registry.TAG_DVC_DATA_HASH] == dvc_hash
    assert v1.tags[registry.TAG_FLOW_RUN_ID]
    p.wait_for_version("1", within=POLL_SECONDS + 30)
    assert httpx.get(f"{p.api.url}/health/ready", timeout=5).status_code == 200

    # 4. A better run while a client keeps calling: v2 is promoted and served, and no request fails.
    with Traffic(p.api.url) as traffic:
        p.train_through_prefect({})
        assert champion() == "2"
        p.wait_for_version("2", within=POLL_SECONDS + 30)
        time.sleep(1)
    assert traffic.failures == []
    assert set(traffic.versions) <= {"1", "2"}
    assert traffic.versions[-1] == "2"
    assert len(traffic.versions) > 20
    v2 = client.get_model_version(p.model_name, "2")
    assert v2.tags[registry.TAG_PROMOTION_DECISION] == "promoted"
    assert float(v2.tags[registry.TAG_PROMOTION_CANDIDATE_SCORE]) > float(
        v2.tags[registry.TAG_PROMOTION_CHAMPION_SCORE]
    )

    # 5. Rollback: champion back to v1, and the API follows.
    assert "v2 -> v1" in p.trainer("rollback")
    assert champion() == "1"
    p.wait_for_version("1", within=POLL_SECONDS + 30)

    # 6. A deliberately worse run is registered but not promoted; the API keeps serving v1.
    p.train_through_prefect(WORSE)
    assert champion() == "1"
    v3 = client.get_model_version(p.model_name, "3")
    assert v3.tags[registry.TAG_PROMOTION_DECISION] == "not-promoted"
    assert CHALLENGER_ALIAS in (v3.aliases or [])
    time.sleep(POLL_SECONDS * 3)
    assert p.served_version() == "1"
    info = httpx.get(f"{p.api.url}/model-info", timeout=5).json()
    assert str(info["version"]) == "1"
