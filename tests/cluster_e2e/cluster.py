"""The user's Kubernetes journey as k8s-dev/README.md tells it: `make` targets, `helm`, `kubectl`, and HTTP to the
release's Services. Traffic goes only to loopback (port-forwards) and to the cluster's Service and pod addresses
(network namespaces the harness made)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "imdb" / "reviews.csv.gz"
NAMESPACE = "mlops"
RELEASE = "sentiment"
MODEL = "sentiment-classifier"
# `make port-forward`'s local ports (docs/architecture.md).
FORWARDS = {"mlflow": 5001, "prefect": 4200, "minio-console": 9001, "inference": 8000}
T = TypeVar("T")


def env() -> dict[str, str]:
    tools = f"{REPO_ROOT / '.tools' / 'bin'}:{REPO_ROOT / '.venv' / 'bin'}"
    return {**os.environ, "PATH": f"{tools}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def run(*command: str, timeout: float = 600, check: bool = True, **extra_env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(command),
        cwd=REPO_ROOT,
        env={**env(), **extra_env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"`{' '.join(command)}` exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n"
            f"--- stderr\n{result.stderr[-4000:]}"
        )
    return result


def make(target: str, *variables: str, timeout: float = 1200, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return run("make", "--no-print-directory", target, *variables, timeout=timeout, **extra_env)


def kubectl(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("kubectl", "-n", NAMESPACE, *args, timeout=timeout, check=check)


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def wait_until(what: str, check: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (httpx.HTTPError, AssertionError, KeyError, ValueError) as error:
            last = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r})")


def service_url(component: str, port: int) -> str:
    """http://<ClusterIP>:<port>: the node's kube-proxy rules route it to a Ready pod, as for any in-cluster client."""
    ip = kubectl("get", "service", f"{RELEASE}-{component}", "-o", "jsonpath={.spec.clusterIP}").stdout.strip()
    assert ip, f"Service {RELEASE}-{component} has no ClusterIP"
    return f"http://{ip}:{port}"


def pods(component: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    return list(kubectl_json("get", "pods", "-l", selector)["items"])


def ready_pods(component: str) -> list[str]:
    names = []
    for pod in pods(component):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") == "True":
            names.append(pod["metadata"]["name"])
    return names


@contextmanager
def port_forwards() -> Iterator[None]:
    """`make port-forward` in the background, as a user runs it in a second terminal."""
    for port in FORWARDS.values():
        with socket.socket() as probe:
            # A port taken by something else (a compose stack) would answer in place of the forward.
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"127.0.0.1:{port} is taken: stop what listens there"
    process = subprocess.Popen(
        ["make", "--no-print-directory", "port-forward"],
        cwd=REPO_ROOT,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            "the port-forwards",
            lambda: all(_answers(f"http://127.0.0.1:{port}/") for port in FORWARDS.values()),
            60,
            1,
        )
        yield
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return False
    return True


def forwarded(name: str, path: str) -> str:
    return f"http://127.0.0.1:{FORWARDS[name]}{path}"


def champion_version(mlflow_url: str) -> str | None:
    response = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": "champion"},
        timeout=10,
    )
    if response.status_code == 404 or (response.status_code == 400 and "RESOURCE_DOES_NOT_EXIST" in response.text):
        return None
    response.raise_for_status()
    return str(response.json()["model_version"]["version"])


def model_versions(mlflow_url: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{mlflow_url}/api/2.0/mlflow/model-versions/search",
        params={"filter": f"name='{MODEL}'", "max_results": 100},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json().get("model_versions", []))


def replica_versions() -> dict[str, str | None]:
    """pod name -> the version each Ready inference replica serves (its /model-info, at the pod's own address)."""
    found: dict[str, str | None] = {}
    ready = set(ready_pods("inference"))  # once, not one kubectl call per pod
    for pod in pods("inference"):
        name = pod["metadata"]["name"]
        if name not in ready or not pod["status"].get("podIP"):
            continue
        info = httpx.get(f"http://{pod['status']['podIP']}:8000/model-info", timeout=10).json()
        found[name] = info.get("version")
    return found
