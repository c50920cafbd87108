"""The kind loop's scripts and the chart's own scripts, run for real where this machine allows it:
shellcheck, the Makefile block, `make train` / `make smoke` against a fake Kubernetes API server, the
bucket Job against a real MinIO, the `helm test` checker against a local HTTP server and the PostgreSQL
first-start SQL against a real PostgreSQL."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import k8s_common
import k8s_smoke
import k8s_train
import pytest
import yaml
from botocore.exceptions import ClientError
from kubernetes.client import V1Job, V1JobCondition, V1JobStatus, V1ObjectMeta

from tests.charts.chartlib import CHART, K8S_DEV, RELEASE, REPO_ROOT, SCRIPTS, TOOLS_BIN, by_kind, documents, run, tool

FLOW_RUN_ID = "0b6f2a8e-7d4c-4e0b-9a51-3c2d1e0f9a77"
PREFECT_RUN_OUTPUT = f"""Creating flow run for deployment 'sentiment-training/k8s'...
Created flow run 'brave-otter'.
└── UUID: {FLOW_RUN_ID}
└── Parameters: {{}}
└── Job Variables: {{}}
└── Scheduled start time: 2026-11-23 12:00:00 UTC (now)
└── URL: http://sentiment-prefect-server:4200/runs/flow-run/{FLOW_RUN_ID}
"""


# ------------------------------------------------------------------------------------------ shell, make


def test_shellcheck_passes_on_every_shell_script() -> None:
    scripts = sorted({*SCRIPTS.glob("*.sh"), *K8S_DEV.glob("*.sh"), *CHART.rglob("*.sh")})
    assert scripts, "no shell script found"
    result = run([tool("shellcheck"), "--severity=style", "--external-sources", *map(str, scripts)])
    assert result.returncode == 0, result.stdout + result.stderr


def kind_loop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(SCRIPTS / "kind-loop.sh"), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else {**os.environ, "IMAGE_TAG": ""},
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )


def test_image_tag_is_the_git_sha_plus_a_change_hash() -> None:
    result = kind_loop("tag")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"([0-9a-f]{12}|nogit)(-dirty-[0-9a-f]{8})?\n", result.stdout), result.stdout
    assert kind_loop("tag").stdout == result.stdout, "the tag must be stable between images, load and deploy"
    pinned = kind_loop("tag", env={**os.environ, "IMAGE_TAG": "v1.2.3"})
    assert pinned.stdout == "v1.2.3\n"


def test_kind_loop_names_a_missing_tool_and_rejects_unknown_steps(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("dirname", "git"):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    result = kind_loop("up", env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert "'kind' is not installed" in result.stderr
    unknown = kind_loop("bogus")
    assert unknown.returncode == 1
    assert "usage:" in unknown.stderr


MAKE_TARGETS = {
    "kind-up": "kind-loop.sh up",
    "images": "kind-loop.sh images",
    "kind-load": "kind-loop.sh load",
    "deploy": "kind-loop.sh deploy",
    "port-forward": "kind-loop.sh port-forward",
    "train": "scripts/charts/k8s_train.py",
    "smoke": "scripts/charts/k8s_smoke.py",
    "kind-down": "kind-loop.sh down",
    "upload-data": "kind-loop.sh upload-data",
    "charts-check": "pytest tests/charts",
}


def test_makefile_block_is_thin_and_complete() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    header = "##@ Kubernetes (kind + Helm)"
    assert makefile.count(header) == 1
    block = makefile[makefile.index(header) :]
    block = block[: block.find("\n##@ ")] if "\n##@ " in block else block
    targets = dict(re.findall(r"^([a-z-]+):.*?## (.+)$", block, re.MULTILINE))
    assert set(targets) == set(MAKE_TARGETS), set(targets) ^ set(MAKE_TARGETS)
    assert set(re.findall(r"^\.PHONY: (\S+)$", block, re.MULTILINE)) == set(MAKE_TARGETS)
    for target, command in MAKE_TARGETS.items():
        result = run(["make", "--no-print-directory", "-n", target])
        assert result.returncode == 0, f"make -n {target}: {result.stderr}"
        assert command in result.stdout, f"make {target} runs {result.stdout!r}"
        recipe = block[block.index(f"\n{target}:") :].split("\n\n", 1)[0]
        assert len([line for line in recipe.splitlines() if line.startswith("\t")]) == 1, f"{target} is not thin"


# ------------------------------------------------------------------------------- scripts vs the chart


def test_script_names_match_the_rendered_chart() -> None:
    docs = documents("default")
    worker = by_kind(docs, "Deployment")[k8s_common.component_name(RELEASE, k8s_common.WORKER_COMPONENT)]
    labels = worker["spec"]["template"]["metadata"]["labels"]
    selector = dict(pair.split("=") for pair in k8s_common.component_selector(RELEASE, "prefect-worker").split(","))
    assert selector.items() <= labels.items()
    assert k8s_common.WORKER_CONTAINER in {c["name"] for c in worker["spec"]["template"]["spec"]["containers"]}
    service = by_kind(docs, "Service")[k8s_common.component_name(RELEASE, k8s_common.INFERENCE_COMPONENT)]
    assert k8s_common.INFERENCE_PORT_NAME in {p["name"] for p in service["spec"]["ports"]}
    assert k8s_common.DEFAULT_NAMESPACE == "mlops"
    assert k8s_common.DEFAULT_RELEASE == RELEASE
    spec = importlib.util.find_spec("prefect_kubernetes")
    assert spec is not None
    assert spec.origin is not None
    worker_source = Path(spec.origin).with_name("worker.py").read_text()
    assert f'"{k8s_common.FLOW_RUN_LABEL}"' in worker_source, "prefect-kubernetes no longer labels Jobs this way"


def test_parse_flow_run_id() -> None:
    assert k8s_train.parse_flow_run_id(PREFECT_RUN_OUTPUT) == FLOW_RUN_ID
    assert k8s_train.parse_flow_run_id(f"id {FLOW_RUN_ID.upper()} done") == FLOW_RUN_ID
    with pytest.raises(k8s_common.LoopError, match="could not find a flow-run id"):
        k8s_train.parse_flow_run_id("Deployment 'sentiment-training/k8s' not found!")


def job(*conditions: tuple[str, str, str | None]) -> V1Job:
    return V1Job(
        metadata=V1ObjectMeta(name="j"),
        status=V1JobStatus(
            conditions=[
                V1JobCondition(type=t, status=s, reason=r, message="m" if r else None) for t, s, r in conditions
            ]
        ),
    )


def test_job_outcome() -> None:
    assert k8s_train.job_outcome(job()) is None
    assert k8s_train.job_outcome(job(("SuccessCriteriaMet", "True", None), ("Complete", "True", None))) == "succeeded"
    assert k8s_train.job_outcome(job(("Failed", "True", "BackoffLimitExceeded"))) == (
        "failed (BackoffLimitExceeded: m)"
    )
    assert k8s_train.job_outcome(job(("Failed", "False", None))) is None


def test_check_prediction() -> None:
    ok = k8s_common.ProxyResponse(
        200, json.dumps({"sentiment": "positive", "confidence": 0.93, "model_version": "3"}).encode(), {}
    )
    assert k8s_smoke.check_prediction(ok, "positive")["model_version"] == "3"
    with pytest.raises(k8s_common.LoopError, match="classified a clearly negative review as positive"):
        k8s_smoke.check_prediction(ok, "negative")
    with pytest.raises(k8s_common.LoopError, match="answered 503"):
        k8s_smoke.check_prediction(k8s_common.ProxyResponse(503, b"no champion", {}), "positive")
    bad = k8s_common.ProxyResponse(200, json.dumps({"sentiment": "positive", "confidence": 3}).encode(), {})
    with pytest.raises(k8s_common.LoopError, match="invalid confidence"):
        k8s_smoke.check_prediction(bad, "positive")


# ------------------------------------------------------------------------------ a fake Kubernetes API


class FakeApi:
    """A tiny Kubernetes API server: serves what the scripts ask for and records the requests."""

    def __init__(self, routes: Callable[[str, str, dict[str, list[str]], bytes], tuple[int, Any]]) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                api.requests.append((self.command, url.path, {k.lower(): v for k, v in self.headers.items()}))
                status, payload = routes(self.command, url.path, parse_qs(url.query), body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve  # noqa: N815
            do_POST = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def kubeconfig(self, folder: Path) -> Path:
        path = folder / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "dev", "user": {"token": "fake-token"}}],
                    "contexts": [{"name": "kind-sentiment", "context": {"cluster": "fake", "user": "dev"}}],
                    "current-context": "kind-sentiment",
                }
            )
        )
        return path


@pytest.fixture
def fake_api(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., FakeApi]]:
    started: list[FakeApi] = []

    def start(routes: Callable[[str, str, dict[str, list[str]], bytes], tuple[int, Any]]) -> FakeApi:
        api = FakeApi(routes)
        api.thread.start()
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path)))
        started.append(api)
        return api

    yield start
    for api in started:
        api.server.shutdown()
        api.server.server_close()


def test_make_smoke_waits_for_a_champion_then_predicts(
    fake_api: Callable[..., FakeApi], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = "/api/v1/namespaces/mlops/services/sentiment-inference:http/proxy"
    ready_calls = {"n": 0}

    def routes(method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        if method == "GET" and path == f"{proxy}/health/ready":
            ready_calls["n"] += 1
            if ready_calls["n"] < 2:
                return 503, {"ready": False, "reason": "no champion model loaded yet"}
            if ready_calls["n"] < 3:
                return 200, {"ready": True, "reason": "no champion registered yet"}
            return 200, {"ready": True, "model_version": "7"}
        if method == "POST" and path == f"{proxy}/predict":
            text = json.loads(body)["text"]
            sentiment = "positive" if "wonderful" in text else "negative"
            return 200, {"sentiment": sentiment, "confidence": 0.9, "model_version": "7"}
        return 404, {"kind": "Status", "code": 404}

    api = fake_api(routes)
    monkeypatch.setattr(k8s_smoke, "POLL_SECONDS", 0.05)
    assert k8s_smoke.main(["--timeout", "10"]) == 0, capsys.readouterr().err
    assert ready_calls["n"] == 3
    posts = [r for r in api.requests if r[0] == "POST"]
    assert len(posts) == 2
    assert all(r[2].get("authorization") == "Bearer fake-token" for r in api.requests)
    assert "smoke test passed" in capsys.readouterr().out


def test_make_smoke_explains_a_missing_champion(
    fake_api: Callable[..., FakeApi], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api(lambda *_: (503, {"ready": False}))
    monkeypatch.setattr(k8s_smoke, "POLL_SECONDS", 0.05)
    assert k8s_smoke.main(["--timeout", "0.2"]) == 1
    assert "Train one with `make train`" in capsys.readouterr().err


def k8s_list(kind: str, items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
    return {"kind": kind, "apiVersion": api_version, "metadata": {}, "items": items}


def pod(name: str, phase: str, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "mlops"},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_make_train_triggers_the_run_and_follows_its_job(
    fake_api: Callable[..., FakeApi], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    job_name = "brave-otter-x7k2p"
    job_reads = {"n": 0}

    def routes(method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        selector = query.get("labelSelector", [""])[0]
        if path == "/api/v1/namespaces/mlops/pods" and "component=prefect-worker" in selector:
            return 200, k8s_list("PodList", [pod("worker-0", "Pending", False), pod("worker-1", "Running", True)])
        if path == "/apis/batch/v1/namespaces/mlops/jobs" and selector == f"prefect.io/flow-run-id={FLOW_RUN_ID}":
            return 200, k8s_list("JobList", [{"metadata": {"name": job_name}}], "batch/v1")
        if path == "/api/v1/namespaces/mlops/pods" and selector == f"job-name={job_name}":
            return 200, k8s_list("PodList", [pod(f"{job_name}-abc", "Running", True)])
        if path == f"/api/v1/namespaces/mlops/pods/{job_name}-abc/log":
            assert query.get("follow") == ["true"]
            return 200, b"load-data done\npromote-champion: version 7 is the champion\n"
        if path == f"/apis/batch/v1/namespaces/mlops/jobs/{job_name}":
            job_reads["n"] += 1
            conditions = [{"type": "Complete", "status": "True"}] if job_reads["n"] > 1 else []
            return 200, {"metadata": {"name": job_name}, "status": {"conditions": conditions}}
        return 404, {"kind": "Status", "code": 404, "message": f"no route {path}"}

    fake_api(routes)
    executed: list[tuple[str, list[str]]] = []

    def fake_exec(core: Any, namespace: str, pod_name: str, container: str, command: list[str], timeout: float) -> str:
        executed.append((pod_name, command))
        assert container == "prefect-worker"
        return PREFECT_RUN_OUTPUT

    monkeypatch.setattr(k8s_train, "exec_in_pod", fake_exec)
    monkeypatch.setattr(k8s_train, "POLL_SECONDS", 0.05)
    assert k8s_train.main(["--timeout", "10", "--param", "C=0.5 nb_alpha=1"]) == 0, capsys.readouterr().err
    run = ["prefect", "--no-prompt", "deployment", "run", "sentiment-training/k8s"]
    assert executed == [("worker-1", [*run, "--param", 'overrides={"C": "0.5", "nb_alpha": "1"}'])]
    out = capsys.readouterr().out
    assert "promote-champion: version 7 is the champion" in out
    assert "training Job succeeded" in out


def test_make_train_explains_an_undeployed_release(
    fake_api: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_api(lambda *_: (200, k8s_list("PodList", [])))
    assert k8s_train.main([]) == 1
    assert "no Ready Prefect worker pod" in capsys.readouterr().err


def test_scripts_explain_a_missing_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert k8s_smoke.main(["--timeout", "1"]) == 1
    assert "make kind-up" in capsys.readouterr().err


# ------------------------------------------------------------------------ the chart's Python scripts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.servers
def test_bucket_job_script_creates_buckets_idempotently_on_real_minio(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MINIO_ROOT_USER": "chart-test",
        "MINIO_ROOT_PASSWORD": "chart-test-password",
        "MINIO_BROWSER": "off",
        "HOME": str(tmp_path),
    }
    minio = subprocess.Popen(
        [tool("minio"), "server", str(tmp_path / "data"), "--address", f"127.0.0.1:{port}", "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client_env = {
            **os.environ,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "chart-test",
            "AWS_SECRET_ACCESS_KEY": "chart-test-password",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        script = str(CHART / "files" / "create_buckets.py")
        first = subprocess.run(
            [sys.executable, script, "mlflow", "dvc"], env=client_env, capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stderr
        assert "s3://mlflow created" in first.stdout
        assert "s3://dvc created" in first.stdout
        again = subprocess.run(
            [sys.executable, script, "mlflow", "dvc"], env=client_env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("already exists") == 2
        checker = subprocess.run(
            [sys.executable, str(CHART / "files" / "helm_test.py")],
            env={**client_env, "S3_BUCKETS": "mlflow dvc missing-bucket", "HELM_TEST_ATTEMPTS": "1"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert checker.returncode == 1
        assert "ok   s3: bucket dvc exists" in checker.stdout
        assert "FAIL s3: bucket missing-bucket" in checker.stdout
    finally:
        minio.terminate()
        minio.wait(timeout=20)


@pytest.mark.servers
def test_identity_script_gives_each_component_one_bucket_on_real_minio(tmp_path: Path) -> None:
    """The bucket Job's second step (`mc admin` in the MinIO image): a user limited to its bucket, idempotent."""
    port = free_port()
    root = {"MINIO_ROOT_USER": "chart-test", "MINIO_ROOT_PASSWORD": "chart-test-password"}
    minio = subprocess.Popen(
        [tool("minio"), "server", str(tmp_path / "data"), "--address", f"127.0.0.1:{port}", "--quiet"],
        env={**os.environ, **root, "MINIO_BROWSER": "off", "HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    admin = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    root_keys = {"AWS_ACCESS_KEY_ID": root["MINIO_ROOT_USER"], "AWS_SECRET_ACCESS_KEY": root["MINIO_ROOT_PASSWORD"]}
    try:
        buckets = subprocess.run(
            [sys.executable, str(CHART / "files" / "create_buckets.py"), "mlflow", "dvc"],
            env={**admin, **root_keys},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert buckets.returncode == 0, buckets.stderr
        home = tmp_path / "mc-home"
        home.mkdir()
        job_env = {
            "PATH": f"{Path(tool('mc')).parent}:{os.environ['PATH']}",
            "HOME": str(home),
            "AWS_ENDPOINT_URL": endpoint,
            **root_keys,
            "MLFLOW_ACCESS_KEY": "sentiment-mlflow",
            "MLFLOW_SECRET_KEY": "mlflow-secret-key-0123456789",
        }
        script = ["sh", str(CHART / "files" / "create_minio_identities.sh"), "mlflow", "mlflow"]
        for _ in range(2):  # the hook runs after every install and upgrade: the second run changes nothing
            result = subprocess.run(script, env=job_env, capture_output=True, text=True, timeout=240)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "user sentiment-mlflow may use s3://mlflow only" in result.stdout
        mlflow_keys = {"AWS_ACCESS_KEY_ID": "sentiment-mlflow", "AWS_SECRET_ACCESS_KEY": "mlflow-secret-key-0123456789"}

        def helm_test_s3(keys: dict[str, str]) -> subprocess.CompletedProcess[str]:
            """The `helm test` pod's S3 check as the chart sets it: mlflow must answer, dvc must refuse."""
            return subprocess.run(
                [sys.executable, str(CHART / "files" / "helm_test.py")],
                env={**admin, **keys, "S3_BUCKETS": "mlflow", "S3_DENIED_BUCKETS": "dvc", "HELM_TEST_ATTEMPTS": "1"},
                capture_output=True,
                text=True,
                timeout=60,
            )

        checker = helm_test_s3(mlflow_keys)
        assert checker.returncode == 0, checker.stdout
        assert "ok   s3: bucket dvc refuses these keys (403)" in checker.stdout
        # What MLflow's artifact proxy does with them: write, read and delete in its bucket; nothing elsewhere.
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="sentiment-mlflow",
            aws_secret_access_key="mlflow-secret-key-0123456789",
        )
        s3.put_object(Bucket="mlflow", Key="1/run/artifacts/model.skops", Body=b"model")
        assert s3.get_object(Bucket="mlflow", Key="1/run/artifacts/model.skops")["Body"].read() == b"model"
        s3.delete_object(Bucket="mlflow", Key="1/run/artifacts/model.skops")
        for forbidden in (
            lambda: s3.put_object(Bucket="dvc", Key="x", Body=b"x"),
            lambda: s3.create_bucket(Bucket="another"),
            lambda: s3.delete_bucket(Bucket="mlflow"),
        ):
            with pytest.raises(ClientError, match="AccessDenied"):
                forbidden()
        # With the root keys the DVC bucket answers, so the same check fails: it can tell the two apart.
        rooted = helm_test_s3(root_keys)
        assert rooted.returncode == 1, rooted.stdout
        missing = subprocess.run(
            script, env={k: v for k, v in job_env.items() if k != "MLFLOW_SECRET_KEY"}, capture_output=True, text=True
        )
        assert missing.returncode == 1
        assert "MLFLOW_SECRET_KEY is not set" in missing.stderr
    finally:
        minio.terminate()
        minio.wait(timeout=20)


def test_helm_test_script_fails_on_any_unhealthy_endpoint() -> None:
    def routes(method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        return (200, {"status": "ok"}) if path.startswith("/ok") else (503, {"status": "down"})

    api = FakeApi(routes)
    api.thread.start()
    try:
        script = str(CHART / "files" / "helm_test.py")
        env = {"PATH": os.environ["PATH"], "HELM_TEST_ATTEMPTS": "2", "HELM_TEST_DELAY_SECONDS": "0.01"}
        healthy = [{"name": "a", "url": f"{api.url}/ok/a"}, {"name": "b", "url": f"{api.url}/ok/b"}]
        good = subprocess.run(
            [sys.executable, script], env={**env, "CHECKS": json.dumps(healthy)}, capture_output=True, text=True
        )
        assert good.returncode == 0, good.stdout
        sick = [*healthy, {"name": "c", "url": f"{api.url}/down"}]
        bad = subprocess.run(
            [sys.executable, script], env={**env, "CHECKS": json.dumps(sick)}, capture_output=True, text=True
        )
        assert bad.returncode == 1
        assert "FAIL c: GET" in bad.stdout
        nothing = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True)
        assert nothing.returncode == 1, "an empty check list must not pass"
    finally:
        api.server.shutdown()
        api.server.server_close()


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """A scratch folder PostgreSQL can use: when root, initdb runs as `postgres`, who cannot enter the
    pytest tmp tree (mode 0700), so the folder sits directly in the system temp dir and belongs to it."""
    folder = Path(tempfile.mkdtemp(prefix="chart-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_init_sql_creates_both_databases_idempotently(pg_dir: Path) -> None:
    """The first-start script of the chart, run twice by psql against a real PostgreSQL."""
    initdb = Path(tool("initdb")).resolve()
    bindir = initdb.parent
    psql = bindir / "psql"
    assert psql.is_file(), f"psql not found next to {initdb}"
    sql = by_kind(documents("default"), "ConfigMap")[f"{RELEASE}-postgresql-init"]["data"]["10-create-databases.sql"]
    data = pg_dir / "data"
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    port = free_port()
    init = subprocess.run(
        [*prefix, str(initdb), "-D", str(data), "-U", "sentiment", "--auth=trust"], capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    pg_ctl = str(bindir / "pg_ctl")
    options = f"-p {port} -k {pg_dir} -c listen_addresses=''"
    start = subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-l", str(pg_dir / "log"), "-o", options, "-w", "start"],
        capture_output=True,
        text=True,
    )
    assert start.returncode == 0, start.stderr + start.stdout
    try:
        base = [*prefix, str(psql), "-h", str(pg_dir), "-p", str(port), "-U", "sentiment", "-v", "ON_ERROR_STOP=1"]
        # The official image creates POSTGRES_DB (mlflow) before it runs the init scripts.
        subprocess.run([*base, "-d", "postgres", "-c", "CREATE DATABASE mlflow"], check=True, capture_output=True)
        for _ in range(2):
            result = subprocess.run([*base, "-d", "postgres"], input=sql, capture_output=True, text=True)
            assert result.returncode == 0, result.stderr
        owners = subprocess.run(
            [*base, "-d", "postgres", "-tAc", "SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert {"mlflow:sentiment", "prefect:sentiment"} <= set(owners), owners
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)


def test_tools_are_the_real_binaries() -> None:
    for name in ("helm", "kubeconform", "helm-unittest"):
        assert Path(tool(name)).parent == TOOLS_BIN
    version = run([tool("helm"), "version", "--short"])
    assert version.stdout.startswith("v3."), version.stdout
