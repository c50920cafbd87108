"""The DVC pipeline's prepare stage, and `dvc push` / `dvc pull` of its output through MinIO."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from sentiment_core.data import load_dataset, sample_stratified
from sentiment_core.registry import dvc_data_hash
from sentiment_local.servers import DVC_BUCKET, Minio

REPO = Path(__file__).resolve().parents[2]


def dvc(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_prepare_push_pull_round_trip(tmp_path: Path, minio_server: Minio, imdb_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, project / name)
    (project / "data").mkdir()
    shutil.copy(REPO / "data" / ".gitignore", project / "data" / ".gitignore")
    source = tmp_path / "source.csv.gz"
    sample_stratified(load_dataset(imdb_path), 600, seed=5).to_csv(source, index=False)

    env = {
        **os.environ,
        **minio_server.env(),
        "DATA_SOURCE": str(source),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    dvc(["init", "-q"], project, env)
    shutil.copy(REPO / ".dvc" / "config", project / ".dvc" / "config")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    # Per-machine settings go to the git-ignored config.local, as the README tells users to do.
    dvc(["remote", "modify", "--local", "storage", "endpointurl", minio_server.endpoint], project, env)
    dvc(["remote", "modify", "--local", "storage", "url", f"s3://{DVC_BUCKET}/{prefix}"], project, env)

    dvc(["repro", "prepare"], project, env)
    data = project / "data" / "reviews.csv.gz"
    original = data.read_bytes()
    assert len(load_dataset(data)) == 600
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    recorded = lock["stages"]["prepare"]["outs"][0]["md5"]
    assert dvc_data_hash(data) == recorded

    dvc(["push"], project, env)
    stored = minio_server.s3().list_objects_v2(Bucket=DVC_BUCKET, Prefix=prefix).get("KeyCount", 0)
    assert stored >= 1

    data.unlink()
    shutil.rmtree(project / ".dvc" / "cache")
    dvc(["pull"], project, env)
    assert data.read_bytes() == original
