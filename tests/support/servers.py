"""Session fixtures that start real servers as local processes: PostgreSQL, MinIO, MLflow and Prefect.

Each server starts once per test session on free ports, with state in a temp dir, and stops at the end.
A server that fails to start fails the test with its log's last lines.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentiment_local.servers import (
    MLFLOW_BUCKET,
    MLFLOW_DATABASE,
    PREFECT_DATABASE,
    HttpServer,
    Minio,
    Postgres,
    start_minio,
    start_mlflow,
    start_postgres,
    start_prefect_server,
)

# Fixtures that start a real server process (the four below, and the inference tests' `start_service`, which runs the
# API under uvicorn). A test that uses one, directly or through another fixture, is marked `servers` at collection,
# so `pytest -m "not servers"` runs only the pure, in-process tests. A test that starts a process itself carries
# `@pytest.mark.servers` by hand.
SERVER_FIXTURES = frozenset({"postgres_server", "minio_server", "mlflow_server", "prefect_server", "start_service"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


REPO_ROOT = Path(__file__).resolve().parents[2]
# The real IMDb data: ../shared/data/imdb beside the clone, or where $IMDB_DATA_DIR says (a CI runner without ../shared
# gets it from the product's own data step: scripts/ci/dataset.sh).
IMDB_DATA_DIR = Path(os.environ.get("IMDB_DATA_DIR") or REPO_ROOT.parent / "shared" / "data" / "imdb")
SHARED_DATA = IMDB_DATA_DIR / "reviews.csv.gz"
# 5,000 reviews of the official test split (other films than SHARED_DATA's), none of them in SHARED_DATA.
SHARED_TEST_DATA = IMDB_DATA_DIR / "test_sample.csv.gz"


@pytest.fixture(scope="session")
def imdb_path() -> Path:
    """The real labelled IMDb reviews shipped beside the repo (see shared/data/imdb/SOURCE.md)."""
    if not SHARED_DATA.is_file():
        pytest.fail(f"real data not found at {SHARED_DATA}; put ../shared beside the clone or set IMDB_DATA_DIR")
    return SHARED_DATA


@pytest.fixture(scope="session")
def imdb_test_path() -> Path:
    """The independent test sample shipped beside the repo (official test split; see shared/data/imdb/SOURCE.md)."""
    if not SHARED_TEST_DATA.is_file():
        pytest.fail(f"test data not found at {SHARED_TEST_DATA}; put ../shared beside the clone or set IMDB_DATA_DIR")
    return SHARED_TEST_DATA


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    # Not under pytest's tmp dir: that is private to root, and PostgreSQL runs as `postgres` when we are root.
    root = Path(tempfile.mkdtemp(prefix="sentiment-test-pg-"))
    root.chmod(0o755)
    server = start_postgres(root / "data")
    try:
        server.create_database(MLFLOW_DATABASE)
        server.create_database(PREFECT_DATABASE)
        yield server
    finally:
        server.process.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Minio]:
    root = tmp_path_factory.mktemp("minio")
    server = start_minio(root / "data")
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: Postgres, minio_server: Minio
) -> Iterator[HttpServer]:
    """MLflow with the Postgres backend and artifacts proxied to s3://mlflow on MinIO, as in the cluster."""
    state = tmp_path_factory.mktemp("mlflow")
    server = start_mlflow(
        state,
        backend_store_uri=postgres_server.url(MLFLOW_DATABASE),
        artifacts_destination=f"s3://{MLFLOW_BUCKET}",
        env=minio_server.env(),
        # /metrics on, as in compose and the chart: the scrape test reads it (tests/observability).
        metrics_dir=state / "metrics",
    )
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory, postgres_server: Postgres) -> Iterator[HttpServer]:
    """The Prefect API with its Postgres backend."""
    server = start_prefect_server(
        tmp_path_factory.mktemp("prefect"),
        database_url=postgres_server.url(PREFECT_DATABASE, driver="postgresql+asyncpg"),
        metrics=True,
    )
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture
def tracking_uri(mlflow_server: HttpServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's MLflow server, also as $MLFLOW_TRACKING_URI for the services' settings under test.

    MLflow's process-wide tracking URI is left alone: the library takes the URI explicitly (issue 15, item 3).
    """
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    return mlflow_server.url


@pytest.fixture
def model_name() -> str:
    """A registered-model name of this test's own: tests share one MLflow server."""
    return f"sentiment-test-{uuid.uuid4().hex[:8]}"
