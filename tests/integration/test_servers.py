"""The local servers the fixtures start are the real ones and talk to each other."""

from __future__ import annotations

import httpx
import mlflow

from sentiment_local.servers import DVC_BUCKET, MLFLOW_BUCKET, HttpServer, Minio


def test_minio_has_the_platform_buckets(minio_server: Minio) -> None:
    names = {bucket["Name"] for bucket in minio_server.s3().list_buckets()["Buckets"]}
    assert {MLFLOW_BUCKET, DVC_BUCKET} <= names


def test_mlflow_proxies_artifacts_to_minio(tracking_uri: str, minio_server: Minio, tmp_path) -> None:
    mlflow.set_experiment("server-smoke")
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "notes/hello.txt")
    keys = [obj["Key"] for obj in minio_server.s3().list_objects_v2(Bucket=MLFLOW_BUCKET).get("Contents", [])]
    assert any(key.endswith(f"{run.info.run_id}/artifacts/notes/hello.txt") for key in keys), keys


def test_prefect_server_answers(prefect_server: HttpServer) -> None:
    response = httpx.get(f"{prefect_server.url}/api/health", timeout=5)
    assert response.status_code == 200
