"""The laptop lifecycle for real, as the README tells a user, on the harness's own Docker engine.

`cp .env.example .env` + `make compose-up` in a fresh checkout -> every service healthy, the dataset prepared by
the one-shot `prepare` service -> a training run through the Prefect deployment `sentiment-training/local` on the
trainer's worker -> the inference API serves the champion -> a better run is promoted while a client keeps
calling /predict (no failed request) -> `make compose-down` + `make compose-up`: same champion, runs and data ->
`down -v` wipes them. Bad input first: each gets one line, and nothing starts.

The tests run in file order and share one stack (module fixture); a failure stops the ones after it.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.compose_e2e.stack import (
    LONG_RUNNING,
    ONE_SHOT,
    PORTS,
    SHARED_DATA_DIR,
    Stack,
    champion_version,
    git_commit,
    prefect_trigger,
    prefect_wait,
    run_ids,
    serving_version,
    url,
    wait_until,
)

# The first run is deliberately weak (few hashed features, strong regularisation), the second uses params.yaml:
# the second must win on the same held-out split and take the champion alias.
WEAK = {"model.n_features": 1024, "model.C": 0.05}
COLD_UP_TIMEOUT = 2400  # a cold `make compose-up` builds three images from scratch on 2 cores
WARM_UP_TIMEOUT = 600
TRAIN_TIMEOUT = 900


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    source = SHARED_DATA_DIR / "reviews.csv.gz"
    if not source.is_file():
        pytest.fail(f"the test dataset {source} is missing (the e2e reads ../shared, never the network)")
    stack = Stack.create(
        tmp_path_factory.mktemp("checkout"),
        {
            # The offline data source (shell variables win over .env, which stays exactly .env.example).
            "DATA_SOURCE_DIR": str(SHARED_DATA_DIR),
            "DATA_SOURCE": "/source/reviews.csv.gz",
            "GIT_COMMIT": git_commit(),
        },
    )
    stack.compose("down", "--volumes", "--remove-orphans", check=False, timeout=300)
    yield stack
    stack.compose("down", "--volumes", "--remove-orphans", check=False, timeout=300)


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def error_lines(result: object) -> list[str]:
    """stderr without make's own `make: *** [...] Error 1` trailer."""
    stderr: str = result.stderr  # type: ignore[attr-defined]
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("make")]


def assert_nothing_started(stack: Stack) -> None:
    assert stack.project_objects("container") == []
    assert stack.project_objects("volume") == []


# ---- bad input: one line each, before anything starts ----------------------------------------------------------


def test_missing_env_file_is_one_line_and_starts_nothing(stack: Stack) -> None:
    result = stack.make("compose-up", check=False)
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: no .env here: run 'cp .env.example .env', change its two passwords, then 'make compose-up' again"
    ]
    assert_nothing_started(stack)


def test_empty_password_is_one_line_and_starts_nothing(stack: Stack) -> None:
    env = stack.directory / ".env"
    text = (stack.directory / ".env.example").read_text()
    env.write_text(text.replace("POSTGRES_PASSWORD=change-me-postgres", "POSTGRES_PASSWORD="))
    try:
        result = stack.make("compose-up", check=False)
    finally:
        env.unlink()
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert "POSTGRES_PASSWORD is empty" in lines[0]
    assert_nothing_started(stack)


def test_port_taken_is_one_line_and_starts_nothing(stack: Stack) -> None:
    shutil.copy(stack.directory / ".env.example", stack.directory / ".env")
    with socket.socket() as squatter:
        # SO_REUSEADDR: connections of an earlier stack may linger in TIME_WAIT on the port.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", PORTS["inference"]))
        squatter.listen()
        try:
            result = stack.make("compose-up", check=False)
        finally:
            (stack.directory / ".env").unlink()
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert f"port 127.0.0.1:{PORTS['inference']}" in lines[0]
    assert "in use" in lines[0]
    assert_nothing_started(stack)


def test_engine_not_running_is_one_line(stack: Stack, tmp_path: Path) -> None:
    shutil.copy(stack.directory / ".env.example", stack.directory / ".env")
    try:
        result = stack.make("compose-up", check=False, env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    finally:
        (stack.directory / ".env").unlink()
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1, lines
    assert "no Docker engine answers" in lines[0]
    assert_nothing_started(stack)


# ---- the user path ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(COLD_UP_TIMEOUT + 120)
def test_compose_up_brings_every_service_up_healthy(stack: Stack) -> None:
    shutil.copy(stack.directory / ".env.example", stack.directory / ".env")  # README: cp .env.example .env
    started = time.monotonic()
    stack.make("compose-up", timeout=COLD_UP_TIMEOUT)
    print(f"make compose-up: {time.monotonic() - started:.0f}s")
    state = stack.state()
    for name in LONG_RUNNING:
        assert (state[name]["State"], state[name]["Health"]) == ("running", "healthy"), (name, state[name])
    for name in ONE_SHOT:
        assert (state[name]["State"], state[name]["ExitCode"]) == ("exited", 0), (name, state[name])


def test_the_dataset_comes_from_the_one_shot_prepare_service(stack: Stack) -> None:
    logs = stack.compose("logs", "--no-color", "prepare").stdout
    assert "dataset written to /data/reviews.csv.gz" in logs
    assert "/source/reviews.csv.gz" in logs
    listing = stack.compose("exec", "-T", "trainer", "ls", "-l", "/data/reviews.csv.gz").stdout
    assert "reviews.csv.gz" in listing


def test_params_yaml_saved_by_rename_is_what_the_trainer_reads(stack: Stack) -> None:
    """Editors save by writing a new file and renaming it over the old one: a single-file bind mount would keep
    showing the old inode; the directory mount shows the new file."""
    params = stack.directory / "params.yaml"
    original = params.read_text()
    marker = "# saved by rename in the e2e"

    def save_by_rename(text: str) -> None:
        temp = params.with_name(".params.yaml.swp")
        temp.write_text(text)
        temp.chmod(0o644)
        temp.replace(params)

    save_by_rename(original + marker + "\n")
    try:
        seen = stack.compose("exec", "-T", "trainer", "cat", "/workspace/params.yaml").stdout
        assert marker in seen
    finally:
        save_by_rename(original)
    assert marker not in stack.compose("exec", "-T", "trainer", "cat", "/workspace/params.yaml").stdout


def test_the_uis_answer_on_their_published_ports(client: httpx.Client) -> None:
    for service, marker in (("mlflow", "<html"), ("prefect", "<html"), ("minio-console", "<html")):
        response = client.get(url(service, "/"), follow_redirects=True)
        assert response.status_code == 200, (service, response.status_code)
        assert marker in response.text.lower(), service
    assert client.get(url("prefect", "/api/health")).json() is True
    assert client.get(url("minio-s3", "/minio/health/live")).status_code == 200


def test_only_the_local_deployment_and_pool_are_registered(client: httpx.Client) -> None:
    pools = {pool["name"] for pool in client.post(url("prefect", "/api/work_pools/filter"), json={}).json()}
    deployments = {d["name"] for d in client.post(url("prefect", "/api/deployments/filter"), json={}).json()}
    assert pools == {"sentiment-local"}
    assert deployments == {"local"}


def test_no_password_on_any_command_line(stack: Stack) -> None:
    env = dict(line.split("=", 1) for line in (stack.directory / ".env").read_text().splitlines() if "=" in line[:40])
    top = stack.compose("top").stdout
    for name in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        assert env[name] not in top, f"{name} is visible in `docker compose top`"


def test_images_run_as_uid_10001_and_carry_the_commit(stack: Stack) -> None:
    for service in ("trainer", "prefect-server", "mlflow", "inference"):
        assert stack.compose("exec", "-T", service, "id", "-u").stdout.strip() == "10001", service
    commit = git_commit()
    for image in ("sentiment-trainer", "sentiment-mlflow", "sentiment-inference"):
        env = stack.run(["docker", "image", "inspect", "--format", "{{json .Config.Env}}", f"{image}:dev"], check=True)
        assert f'"GIT_COMMIT={commit}"' in env.stdout, image


@pytest.mark.timeout(TRAIN_TIMEOUT + 300)
def test_a_run_through_the_prefect_deployment_becomes_the_served_champion(client: httpx.Client) -> None:
    assert champion_version(client) is None
    run = prefect_wait(client, prefect_trigger(client, {"set_champion": True, "overrides": WEAK}), TRAIN_TIMEOUT)
    assert run["deployment_id"]
    assert champion_version(client) == "1"
    # The API polls the alias every POLL_INTERVAL_SECONDS (10 s in .env.example).
    wait_until("the API to serve v1", lambda: serving_version(client) == "1", timeout=120)


def test_prometheus_scrapes_every_compose_target_and_sees_the_champion(client: httpx.Client) -> None:
    """The compose prometheus service (compose/prometheus.yml): every job up, the rules loaded, v1 served."""

    def targets_up() -> dict[str, str] | None:
        active = client.get(url("prometheus", "/api/v1/targets")).json()["data"]["activeTargets"]
        health = {target["labels"]["job"]: target["health"] for target in active}
        return health if health and set(health.values()) == {"up"} else None

    health = wait_until("every Prometheus target up", targets_up, timeout=90)
    assert set(health) == {"sentiment-inference", "sentiment-mlflow", "sentiment-prefect-server"}
    groups = client.get(url("prometheus", "/api/v1/rules")).json()["data"]["groups"]
    assert {group["name"] for group in groups} == {"sentiment-inference", "sentiment-training"}

    def served() -> list[dict[str, object]] | None:
        query = {"query": "sentiment_model_version_info"}
        return client.get(url("prometheus", "/api/v1/query"), params=query).json()["data"]["result"] or None

    assert {row["metric"]["version"] for row in wait_until("v1 in Prometheus", served, timeout=60)} == {"1"}  # type: ignore[index]


@pytest.mark.timeout(TRAIN_TIMEOUT + 300)
def test_a_better_run_is_promoted_while_clients_keep_calling(client: httpx.Client) -> None:
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def keep_calling() -> None:
        with httpx.Client(timeout=10) as load:
            while not stop.is_set():
                try:
                    response = load.post(url("inference", "/predict"), json={"text": "Dull, slow and far too long."})
                    if response.status_code == 200:
                        outcomes[response.json()["model_version"]] += 1
                    else:
                        failures.append(f"HTTP {response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as error:
                    failures.append(f"{type(error).__name__}: {error}")
                time.sleep(0.05)

    caller = threading.Thread(target=keep_calling, daemon=True)
    caller.start()
    try:
        prefect_wait(client, prefect_trigger(client, {"set_champion": True}), TRAIN_TIMEOUT)
        assert champion_version(client) == "2", "the better run must take the champion alias"
        wait_until("the API to serve v2", lambda: outcomes["2"] >= 20, timeout=120)
    finally:
        stop.set()
        caller.join(timeout=30)
    assert failures == [], failures[:5]
    assert set(outcomes) == {"1", "2"}, outcomes
    print(f"/predict during the promotion: {dict(outcomes)}")


def test_down_and_up_keep_champion_runs_and_data(stack: Stack, client: httpx.Client) -> None:
    runs = run_ids(client)
    dataset = stack.compose("exec", "-T", "trainer", "sha256sum", "/data/reviews.csv.gz").stdout.split()[0]
    assert len(runs) == 2
    stack.make("compose-down", timeout=300)
    assert stack.project_objects("container") == []
    started = time.monotonic()
    stack.make("compose-up", timeout=WARM_UP_TIMEOUT)
    print(f"warm make compose-up: {time.monotonic() - started:.0f}s")
    assert champion_version(client) == "2"
    assert run_ids(client) == runs
    assert stack.compose("exec", "-T", "trainer", "sha256sum", "/data/reviews.csv.gz").stdout.split()[0] == dataset
    wait_until("the API to serve v2 after the restart", lambda: serving_version(client) == "2", timeout=180)


def test_down_v_wipes_the_volumes(stack: Stack) -> None:
    assert stack.project_objects("volume"), "the stack has volumes before down -v"
    stack.make("compose-down", "COMPOSE_DOWN_ARGS=-v", timeout=300)
    assert stack.project_objects("container") == []
    assert stack.project_objects("volume") == []
