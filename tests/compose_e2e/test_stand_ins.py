"""The stand-in base images do what docker-compose.yml and the Helm chart rely on from the upstream images.

PostgreSQL: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, PGDATA, the init scripts, `pg_isready` on PATH and
password auth over TCP, both as compose starts it (root, volume at /var/lib/postgresql) and as the chart does
(uid 999, read-only root, emptyDirs at /var/run/postgresql and /tmp, PGDATA a subfolder of the volume, the
chart's own init SQL and probe command, rendered by helm). MinIO: the chart's arguments as a non-root user with
HOME=/tmp and a read-only root, and the compose healthcheck `mc ready local`.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import yaml

from tests.compose_e2e.stack import REPO_ROOT, wait_until

POSTGRES = "postgres:17.6-bookworm"
MINIO = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
CHART = REPO_ROOT / "charts" / "sentiment-platform"
PASSWORD = "stand-in-Secret-1"


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Containers and volumes a test creates, removed afterwards whatever happened."""
    created: list[str] = []
    yield created
    for name in created:
        docker("rm", "--force", "--volumes", name, check=False)
        docker("volume", "rm", "--force", name, check=False)


def published_port(container: str, port: int) -> int:
    out = docker("port", container, f"{port}/tcp").stdout.splitlines()[0]
    return int(out.rsplit(":", 1)[1])


def helm_rendered(*templates: str) -> dict[str, dict[str, Any]]:
    helm = REPO_ROOT / ".tools" / "bin" / "helm"
    argv = [str(helm), "template", "sentiment", str(CHART), "--namespace", "mlops", "--kube-version", "1.34.0"]
    for template in templates:
        argv += ["--show-only", template]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out) if doc}


def server_processes_uids(container: str) -> set[str]:
    rows = [line.split() for line in docker("top", container, "-eo", "pid,uid,comm").stdout.splitlines()[1:]]
    return {row[1] for row in rows if len(row) >= 3 and row[2] == "postgres"}


def connect(port: int, user: str, password: str, dbname: str) -> Any:
    return psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname=dbname, connect_timeout=5)


def databases(port: int, user: str, dbname: str) -> dict[str, str]:
    with connect(port, user, PASSWORD, dbname) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database")
        return dict(cursor.fetchall())


def wait_ready(container: str, probe: list[str]) -> None:
    wait_until(
        f"{container} to pass {' '.join(probe)}",
        lambda: docker("exec", container, *probe, check=False).returncode == 0,
        timeout=90,
        interval=1,
    )


def test_postgres_as_compose_runs_it(names: list[str]) -> None:
    name = f"standin-pg-compose-{uuid.uuid4().hex[:8]}"
    names.append(name)
    init = REPO_ROOT / "compose" / "postgres-init"
    docker(
        "run", "--detach", "--name", name, "--publish", "127.0.0.1::5432",
        "--env", "POSTGRES_USER=sentiment", "--env", f"POSTGRES_PASSWORD={PASSWORD}", "--env", "POSTGRES_DB=postgres",
        "--env", "PGDATA=/var/lib/postgresql/data",
        "--volume", f"{name}:/var/lib/postgresql", "--volume", f"{init}:/docker-entrypoint-initdb.d:ro",
        POSTGRES,
    )  # fmt: skip
    wait_ready(name, ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "sentiment", "-d", "postgres"])
    port = published_port(name, 5432)
    assert {"mlflow", "prefect"} <= set(databases(port, "sentiment", "postgres"))
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect(port, "sentiment", "wrong-password", "postgres")
    assert server_processes_uids(name) == {"999"}, "the server drops from root to uid 999"
    # A restart finds the cluster (no second init) in the volume, under data/.
    docker("restart", name)
    wait_ready(name, ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "sentiment", "-d", "postgres"])
    assert docker("logs", name).stdout.count("PostgreSQL init process complete") == 1
    assert docker("exec", name, "test", "-s", "/var/lib/postgresql/data/PG_VERSION", check=False).returncode == 0


def test_postgres_as_the_chart_runs_it(names: list[str], tmp_path: Path) -> None:
    rendered = helm_rendered("templates/postgresql/statefulset.yaml", "templates/postgresql/configmap.yaml")
    pod = rendered["StatefulSet"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    security = pod["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    for filename, text in rendered["ConfigMap"]["data"].items():
        (tmp_path / filename).write_text(text)
    tmp_path.chmod(0o755)
    name = f"standin-pg-chart-{uuid.uuid4().hex[:8]}"
    names.append(name)
    uid, gid = security["runAsUser"], security["fsGroup"]
    # fsGroup: the volume's root belongs to the pod's group, group-writable (kubelet does this for a PVC).
    fs_group = f"chgrp {gid} /v && chmod 2775 /v"
    docker("run", "--rm", "--volume", f"{name}:/v", "--entrypoint", "sh", POSTGRES, "-c", fs_group)
    docker(
        "run", "--detach", "--name", name, "--publish", "127.0.0.1::5432",
        "--user", f"{uid}:{security['runAsGroup']}", "--group-add", str(gid),
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--tmpfs", f"{mounts['run']}:mode=1777", "--tmpfs", f"{mounts['tmp']}:mode=1777",
        "--volume", f"{name}:{mounts['data']}", "--volume", f"{tmp_path}:{mounts['init']}:ro",
        "--env", f"POSTGRES_USER={env['POSTGRES_USER']}", "--env", f"POSTGRES_PASSWORD={PASSWORD}",
        "--env", f"POSTGRES_DB={env['POSTGRES_DB']}", "--env", f"PGDATA={env['PGDATA']}",
        POSTGRES,
    )  # fmt: skip
    wait_ready(name, container["startupProbe"]["exec"]["command"])
    port = published_port(name, 5432)
    owners = databases(port, env["POSTGRES_USER"], env["POSTGRES_DB"])
    assert owners.get("mlflow") == owners.get("prefect") == env["POSTGRES_USER"], owners
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        connect(port, env["POSTGRES_USER"], "wrong-password", env["POSTGRES_DB"])
    assert server_processes_uids(name) == {str(uid)}


def test_minio_as_the_chart_runs_it_passes_the_compose_healthcheck(names: list[str]) -> None:
    name = f"standin-minio-{uuid.uuid4().hex[:8]}"
    names.append(name)
    docker(
        "run", "--detach", "--name", name, "--publish", "127.0.0.1::9000",
        "--user", "1000:1000", "--read-only", "--cap-drop", "ALL", "--tmpfs", "/tmp:mode=1777",
        "--mount", "type=tmpfs,destination=/data,tmpfs-mode=1777",
        "--env", "HOME=/tmp", "--env", "MINIO_ROOT_USER=sentiment", "--env", f"MINIO_ROOT_PASSWORD={PASSWORD}",
        MINIO, "server", "/data", "--address", ":9000", "--console-address", ":9001", "--certs-dir", "/tmp/certs",
    )  # fmt: skip
    wait_ready(name, ["mc", "ready", "local"])
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{published_port(name, 9000)}",
        aws_access_key_id="sentiment",
        aws_secret_access_key=PASSWORD,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="mlflow")
    s3.put_object(Bucket="mlflow", Key="probe.txt", Body=b"ok")
    assert s3.get_object(Bucket="mlflow", Key="probe.txt")["Body"].read() == b"ok"
