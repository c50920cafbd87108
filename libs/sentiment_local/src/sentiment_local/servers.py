"""The platform's servers as local processes: PostgreSQL, MinIO, MLflow, Prefect (server and worker), the API.

Used by `make demo` and by the test fixtures, so both run exactly the same commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import psycopg2
from botocore.config import Config

from sentiment_local.process import ManagedProcess, ServerError, executable, free_port, http_ok, run

MLFLOW_BUCKET = "mlflow"
DVC_BUCKET = "dvc"
MLFLOW_DATABASE = "mlflow"
PREFECT_DATABASE = "prefect"
LOCAL_POOL = "sentiment-local"
TRAINING_DEPLOYMENT = "sentiment-training/local"


@dataclass
class Postgres:
    process: ManagedProcess
    port: int
    user: str = "postgres"
    host: str = "127.0.0.1"

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        """Create `name` unless it exists (idempotent)."""
        connection = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()


@dataclass
class Minio:
    process: ManagedProcess
    port: int
    console_port: int
    access_key: str
    secret_key: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What S3 clients (the MLflow server, DVC, boto3) need to reach this MinIO."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 3}),
        )

    def ensure_buckets(self, names: Sequence[str] = (MLFLOW_BUCKET, DVC_BUCKET)) -> None:
        client = self.s3()
        existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
        for name in names:
            if name not in existing:
                client.create_bucket(Bucket=name)


@dataclass
class HttpServer:
    process: ManagedProcess
    port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_postgres(data_dir: Path, port: int | None = None, timeout: float = 60) -> Postgres:
    """initdb (once) and start a PostgreSQL server on 127.0.0.1 with trust auth for the local user."""
    port = port or free_port()
    data_dir = data_dir.resolve()
    socket_dir = data_dir.parent / f"{data_dir.name}-socket"
    as_root = os.geteuid() == 0
    # PostgreSQL refuses to run as root: run it as the `postgres` system user instead.
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    user = "postgres" if as_root else os.environ.get("USER", "postgres")
    if not (data_dir / "PG_VERSION").is_file():
        data_dir.mkdir(parents=True, exist_ok=True)
        if as_root:
            shutil.chown(data_dir, "postgres", "postgres")
        run([*prefix, executable("initdb"), "-D", str(data_dir), "--auth=trust", "-U", user, "-E", "UTF8"])
    socket_dir.mkdir(parents=True, exist_ok=True)
    if as_root:
        shutil.chown(socket_dir, "postgres", "postgres")
    process = ManagedProcess(
        name="postgres",
        argv=[
            *prefix,
            executable("postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-k",
            str(socket_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
        log_path=data_dir.parent / "postgres.log",
    ).start()
    server = Postgres(process=process, port=port, user=user)
    process.wait_until(lambda: _postgres_ready(server), timeout, "accepting connections")
    return server


def _postgres_ready(server: Postgres) -> bool:
    try:
        psycopg2.connect(host=server.host, port=server.port, user=server.user, dbname="postgres").close()
        return True
    except psycopg2.OperationalError:
        return False


def start_minio(
    data_dir: Path,
    port: int | None = None,
    console_port: int | None = None,
    access_key: str = "minioadmin",
    secret_key: str = "minioadmin-secret",  # noqa: S107 - local development default
    timeout: float = 60,
) -> Minio:
    port = port or free_port()
    console_port = console_port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        name="minio",
        argv=[
            executable("minio"),
            "server",
            str(data_dir),
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console_port}",
            "--quiet",
        ],
        env={"MINIO_ROOT_USER": access_key, "MINIO_ROOT_PASSWORD": secret_key, "MINIO_BROWSER": "on"},
        log_path=data_dir.parent / "minio.log",
    ).start()
    server = Minio(process, port, console_port, access_key, secret_key)
    process.wait_until(lambda: http_ok(f"{server.endpoint}/minio/health/live"), timeout, "healthy")
    server.ensure_buckets()
    return server


def start_mlflow(
    state_dir: Path,
    backend_store_uri: str,
    artifacts_destination: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    metrics_dir: Path | None = None,
) -> HttpServer:
    """The tracking server with proxied artifacts (clients need only MLFLOW_TRACKING_URI).

    With `metrics_dir`, `--expose-prometheus DIR` serves Prometheus metrics on `/metrics` (prometheus-flask-exporter
    keeps its multiprocess files in DIR).
    """
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    metrics_args = ["--expose-prometheus", str(metrics_dir)] if metrics_dir else []
    server_env = {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **(env or {}),
    }
    process = ManagedProcess(
        name="mlflow",
        argv=[
            executable("mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_store_uri,
            "--artifacts-destination",
            artifacts_destination,
            "--serve-artifacts",
            "--workers",
            "1",
            "--allowed-hosts",
            f"127.0.0.1:{port},localhost:{port},127.0.0.1,localhost",
            *metrics_args,
        ],
        env=server_env,
        log_path=state_dir / "mlflow.log",
        cwd=state_dir,
    ).start()
    server = HttpServer(process, port, server_env)
    process.wait_until(
        lambda: http_ok(f"{server.url}/api/2.0/mlflow/experiments/search?max_results=1"),
        timeout,
        "serving its API",
    )
    return server


def start_prefect_server(
    home: Path, port: int | None = None, database_url: str | None = None, timeout: float = 120, metrics: bool = False
) -> HttpServer:
    """`prefect server start`; with `metrics`, Prometheus metrics on `/api/metrics` (PREFECT_SERVER_METRICS_ENABLED)."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = prefect_env(home, f"http://127.0.0.1:{port}/api")
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    if metrics:
        env["PREFECT_SERVER_METRICS_ENABLED"] = "true"
    process = ManagedProcess(
        name="prefect-server",
        argv=[executable("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        log_path=home / "prefect-server.log",
    ).start()
    server = HttpServer(process, port, env)
    process.wait_until(lambda: http_ok(f"{server.url}/api/health"), timeout, "healthy")
    return server


def prefect_env(home: Path, api_url: str) -> dict[str, str]:
    """Client-side Prefect settings: our own home (not ~/.prefect) and no analytics."""
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_LOGGING_LEVEL": "INFO",
    }


def start_prefect_worker(
    home: Path,
    api_url: str,
    pool: str = LOCAL_POOL,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    metrics_port: int | None = None,
) -> ManagedProcess:
    """A process worker: each flow run of the pool's deployments becomes a local subprocess.

    With `metrics_port`, the worker serves Prometheus metrics on that port (PREFECT_CLIENT_METRICS_*). Only for a
    worker that runs no flow: its flow-run subprocesses inherit the setting and would fail to bind the same port.
    """
    metrics_env = (
        {"PREFECT_CLIENT_METRICS_ENABLED": "true", "PREFECT_CLIENT_METRICS_PORT": str(metrics_port)}
        if metrics_port
        else {}
    )
    return ManagedProcess(
        name="prefect-worker",
        argv=[executable("prefect"), "worker", "start", "--pool", pool, "--type", "process"],
        env={**prefect_env(home, api_url), **metrics_env, **(env or {})},
        log_path=home / "prefect-worker.log",
        cwd=cwd,
    ).start()


def start_inference(
    log_dir: Path,
    tracking_uri: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> HttpServer:
    """The API under uvicorn; it starts without a champion, so wait for liveness, not readiness."""
    port = port or free_port()
    server_env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        **(env or {}),
    }
    process = ManagedProcess(
        name="inference",
        argv=[executable("sentiment-inference")],
        env=server_env,
        log_path=log_dir / "inference.log",
    ).start()
    server = HttpServer(process, port, server_env)
    process.wait_until(lambda: http_ok(f"{server.url}/health/live"), timeout, "live")
    return server


def ensure_server_binaries() -> None:
    """Fail early, naming what is missing, before starting anything."""
    missing = []
    for name in ("initdb", "postgres", "minio", "mlflow", "prefect"):
        try:
            executable(name)
        except ServerError:
            missing.append(name)
    if missing:
        raise ServerError(f"missing programs: {', '.join(missing)}; run `make tools install`")


def run_training_deployment(
    env: Mapping[str, str], parameters: Mapping[str, object], timeout: float = 1800, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    """`prefect deployment run sentiment-training/local --watch` with JSON parameters; returns its outcome.

    With capture=False the run's progress goes straight to the terminal (the demo shows it as it happens).
    """
    argv = [executable("prefect"), "deployment", "run", TRAINING_DEPLOYMENT]
    for name, value in parameters.items():
        argv += ["--param", f"{name}={json.dumps(value)}"]
    argv += ["--watch", "--watch-timeout", str(int(timeout))]
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=capture, text=True, timeout=timeout + 60, check=False
    )


# libs/sentiment_local/src/sentiment_local/servers.py -> the repository root (a workspace install is editable).
PROMETHEUS_RULES = Path(__file__).resolve().parents[4] / "observability" / "alerts" / "sentiment.rules.yaml"


def start_prometheus(
    state_dir: Path,
    targets: Mapping[str, str],
    port: int | None = None,
    timeout: float = 60,
) -> HttpServer:
    """A Prometheus scraping each `job -> host:port[/metrics/path]` target every 5 s, with the platform's alert rules.

    The path defaults to /metrics (Prefect's server serves /api/metrics).
    """
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    jobs = ""
    for job, target in targets.items():
        address, _, path = target.partition("/")
        jobs += (
            f"  - job_name: {job}\n    metrics_path: /{path or 'metrics'}\n"
            f"    static_configs:\n      - targets: ['{address}']\n"
        )
    config = state_dir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: 5s\n  evaluation_interval: 5s\nrule_files:\n  - {PROMETHEUS_RULES}\n"
        f"scrape_configs:\n{jobs}"
    )
    process = ManagedProcess(
        name="prometheus",
        argv=[
            executable("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        env={},
        log_path=state_dir / "prometheus.log",
    ).start()
    server = HttpServer(process, port)
    process.wait_until(lambda: http_ok(f"{server.url}/-/ready"), timeout, "ready")
    return server
