"""docker-compose.yml and the Helm chart run the same images the same way.

Both are written from docs/architecture.md; this test reads the interpolated compose model and the
rendered chart (`helm template ... --kube-version 1.34.0`) and checks that each component uses the same
image, container port, contract environment variables (names, and values where they must be equal),
probe paths and third-party images.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.conftest import KUBE_VERSION, REPO_ROOT, find_tool, run

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
PORTS = {"inference": 8000, "mlflow": 5000, "prefect-server": 4200}
IMAGE_OF_ROLE = {
    "inference": "sentiment-inference",
    "mlflow": "sentiment-mlflow",
    "bucket-init": "sentiment-mlflow",
    "prefect-server": "sentiment-trainer",
    "trainer": "sentiment-trainer",
}
# Variables each component must get on both sides (docs/architecture.md).
REQUIRED_ENV = {
    "inference": {
        "MLFLOW_TRACKING_URI",
        "MODEL_NAME",
        "MODEL_ALIAS",
        "POLL_INTERVAL_SECONDS",
        "ADMIN_TOKEN",
        "LOG_LEVEL",
        "LOG_FORMAT",
    },
    "mlflow": {"MLFLOW_BACKEND_STORE_URI", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "prefect-server": {"PREFECT_API_DATABASE_CONNECTION_URL", "PREFECT_UI_API_URL"},
    "trainer": {"PREFECT_API_URL"},
    "bucket-init": {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
}
# Values both sides must set identically.
SAME_VALUE = {"inference": {"MODEL_NAME", "MODEL_ALIAS"}}
# Settings the services parse as int (Helm prints big numbers as 1.048576e+06 unless told otherwise).
INTEGER_ENV = {"MAX_TEXT_CHARS", "MAX_BATCH_SIZE", "MAX_BODY_BYTES", "PORT", "WORKERS"}


@dataclass
class Container:
    workload: str
    name: str
    image: str
    argv: list[str]
    ports: dict[str, int]
    env: dict[str, str | None] = field(default_factory=dict)  # None: from a Secret or a field ref
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def image_name(self) -> str:
        return image_name(self.image)

    @property
    def command_line(self) -> str:
        return " ".join(self.argv)


def image_name(reference: str) -> str:
    """`ghcr.io/x/sentiment-trainer:1.0` -> `sentiment-trainer`."""
    last = reference.rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


def normalise_image(reference: str) -> str:
    """Docker Hub short names and their long form compare equal."""
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if reference.startswith(prefix):
            return reference.removeprefix(prefix)
    return reference


def contract_env_names() -> set[str]:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("| environment variable |") :]
    section = section[: section.index("\n\n")]
    return {
        name for line in section.splitlines()[2:] for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    }


def render_charts() -> list[dict[str, Any]]:
    charts = sorted(REPO_ROOT.glob("charts/*/Chart.yaml"))
    if not charts:
        pytest.fail("no Helm chart under charts/: the compose/chart agreement cannot be checked")
    documents: list[dict[str, Any]] = []
    for chart_yaml in charts:
        result = run(
            [
                find_tool("helm"),
                "template",
                "sentiment",
                str(chart_yaml.parent),
                "--namespace",
                "mlops",
                "--kube-version",
                KUBE_VERSION,
            ]
        )
        assert result.returncode == 0, f"helm template {chart_yaml.parent.name} failed:\n{result.stderr}"
        documents += [d for d in yaml.safe_load_all(result.stdout) if d]
    return documents


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    kind = document["kind"]
    if kind == "Pod":
        return document["spec"]
    if kind == "CronJob":
        return document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return document["spec"]["template"]["spec"]


def chart_containers(documents: list[dict[str, Any]]) -> list[Container]:
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in documents if d["kind"] == "ConfigMap"}
    secrets = {
        d["metadata"]["name"]: {**(d.get("data") or {}), **(d.get("stringData") or {})}
        for d in documents
        if d["kind"] == "Secret"
    }
    containers: list[Container] = []
    for document in documents:
        if document["kind"] not in WORKLOAD_KINDS:
            continue
        spec = pod_spec(document)
        for raw in spec.get("initContainers", []) + spec.get("containers", []):
            env: dict[str, str | None] = {}
            for source in raw.get("envFrom", []):
                prefix = source.get("prefix", "")
                if "configMapRef" in source:
                    data = config_maps.get(source["configMapRef"]["name"], {})
                    env.update({prefix + k: str(v) for k, v in data.items()})
                if "secretRef" in source:
                    env.update(dict.fromkeys((prefix + k for k in secrets.get(source["secretRef"]["name"], {})), None))
            for variable in raw.get("env", []):
                if "value" in variable:
                    env[variable["name"]] = str(variable["value"])
                elif "configMapKeyRef" in variable.get("valueFrom", {}):
                    ref = variable["valueFrom"]["configMapKeyRef"]
                    env[variable["name"]] = config_maps.get(ref["name"], {}).get(ref["key"])
                else:
                    env[variable["name"]] = None
            containers.append(
                Container(
                    workload=f"{document['kind']}/{document['metadata']['name']}",
                    name=raw["name"],
                    image=raw["image"],
                    argv=[str(a) for a in raw.get("command", []) + raw.get("args", [])],
                    ports={
                        p.get("name", str(p["containerPort"])): int(p["containerPort"]) for p in raw.get("ports", [])
                    },
                    env=env,
                    raw=raw,
                )
            )
    return containers


def chart_role(container: Container) -> str | None:
    """Which compose service a chart container plays, from its image and command."""
    line = container.command_line
    if container.image_name == "sentiment-inference" and (not line or "sentiment-inference" in line):
        return "inference"
    if container.image_name == "sentiment-mlflow":
        if "mlflow server" in line or not line:
            return "mlflow"
        if "create_buckets" in line:
            return "bucket-init"
    if container.image_name == "sentiment-trainer":
        if "prefect server start" in line:
            return "prefect-server"
        if "prefect worker start" in line:
            return "trainer"
    return None


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return render_charts()


@pytest.fixture(scope="module")
def chart(documents: list[dict[str, Any]]) -> dict[str, Container]:
    roles: dict[str, Container] = {}
    for container in chart_containers(documents):
        role = chart_role(container)
        if role is not None:
            assert role not in roles, f"two chart containers play {role}: {roles[role].workload}, {container.workload}"
            roles[role] = container
    return roles


def probe_path(container: Container, probe: str = "livenessProbe") -> tuple[str, int]:
    http = container.raw[probe]["httpGet"]
    port = http["port"]
    return http["path"], int(port) if str(port).isdigit() else container.ports[port]


def compose_healthcheck(services: dict[str, Any], name: str) -> str:
    return " ".join(services[name]["healthcheck"]["test"])


@pytest.mark.parametrize("role", sorted(IMAGE_OF_ROLE))
def test_both_run_the_same_image(role: str, chart: dict[str, Container], services: dict[str, Any]) -> None:
    assert role in chart, f"the chart renders no container playing `{role}` ({IMAGE_OF_ROLE[role]})"
    assert chart[role].image_name == IMAGE_OF_ROLE[role]
    assert image_name(services[role]["image"]) == IMAGE_OF_ROLE[role]


@pytest.mark.parametrize("role", sorted(PORTS))
def test_both_listen_on_the_contract_port(role: str, chart: dict[str, Container], services: dict[str, Any]) -> None:
    assert PORTS[role] in chart[role].ports.values(), f"chart {role} ports: {chart[role].ports}"
    assert PORTS[role] in {int(p["target"]) for p in services[role]["ports"]}


@pytest.mark.parametrize("role", sorted(REQUIRED_ENV))
def test_both_set_the_contract_variables(role: str, chart: dict[str, Container], services: dict[str, Any]) -> None:
    compose_env = set(services[role].get("environment", {}))
    assert REQUIRED_ENV[role] <= compose_env, f"compose {role} lacks {REQUIRED_ENV[role] - compose_env}"
    chart_env = set(chart[role].env)
    assert REQUIRED_ENV[role] <= chart_env, f"chart {role} lacks {REQUIRED_ENV[role] - chart_env}"
    for variable in SAME_VALUE.get(role, set()):
        assert services[role]["environment"][variable] == chart[role].env[variable], variable


@pytest.mark.parametrize("role", ["inference", "mlflow"])
def test_contract_variables_compose_sets_the_chart_sets_too(
    role: str, chart: dict[str, Container], services: dict[str, Any]
) -> None:
    contract = contract_env_names()
    assert {"MLFLOW_TRACKING_URI", "MODEL_NAME", "PREFECT_API_URL"} <= contract, "docs table not parsed"
    compose_contract = set(services[role]["environment"]) & contract
    missing = compose_contract - set(chart[role].env)
    assert not missing, f"compose sets {sorted(missing)} for {role}; the chart does not"


def test_integer_variables_are_integers_on_both_sides(chart: dict[str, Container], services: dict[str, Any]) -> None:
    for role in ("inference", "trainer", "mlflow"):
        sides = {"compose": services[role].get("environment", {}), "chart": chart[role].env}
        for side, env in sides.items():
            for variable in INTEGER_ENV & set(env):
                value = env[variable]
                if value is not None:
                    assert re.fullmatch(r"\d+", value), f"{side} {role}: {variable}={value!r} is not an integer"


def test_clients_reach_mlflow_and_prefect_on_the_contract_ports(
    documents: list[dict[str, Any]], chart: dict[str, Container], services: dict[str, Any]
) -> None:
    urls = {
        ("compose", "MLFLOW_TRACKING_URI"): services["inference"]["environment"]["MLFLOW_TRACKING_URI"],
        ("chart", "MLFLOW_TRACKING_URI"): chart["inference"].env["MLFLOW_TRACKING_URI"],
        ("compose", "PREFECT_API_URL"): services["trainer"]["environment"]["PREFECT_API_URL"],
        ("chart", "PREFECT_API_URL"): chart["trainer"].env["PREFECT_API_URL"],
    }
    for (side, variable), url in urls.items():
        assert url, f"{side} {variable} has no literal value"
        parts = urlsplit(url)
        if variable == "MLFLOW_TRACKING_URI":
            assert parts.port == PORTS["mlflow"], f"{side}: {url}"
            assert parts.path in {"", "/"}, f"{side}: {url}"
        else:
            assert parts.port == PORTS["prefect-server"], f"{side}: {url}"
            assert parts.path == "/api", f"{side}: {url}"
    services_ports = {
        d["metadata"]["name"]: {int(p["port"]) for p in d["spec"]["ports"]} for d in documents if d["kind"] == "Service"
    }
    for variable, port in (("MLFLOW_TRACKING_URI", 5000), ("PREFECT_API_URL", 4200)):
        host = urlsplit(urls[("chart", variable)]).hostname
        assert host in services_ports, f"no chart Service named {host}"
        assert port in services_ports[host], f"chart Service {host} lacks port {port}"


def test_training_runs_get_the_tracking_uri_on_both_sides(
    documents: list[dict[str, Any]], services: dict[str, Any]
) -> None:
    """Compose runs flows in the worker's process; the chart in Jobs from the pool's base job template."""
    assert services["trainer"]["environment"]["MLFLOW_TRACKING_URI"].endswith(":5000")
    templates = [
        json.loads(value)
        for d in documents
        if d["kind"] == "ConfigMap"
        for value in (d.get("data") or {}).values()
        if '"job_configuration"' in value
    ]
    assert templates, "the chart has no work-pool base job template"
    containers = templates[0]["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in containers[0].get("env", [])}
    assert env.get("MLFLOW_TRACKING_URI", "").endswith(":5000"), env


def test_probes_use_the_same_endpoints(chart: dict[str, Container], services: dict[str, Any]) -> None:
    for role in ("inference", "mlflow", "prefect-server", "trainer"):
        path, port = probe_path(chart[role])
        check = compose_healthcheck(services, role)
        assert f":{port}{path}'" in check, f"{role}: chart probes {port}{path}, compose runs {check}"


def test_mlflow_server_flags_agree(chart: dict[str, Container], services: dict[str, Any]) -> None:
    line = chart["mlflow"].command_line
    env = services["mlflow"]["environment"]
    assert "--artifacts-destination s3://mlflow" in line
    assert env["MLFLOW_ARTIFACTS_DESTINATION"] == "s3://mlflow"
    assert "--serve-artifacts" in line
    chart_hosts = set(line.split("--allowed-hosts ", 1)[1].split(" ", 1)[0].split(","))
    compose_hosts = set(env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(","))
    common = {"localhost", "localhost:*", "127.0.0.1:*"}
    assert common <= chart_hosts
    assert common <= compose_hosts
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert chart["mlflow"].env.get("MLFLOW_BACKEND_STORE_URI", "").startswith("postgresql+psycopg2://")


def test_third_party_images_are_the_same(documents: list[dict[str, Any]], services: dict[str, Any]) -> None:
    chart_images = {normalise_image(c.image) for c in chart_containers(documents)}
    for name in ("postgres", "minio"):
        image = normalise_image(services[name]["image"])
        assert image in chart_images, f"compose {name} runs {image}; the chart runs {sorted(chart_images)}"


def test_both_create_the_same_databases(documents: list[dict[str, Any]]) -> None:
    compose_sql = " ".join(p.read_text() for p in (REPO_ROOT / "compose" / "postgres-init").glob("*.sql"))
    chart_sql = " ".join(
        str(v)
        for d in documents
        if d["kind"] == "ConfigMap"
        for k, v in (d.get("data") or {}).items()
        if k.endswith(".sql")
    )
    pattern = re.compile(r"CREATE DATABASE\s+\"?(\w+)\"?", re.IGNORECASE)
    compose_dbs = set(pattern.findall(compose_sql))
    assert compose_dbs == {"mlflow", "prefect"}
    chart_dbs = set(pattern.findall(chart_sql))
    assert chart_dbs == compose_dbs, f"chart init SQL creates {chart_dbs}"


def test_role_mapping_sees_every_project_container(documents: list[dict[str, Any]]) -> None:
    """Guards the mapping above: every project image in the chart is recognised or is a known helper."""
    helpers = (
        "sentiment_mlflow_server.db_upgrade",
        "sentiment-trainer sync-pool",
        "sentiment-trainer deploy",
        "sentiment-trainer prepare",
        "helm_test",
    )
    for container in chart_containers(documents):
        if container.image_name.startswith("sentiment-") and chart_role(container) is None:
            assert any(h in container.command_line for h in helpers), (
                f"{container.workload}/{container.name} runs {container.command_line!r}: which compose service is it?"
            )
