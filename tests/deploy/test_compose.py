"""docker-compose.yml: valid for the real compose CLI, wired as docs/architecture.md says, secrets required."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tests.deploy.conftest import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    REPO_ROOT,
    clean_env,
    compose_cmd,
    compose_config,
    run,
)

# Services that stay up (everything but the one-shot bucket-init) and their contract ports: host -> container.
LONG_RUNNING = {"postgres", "minio", "mlflow", "prefect-server", "trainer", "inference", "prometheus"}
PUBLISHED = {
    "prometheus": {(9090, 9090)},
    "mlflow": {(5001, 5000)},
    "prefect-server": {(4200, 4200)},
    "minio": {(9000, 9000), (9001, 9001)},
    "inference": {(8000, 8000)},
}
SERVICE_IMAGE = {
    "trainer": "sentiment-trainer",
    "prefect-server": "sentiment-trainer",
    "prepare": "sentiment-trainer",
    "mlflow": "sentiment-mlflow",
    "bucket-init": "sentiment-mlflow",
    "inference": "sentiment-inference",
}
# The one service that builds each image; the others only name it (two builders of one image race in
# Compose's parallel build: "image ... already exists").
BUILDER = {"sentiment-trainer": "trainer", "sentiment-mlflow": "mlflow", "sentiment-inference": "inference"}
ONE_SHOT = {"bucket-init", "prepare"}
MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
# Secrets must come from .env: no default may hide a missing one. ADMIN_TOKEN is the exception on purpose:
# empty means "/admin/reload disabled" (docs/architecture.md).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$|TOKEN")
OPTIONAL_SECRETS = {"ADMIN_TOKEN"}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")


def compose_script(command: list[str]) -> Path:
    """The compose/ script a `sh /compose/x.sh` command runs (./compose is mounted at /compose)."""
    assert command[0] == "sh", command
    assert command[1].startswith("/compose/"), command
    return REPO_ROOT / "compose" / command[1].removeprefix("/compose/")


def interpolations() -> Iterator[re.Match[str]]:
    yield from INTERPOLATION.finditer(COMPOSE_FILE.read_text())


def env_example_keys() -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example line without '=': {line!r}"
            pairs[key.strip()] = value
    return pairs


def test_compose_config_is_valid_with_env_example() -> None:
    result = run([*compose_cmd(), "--env-file", str(ENV_EXAMPLE), "config", "-q"], env=clean_env())
    assert result.returncode == 0, result.stderr


def test_missing_secrets_stop_compose_with_a_message() -> None:
    result = run([*compose_cmd(), "--env-file", "/dev/null", "config", "-q"], env=clean_env())
    assert result.returncode != 0
    assert re.search(r"(POSTGRES_PASSWORD|MINIO_ROOT_USER|MINIO_ROOT_PASSWORD)", result.stderr), result.stderr
    assert ".env" in result.stderr, "the error should tell the user to create .env"


def test_secrets_have_no_defaults() -> None:
    secret_uses = [m for m in interpolations() if SECRET_NAME.search(m["name"]) and m["name"] not in OPTIONAL_SECRETS]
    assert {m["name"] for m in secret_uses} >= {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"}
    for match in secret_uses:
        assert match["op"] == ":?", f"{match.group(0)} must be required (${{VAR:?message}}), not defaulted"


def test_env_example_covers_every_variable_and_nothing_else() -> None:
    used = {m["name"] for m in interpolations()}
    keys = set(env_example_keys())
    assert used - keys == set(), f"variables compose reads but .env.example does not document: {used - keys}"
    assert keys - used == set(), f".env.example keys compose never reads: {keys - used}"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    assert set(services) == LONG_RUNNING | ONE_SHOT
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check.get("test"), f"{name} has an empty healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOT:
        assert "healthcheck" not in services[name]
        assert services[name].get("restart", "no") == "no"


def test_dependencies_wait_for_health_or_completion(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert spec["condition"] == expected, f"{name} -> {dependency}: {spec['condition']}"
    assert set(services["mlflow"]["depends_on"]) == {"postgres", "bucket-init"}
    assert set(services["prefect-server"]["depends_on"]) == {"postgres"}
    assert set(services["trainer"]["depends_on"]) == {"prepare", "prefect-server", "mlflow"}
    assert set(services["inference"]["depends_on"]) == {"mlflow"}
    assert set(services["bucket-init"]["depends_on"]) == {"minio"}


def test_published_ports_follow_the_contract(services: dict[str, Any]) -> None:
    for name, service in services.items():
        ports = {(int(p["published"]), int(p["target"])) for p in service.get("ports", [])}
        assert ports == PUBLISHED.get(name, set()), f"{name} publishes {ports}"
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} must bind to BIND_ADDRESS (default 127.0.0.1)"


def test_images_are_built_from_the_dockerfiles_with_default_tag(services: dict[str, Any]) -> None:
    for name, image in SERVICE_IMAGE.items():
        service = services[name]
        assert service["image"] == f"{image}:dev"
        if BUILDER[image] != name:
            assert "build" not in service, f"{name} must not build {image} too (only {BUILDER[image]} does)"
            assert service.get("pull_policy") == "never", f"{name}: {image} comes from {BUILDER[image]}'s build"
            continue
        build = service["build"]
        assert Path(build["context"]) == REPO_ROOT, "the build context is the workspace root"
        dockerfile = REPO_ROOT / build["dockerfile"]
        assert dockerfile.is_file(), dockerfile
        assert dockerfile.parent.name == image.removeprefix("sentiment-"), f"{name} builds {dockerfile}"
        assert build["args"]["GIT_COMMIT"] == "unknown", "images record their commit (GIT_COMMIT, default unknown)"
    assert services["minio"]["image"] == MINIO_IMAGE


def test_each_image_has_exactly_one_builder(services: dict[str, Any]) -> None:
    builders: dict[str, list[str]] = {}
    for name, service in services.items():
        if "build" in service:
            builders.setdefault(service["image"], []).append(name)
    assert builders == {f"{image}:dev": [name] for image, name in BUILDER.items()}


def test_git_commit_reaches_the_build_args() -> None:
    model = compose_config(GIT_COMMIT="0123abcd")
    for name in BUILDER.values():
        assert model["services"][name]["build"]["args"]["GIT_COMMIT"] == "0123abcd", name
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "export GIT_COMMIT ?= $(shell git rev-parse HEAD" in makefile, "make compose-up passes the commit"


def test_registry_and_tag_are_overridable() -> None:
    model = compose_config(IMAGE_REGISTRY="ghcr.io/acme/", IMAGE_TAG="1.2.3")
    for name, image in SERVICE_IMAGE.items():
        assert model["services"][name]["image"] == f"ghcr.io/acme/{image}:1.2.3"


def test_named_volumes_hold_the_state(compose_model: dict[str, Any], services: dict[str, Any]) -> None:
    assert set(compose_model["volumes"]) >= {"postgres-data", "minio-data", "dataset"}
    mounts = {
        (name, v["target"]): v for name, s in services.items() for v in s.get("volumes", []) if v["type"] == "volume"
    }
    # postgres:18+ refuses a volume at /var/lib/postgresql/data: the volume is its parent, the cluster PGDATA.
    assert mounts[("postgres", "/var/lib/postgresql")]["source"] == "postgres-data"
    pgdata = PurePosixPath(services["postgres"]["environment"]["PGDATA"])
    assert pgdata.parent == PurePosixPath("/var/lib/postgresql"), "PGDATA inside the volume, explicit"
    assert mounts[("minio", "/data")]["source"] == "minio-data"
    assert mounts[("prepare", "/data")]["source"] == "dataset"
    assert mounts[("trainer", "/data")]["source"] == "dataset"


def test_postgres_init_creates_both_databases(services: dict[str, Any]) -> None:
    binds = {v["target"]: Path(v["source"]) for v in services["postgres"]["volumes"] if v["type"] == "bind"}
    init_dir = binds["/docker-entrypoint-initdb.d"]
    sql = " ".join(p.read_text() for p in sorted(init_dir.glob("*.sql")))
    assert re.search(r"CREATE DATABASE\s+\"?mlflow\"?\s*;", sql, re.IGNORECASE)
    assert re.search(r"CREATE DATABASE\s+\"?prefect\"?\s*;", sql, re.IGNORECASE)
    assert services["postgres"]["environment"]["POSTGRES_DB"] not in {"mlflow", "prefect"}


def test_mlflow_upgrades_the_schema_then_serves_proxied_artifacts(services: dict[str, Any]) -> None:
    service = services["mlflow"]
    env = service["environment"]
    assert re.fullmatch(r"postgresql\+psycopg2://[^:]+:[^@]+@postgres:5432/mlflow", env["MLFLOW_BACKEND_STORE_URI"])
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://mlflow"
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
    allowed = set(env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(","))
    assert allowed >= {"mlflow", "mlflow:*", "localhost", "localhost:*", "127.0.0.1:*"}
    script = compose_script(service["command"]).read_text()
    # The URI carries the password: it stays in the environment, never on a command line (`ps`, `docker top`).
    upgrade = script.index("python -m sentiment_mlflow_server.db_upgrade")
    serve = script.index("exec mlflow server")
    assert upgrade < serve
    assert 'MLFLOW_BACKEND_STORE_URI"' not in script.replace(":?MLFLOW_BACKEND_STORE_URI", ""), "URI in argv"
    assert "--backend-store-uri" not in script, "mlflow server reads MLFLOW_BACKEND_STORE_URI itself"
    for flag in ("--host 0.0.0.0", "--port 5000", "--serve-artifacts", "--artifacts-destination", "--allowed-hosts"):
        assert flag in script[serve:], flag
    assert "-w " in script[serve:], "one worker: the default four cost ~1 GB"


def test_prefect_server_uses_postgres_via_asyncpg(services: dict[str, Any]) -> None:
    service = services["prefect-server"]
    all_interfaces = "0.0.0.0"  # noqa: S104 - the server listens inside its container
    assert service["command"] == ["prefect", "server", "start", "--host", all_interfaces, "--port", "4200"]
    url = service["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert re.fullmatch(r"postgresql\+asyncpg://[^:]+:[^@]+@postgres:5432/prefect", url)
    assert service["environment"]["PREFECT_UI_API_URL"] == "http://localhost:4200/api"


def test_trainer_registers_deployments_then_runs_the_local_worker(services: dict[str, Any]) -> None:
    service = services["trainer"]
    env = service["environment"]
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert env["PREFECT_WORK_POOL"] == "sentiment-local"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    script = compose_script(service["command"]).read_text()
    # Only the local deployment: a `k8s` one would stay Scheduled forever without a Kubernetes worker.
    deploy = script.index("sentiment-trainer deploy --only local")
    worker = script.index('exec prefect worker start --pool "$pool"')
    assert deploy < worker
    assert 'pool="${PREFECT_WORK_POOL:-sentiment-local}"' in script
    assert "--with-healthcheck" in script[worker:]
    assert env["PREFECT_WORKER_WEBSERVER_PORT"] in " ".join(service["healthcheck"]["test"])


def test_trainer_reads_the_repository_params_and_the_prepared_data(services: dict[str, Any]) -> None:
    for name in ("trainer", "prepare"):
        service = services[name]
        binds = {v["target"]: v for v in service["volumes"] if v["type"] == "bind"}
        # A directory mount: an editor that saves params.yaml by rename stays visible (a file mount would not).
        workspace = binds["/workspace"]
        assert Path(workspace["source"]) == REPO_ROOT
        assert workspace.get("read_only") is True
        assert service["environment"]["PARAMS_FILE"] == "/workspace/params.yaml"
        assert service["environment"]["DATA_PATH"] == "/data/reviews.csv.gz"
    volumes = {v["target"]: v for v in services["trainer"]["volumes"] if v["type"] == "volume"}
    assert volumes["/data"].get("read_only") is True, "the trainer reads what prepare wrote"


def test_prepare_reads_data_source_from_a_read_only_folder(services: dict[str, Any]) -> None:
    service = services["prepare"]
    assert service["command"] == ["sentiment-trainer", "prepare"]
    assert service["environment"]["DATA_SOURCE"] == "", "empty = download the official archive"
    binds = {v["target"]: v for v in service["volumes"] if v["type"] == "bind"}
    assert binds["/source"].get("read_only") is True
    model = compose_config(DATA_SOURCE="/source/reviews.csv.gz", DATA_SOURCE_DIR="/srv/datasets")
    prepare = model["services"]["prepare"]
    assert prepare["environment"]["DATA_SOURCE"] == "/source/reviews.csv.gz"
    assert {v["target"]: v["source"] for v in prepare["volumes"]}["/source"] == "/srv/datasets"


def test_compose_scripts_are_mounted_where_commands_expect_them(services: dict[str, Any]) -> None:
    for name, service in services.items():
        command = service.get("command") or []
        paths = [arg for arg in command if arg.startswith("/compose/")]
        if not paths:
            continue
        binds = {v["target"]: Path(v["source"]) for v in service.get("volumes", []) if v["type"] == "bind"}
        assert binds.get("/compose") == REPO_ROOT / "compose", f"{name} runs {paths} without ./compose mounted"
        for path in paths:
            assert (REPO_ROOT / "compose" / path.removeprefix("/compose/")).is_file(), path


def test_inference_follows_the_champion_of_the_registry(services: dict[str, Any]) -> None:
    env = services["inference"]["environment"]
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["MODEL_NAME"] == "sentiment-classifier"
    assert env["MODEL_ALIAS"] == "champion"
    assert int(env["POLL_INTERVAL_SECONDS"]) > 0
    assert "/health/live" in " ".join(services["inference"]["healthcheck"]["test"])


def test_bucket_init_creates_both_buckets(services: dict[str, Any]) -> None:
    service = services["bucket-init"]
    assert service["command"][:2] == ["python", "/scripts/create_buckets.py"]
    # The chart's hook Job runs the same script (tested against a real MinIO in tests/charts).
    mounts = {(v["source"], v["target"]) for v in service["volumes"]}
    assert (str(REPO_ROOT / "charts" / "sentiment-platform" / "files"), "/scripts") in mounts
    assert set(service["command"][2:]) == {"mlflow", "dvc"}
    assert service["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"


@pytest.mark.parametrize("target", ["compose-up", "compose-down", "compose-train", "compose-check"])
def test_makefile_laptop_targets_exist_and_are_documented(target: str) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    block = makefile[makefile.index("##@ Laptop (docker compose)") :]
    assert re.search(rf"^{target}:.*## \S", block, re.MULTILINE), f"{target} missing or without ## help"
    dry = run(["make", "-n", target], env=clean_env())
    assert dry.returncode == 0, dry.stderr


def test_make_compose_check_passes() -> None:
    result = run(["make", "--no-print-directory", "compose-check"], env=clean_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_prerequisites_say_buildkit() -> None:
    """The Dockerfiles use RUN --mount: the compose guide and the root README name the engine they need."""
    guide = (REPO_ROOT / "compose" / "README.md").read_text()
    assert "BuildKit" in guide
    assert "Engine 23" in guide
    assert "BuildKit" in (REPO_ROOT / "README.md").read_text()
