"""`make demo`: the whole lifecycle on one machine, as local processes; `make demo-down` stops it.

MLflow (SQLite + local artifacts by default; --postgres / --s3 for the real backends), a Prefect server and a
process worker, the data step, a training run triggered through Prefect (it shows in the UI), and the API.
State lives in .local/ so a second `make demo` resumes: data, runs, versions and the champion are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from sentiment_core.settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME
from sentiment_local.process import ManagedProcess, ServerError, executable, port_in_use, stop_process_group
from sentiment_local.servers import (
    MLFLOW_BUCKET,
    MLFLOW_DATABASE,
    PREFECT_DATABASE,
    HttpServer,
    prefect_env,
    run_training_deployment,
    start_inference,
    start_minio,
    start_mlflow,
    start_postgres,
    start_prefect_server,
    start_prefect_worker,
    start_prometheus,
)

REPO_ROOT = Path(__file__).resolve().parents[4]
# The independent test sample shipped beside the repo (official test split, other films; ../shared/data/imdb).
SHARED_TEST_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "imdb" / "test_sample.csv.gz"
EXAMPLE = "A beautifully shot film with a moving story and great performances."


@dataclass(frozen=True)
class DemoConfig:
    state_dir: Path
    data_path: Path
    data_source: Path | None
    sample_size: int | None
    mlflow_port: int
    prefect_port: int
    api_port: int
    prometheus_port: int
    use_postgres: bool
    use_s3: bool
    poll_interval: int


@dataclass(frozen=True)
class Backends:
    mlflow_backend: str
    mlflow_artifacts: str
    s3_env: dict[str, str]
    prefect_database: str | None


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


class Demo:
    """Starts the servers in order, records their pids, and stops them all on exit or `down`."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.run_dir = config.state_dir / "run"
        self.log_dir = config.state_dir / "logs"
        self.processes: list[ManagedProcess] = []

    # -- process bookkeeping -------------------------------------------------------------------------------------
    def track(self, process: ManagedProcess) -> None:
        self.processes.append(process)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / f"{process.name}.pid").write_text(str(process.pid))

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            say(f"stopping {process.name}")
            process.stop()
            (self.run_dir / f"{process.name}.pid").unlink(missing_ok=True)
        self.processes.clear()

    # -- the steps -----------------------------------------------------------------------------------------------
    def check_ports(self) -> None:
        wanted = {"MLflow": self.config.mlflow_port, "Prefect": self.config.prefect_port, "API": self.config.api_port}
        busy = [f"{name} port {port}" for name, port in wanted.items() if port_in_use(port)]
        if busy:
            raise ServerError(
                f"already in use: {', '.join(busy)}. Stop what holds them (`make demo-down` if it is an earlier "
                "demo) or pick others: DEMO_MLFLOW_PORT, DEMO_PREFECT_PORT, DEMO_API_PORT."
            )

    def start_backends(self) -> Backends:
        """SQLite and files by default; a local PostgreSQL and MinIO when asked."""
        state = self.config.state_dir
        (state / "mlflow").mkdir(parents=True, exist_ok=True)
        backend = f"sqlite:///{state / 'mlflow' / 'mlflow.db'}"
        artifacts = str(state / "mlflow" / "artifacts")
        s3_env: dict[str, str] = {}
        prefect_database = None
        if self.config.use_postgres:
            say("starting PostgreSQL (.local/postgres)")
            postgres = start_postgres(state / "postgres" / "data")
            self.track(postgres.process)
            postgres.create_database(MLFLOW_DATABASE)
            postgres.create_database(PREFECT_DATABASE)
            backend = postgres.url(MLFLOW_DATABASE)
            prefect_database = postgres.url(PREFECT_DATABASE, driver="postgresql+asyncpg")
        if self.config.use_s3:
            say("starting MinIO (.local/minio)")
            minio = start_minio(state / "minio" / "data")
            self.track(minio.process)
            artifacts = f"s3://{MLFLOW_BUCKET}"
            s3_env = minio.env()
        return Backends(backend, artifacts, s3_env, prefect_database)

    def start_mlflow(self, backends: Backends) -> HttpServer:
        kind = backends.mlflow_backend.split(":")[0]
        say(f"starting MLflow on :{self.config.mlflow_port} (backend {kind}, artifacts {backends.mlflow_artifacts})")
        server = start_mlflow(
            self.config.state_dir / "mlflow",
            backends.mlflow_backend,
            backends.mlflow_artifacts,
            port=self.config.mlflow_port,
            env=backends.s3_env,
            metrics_dir=self.config.state_dir / "mlflow" / "metrics",
        )
        self.track(server.process)
        return server

    def start_prefect(self, backends: Backends) -> HttpServer:
        say(f"starting the Prefect server on :{self.config.prefect_port} (≈20 s)")
        server = start_prefect_server(
            self.config.state_dir / "prefect",
            port=self.config.prefect_port,
            database_url=backends.prefect_database,
            metrics=True,
        )
        self.track(server.process)
        return server

    def prepare_data(self) -> None:
        if self.config.data_path.is_file():
            say(f"data: reusing {shown(self.config.data_path)}")
            return
        argv = [executable("sentiment-trainer"), "prepare", "--output", str(self.config.data_path)]
        if self.config.data_source:
            argv += ["--source", str(self.config.data_source)]
            say(f"data: preparing from {self.config.data_source}")
            # Offline, the official test split comes from a local file too: $DATA_TEST_SOURCE, else the shared sample.
            if not os.environ.get("DATA_TEST_SOURCE") and SHARED_TEST_SAMPLE.is_file():
                argv += ["--test-source", str(SHARED_TEST_SAMPLE)]
                say(f"data: independent test file from {SHARED_TEST_SAMPLE}")
        else:
            say("data: downloading the official IMDb archive (84 MB; offline? set DATA_SOURCE=path/to/reviews.csv.gz)")
        if self.config.sample_size is not None:
            argv += ["--sample-size", str(self.config.sample_size)]
        subprocess.run(argv, check=True, cwd=REPO_ROOT)

    def train_through_prefect(self, mlflow: HttpServer, prefect: HttpServer) -> None:
        env = {
            **prefect_env(self.config.state_dir / "prefect", f"{prefect.url}/api"),
            "MLFLOW_TRACKING_URI": mlflow.url,
            "TRAINER_DIR": str(REPO_ROOT / "services" / "trainer"),
        }
        say("registering the Prefect deployments (sentiment-training/local)")
        subprocess.run(
            [executable("sentiment-trainer"), "deploy", "--only", "local"],
            check=True,
            cwd=REPO_ROOT / "services" / "trainer",
            env={**os.environ, **env},
        )
        say("starting a Prefect process worker on pool sentiment-local")
        worker = start_prefect_worker(
            self.config.state_dir / "prefect", f"{prefect.url}/api", env=env, cwd=REPO_ROOT / "services" / "trainer"
        )
        self.track(worker)
        if champion_version(mlflow.url) is not None:
            say("a champion exists already: skipping training (retrain with the command printed below)")
            return
        say("training: a flow run of sentiment-training/local, promoting the first model to champion")
        result = run_training_deployment(
            env, {"set_champion": True, "data_path": str(self.config.data_path)}, timeout=1800, capture=False
        )
        if result.returncode != 0 or champion_version(mlflow.url) is None:
            raise ServerError(f"the training flow run did not produce a champion; worker log: {worker.log_path}")

    def start_api(self, mlflow: HttpServer) -> HttpServer:
        say(f"starting the inference API on :{self.config.api_port}")
        api = start_inference(
            self.log_dir,
            mlflow.url,
            port=self.config.api_port,
            env={"POLL_INTERVAL_SECONDS": str(self.config.poll_interval), "HOST": "127.0.0.1"},
        )
        self.track(api.process)
        api.process.wait_until(lambda: _ready(api.url), 180, "ready with the champion")
        return api

    def start_prometheus(self, api: HttpServer, mlflow: HttpServer, prefect: HttpServer) -> HttpServer | None:
        """Prometheus (DEMO_PROMETHEUS_PORT, default 9090) scraping the API, MLflow and the Prefect server (jobs
        named as in compose and the chart). Not the worker: its flow-run subprocesses would inherit its metrics port."""
        try:
            executable("prometheus")
        except ServerError:
            say("Prometheus skipped: no prometheus binary (`make tools` installs Debian's package into .tools/bin)")
            return None
        port = self.config.prometheus_port
        if port_in_use(port):
            say(f"Prometheus skipped: port {port} is in use (DEMO_PROMETHEUS_PORT picks another)")
            return None
        say(f"starting Prometheus on :{port} (scrapes the API, MLflow, Prefect; alert rules from observability/alerts)")
        targets = {
            "sentiment-inference": f"127.0.0.1:{api.port}",
            "sentiment-mlflow": f"127.0.0.1:{mlflow.port}",
            "sentiment-prefect-server": f"127.0.0.1:{prefect.port}/api/metrics",
        }
        server = start_prometheus(self.config.state_dir / "prometheus", targets, port=port)
        self.track(server.process)
        return server

    def up(self, detach: bool) -> int:
        self.check_ports()
        backends = self.start_backends()
        mlflow = self.start_mlflow(backends)
        prefect = self.start_prefect(backends)
        self.prepare_data()
        self.train_through_prefect(mlflow, prefect)
        api = self.start_api(mlflow)
        response = httpx.post(f"{api.url}/predict", json={"text": EXAMPLE}, timeout=10).json()
        say(f'example prediction: "{EXAMPLE}" -> {json.dumps(response)}')
        prometheus = self.start_prometheus(api, mlflow, prefect)
        print_next_steps(mlflow.url, prefect.url, api.url, prometheus.url if prometheus else None)
        if detach:
            return 0
        say("running; Ctrl-C (or `make demo-down`) stops everything")
        while all(process.running() for process in self.processes):
            time.sleep(1)
        stopped = [process for process in self.processes if not process.running()]
        for process in stopped:
            say(f"{process.name} stopped; log: {process.log_path}")
        return 0


def _ready(url: str) -> bool:
    """A champion is loaded (readiness alone is also true while the registry has no champion at all)."""
    try:
        response = httpx.get(f"{url}/health/ready", timeout=2)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and bool(response.json().get("model_version"))


def shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it (shorter to read), else as given."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def champion_version(tracking_uri: str) -> str | None:
    try:
        response = httpx.get(
            f"{tracking_uri}/api/2.0/mlflow/registered-models/alias",
            params={"name": DEFAULT_MODEL_NAME, "alias": CHAMPION_ALIAS},
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    return str(response.json()["model_version"]["version"])


def print_next_steps(mlflow_url: str, prefect_url: str, api_url: str, prometheus_url: str | None = None) -> None:
    trainer = f"MLFLOW_TRACKING_URI={mlflow_url} .venv/bin/sentiment-trainer"
    prometheus_line = f"\n  Prometheus   {prometheus_url}" if prometheus_url else ""
    print(
        f"""
  API docs     {api_url}/docs
  MLflow UI    {mlflow_url}
  Prefect UI   {prefect_url}{prometheus_line}

  Next:
    retrain through Prefect   PREFECT_API_URL={prefect_url}/api .venv/bin/prefect deployment run \\
                                  sentiment-training/local --param 'overrides={{"C": 16}}'
    retrain directly          {trainer} train --champion --param C=16
    watch the swap            watch -n1 curl -s {api_url}/model-info
    roll back                 {trainer} rollback
    stop                      make demo-down   (state stays in .local/; `rm -rf .local` forgets it)
""",
        flush=True,
    )


def down(state_dir: Path) -> int:
    """Stop every process an earlier `up` recorded, newest first."""
    run_dir = state_dir / "run"
    pid_files = sorted(run_dir.glob("*.pid"), key=lambda path: path.stat().st_mtime, reverse=True)
    if not pid_files:
        say("nothing is running")
        return 0
    for pid_file in pid_files:
        with contextlib.suppress(ValueError):
            say(f"stopping {pid_file.stem}")
            stop_process_group(int(pid_file.read_text().strip()))
        pid_file.unlink(missing_ok=True)
    return 0


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT both raise KeyboardInterrupt, so either stops every server.

    SIGINT explicitly too: a process started in the background by a non-interactive shell inherits SIGINT ignored,
    and Python then installs no KeyboardInterrupt handler, so Ctrl-C (or a test's SIGINT) would leave it running.
    """

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sentiment-demo", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start everything, train a champion, serve it")
    up_parser.add_argument("--postgres", action="store_true", help="use a local PostgreSQL instead of SQLite")
    up_parser.add_argument("--s3", action="store_true", help="store artifacts in a local MinIO instead of files")
    up_parser.add_argument("--detach", action="store_true", help="leave the servers running and return")
    up_parser.add_argument(
        "--source", type=Path, default=os.environ.get("DATA_SOURCE") or None, help="local dataset (env DATA_SOURCE)"
    )
    up_parser.add_argument("--sample-size", type=int, default=None, help="rows to keep when preparing the data")
    commands.add_parser("down", help="stop what `up` started")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    state_dir = Path(os.environ.get("DEMO_STATE_DIR", REPO_ROOT / ".local")).resolve()
    if args.command == "down":
        return down(state_dir)
    config = DemoConfig(
        state_dir=state_dir,
        data_path=Path(os.environ.get("DEMO_DATA_PATH", REPO_ROOT / "data" / "reviews.csv.gz")).resolve(),
        data_source=Path(args.source).resolve() if args.source else None,
        sample_size=args.sample_size,
        mlflow_port=int(os.environ.get("DEMO_MLFLOW_PORT", "5001")),
        prefect_port=int(os.environ.get("DEMO_PREFECT_PORT", "4200")),
        api_port=int(os.environ.get("DEMO_API_PORT", "8000")),
        prometheus_port=int(os.environ.get("DEMO_PROMETHEUS_PORT", "9090")),
        use_postgres=args.postgres,
        use_s3=args.s3,
        poll_interval=int(os.environ.get("POLL_INTERVAL_SECONDS", "5")),
    )
    demo = Demo(config)
    try:
        with sigterm_as_interrupt():
            code = demo.up(detach=args.detach)
            if not args.detach:
                demo.stop_all()
            return code
    except KeyboardInterrupt:
        say("interrupted")
        demo.stop_all()
        return 130
    except (ServerError, subprocess.CalledProcessError) as error:
        say(f"failed: {error}")
        demo.stop_all()
        return 1


if __name__ == "__main__":
    sys.exit(main())
