"""The DVC pipeline's prepare stage, and `dvc push` / `dvc pull` of its output through MinIO."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from sentiment_core.data import load_dataset, sample_stratified
from sentiment_core.registry import dvc_data_hash
from sentiment_local.servers import DVC_BUCKET, Minio
from tests.support.dvc_project import DvcProject


def test_prepare_push_pull_round_trip(
    tmp_path: Path, minio_server: Minio, imdb_path: Path, imdb_test_path: Path
) -> None:
    source = tmp_path / "source.csv.gz"
    sample_stratified(load_dataset(imdb_path), 600, seed=5).to_csv(source, index=False)
    test_source = tmp_path / "test_source.csv.gz"
    sample_stratified(load_dataset(imdb_test_path), 200, seed=5).to_csv(test_source, index=False)
    # Offline, the stage needs both outputs: the dataset and the independent test file.
    env = {"DATA_SOURCE": str(source), "DATA_TEST_SOURCE": str(test_source)}
    project = DvcProject(tmp_path / "project", minio_server, env)

    project.run("repro", "prepare")
    original = project.data.read_bytes()
    assert len(load_dataset(project.data)) == 600
    lock = yaml.safe_load((project.root / "dvc.lock").read_text())
    assert dvc_data_hash(project.data) == lock["stages"]["prepare"]["outs"][0]["md5"]
    assert len(load_dataset(project.root / "data" / "test.csv.gz")) == 200

    project.run("push")
    stored = minio_server.s3().list_objects_v2(Bucket=DVC_BUCKET, Prefix=project.prefix).get("KeyCount", 0)
    assert stored >= 1

    project.data.unlink()
    shutil.rmtree(project.root / ".dvc" / "cache")
    project.run("pull")
    assert project.data.read_bytes() == original
