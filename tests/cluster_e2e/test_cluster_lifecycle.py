"""The Kubernetes path for real, in k8s-dev/README.md's order, on the local test cluster: `make deploy` (helm
upgrade --install --wait) -> `helm test` before any champion -> the UIs through `make port-forward` -> data ->
`make train` (a Job from the Prefect worker) -> serving through the Service -> the chart's Prometheus scrapes every
replica -> a better run swaps every replica under traffic -> rollback -> a values change rolls the Deployment under
traffic -> faults (MLflow pod, Postgres pod during training, kubelet + containerd restart) -> `helm uninstall`.

The steps share one release and run in file order; each asserts what a user would see.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.cluster_e2e.cluster import (
    NAMESPACE,
    RELEASE,
    REPO_ROOT,
    SHARED_DATA,
    champion_version,
    env,
    forwarded,
    kubectl,
    kubectl_json,
    make,
    model_versions,
    pods,
    port_forwards,
    ready_pods,
    replica_versions,
    run,
    service_url,
    wait_until,
)
from tests.support.traffic import Traffic

# A deliberately weak first model (tiny hashing space, unigrams), so the default parameters then win.
WEAK = "n_features=4096 ngram_max=1"
TIMINGS: dict[str, float] = {}
RESULTS = REPO_ROOT / "bench" / "results" / "cluster_e2e.json"


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


def timed(name: str, started: float) -> None:
    TIMINGS[name] = round(time.monotonic() - started, 1)
    print(f"[cluster-e2e] {name}: {TIMINGS[name]} s", flush=True)


def write_timings() -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    RESULTS.write_text(json.dumps({**previous, "steps_seconds": TIMINGS}, indent=2) + "\n")


def test_deploy_installs_with_wait_and_helm_test_passes_before_any_champion(state: dict[str, Any]) -> None:
    started = time.monotonic()
    state["install_started"] = started
    make("deploy", timeout=1200)
    timed("make deploy (install, --wait)", started)
    # Every workload is up, and the inference replicas are Ready although no model exists yet.
    assert ready_pods("inference"), "no Ready inference replica after install"
    info = httpx.get(f"{service_url('inference', 8000)}/health/ready", timeout=10).json()
    assert info["ready"] is True, info
    assert "no champion" in info["reason"], info
    # The dataset PVC bound during the install: its first consumer (the prepare Job) is part of the release.
    claim = kubectl_json("get", "pvc", f"{RELEASE}-data")
    assert claim["status"]["phase"] == "Bound", claim["status"]
    # `--logs` cannot be used: the test pods are deleted once they succeeded (a failed one stays, for its logs).
    result = run("helm", "test", RELEASE, "-n", NAMESPACE, timeout=600)
    phases = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("Phase:")]
    assert phases == ["Succeeded", "Succeeded"], result.stdout
    # Least privilege: helm test just proved that MLflow's keys open s3://mlflow and that s3://dvc refuses them;
    # they are MLflow's own, not MinIO's root login (which only MinIO and the bucket Job hold).
    mlflow = kubectl_json("get", "deploy", f"{RELEASE}-mlflow")["spec"]["template"]["spec"]["containers"][0]
    key = next(e for e in mlflow["env"] if e["name"] == "AWS_ACCESS_KEY_ID")["valueFrom"]["secretKeyRef"]
    assert key["name"] == f"{RELEASE}-s3-mlflow", key
    identity = kubectl_json("get", "secret", f"{RELEASE}-s3-mlflow")["data"]["AWS_ACCESS_KEY_ID"]
    root = kubectl_json("get", "secret", f"{RELEASE}-minio")["data"]["AWS_ACCESS_KEY_ID"]
    assert identity != root


def test_the_uis_answer_through_make_port_forward() -> None:
    with port_forwards():
        assert httpx.get(forwarded("mlflow", "/health"), timeout=10).text.strip() == "OK"
        assert "<html" in httpx.get(forwarded("mlflow", "/"), timeout=10).text.lower()
        assert "<html" in httpx.get(forwarded("prefect", "/"), timeout=10).text.lower()
        # The UI calls its API through the same forward (prefectServer.uiApiUrl).
        pool = httpx.get(forwarded("prefect", "/api/work_pools/sentiment-k8s"), timeout=10).json()
        assert pool["type"] == "kubernetes"
        assert httpx.get(forwarded("prefect", "/api/health"), timeout=10).status_code == 200
        assert "minio" in httpx.get(forwarded("minio-console", "/"), timeout=10).text.lower()
        assert httpx.get(forwarded("inference", "/docs"), timeout=10).status_code == 200


def test_upload_data_then_make_train_registers_v1_as_champion(state: dict[str, Any]) -> None:
    started = time.monotonic()
    make("upload-data", f"DATA={SHARED_DATA}", timeout=300)
    revision = json.loads(run("helm", "status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)["version"]
    prepare = f"job/{RELEASE}-prepare-data-{revision}"
    kubectl("wait", "--for=condition=complete", prepare, "--timeout=120s", timeout=150)
    timed("make upload-data", started)

    started = time.monotonic()
    train = make("train", f"PARAMS={WEAK}", timeout=1800)
    timed("make train (weak v1)", started)
    assert "training Job succeeded" in train.stdout, train.stdout[-3000:]
    # The flow read the dataset from the PVC (DATA_PATH), not a path inside the image.
    assert "/data/reviews.csv.gz" in train.stdout, train.stdout[-3000:]
    with port_forwards():
        assert champion_version(forwarded("mlflow", "")) == "1"

    api = service_url("inference", 8000)
    started = time.monotonic()
    wait_until("v1 served through the Service", lambda: set(replica_versions().values()) == {"1"}, 120)
    timed("champion v1 -> served", started)
    smoke = make("smoke", timeout=300)
    assert "model_version" in smoke.stdout or "positive" in smoke.stdout, smoke.stdout
    if "install_started" in state:  # (the deploy step ran in this session)
        TIMINGS["install to first prediction"] = round(time.monotonic() - state["install_started"], 1)
    assert httpx.post(f"{api}/predict", json={"text": "wonderful"}, timeout=10).json()["model_version"] == "1"


def test_the_charts_prometheus_scrapes_every_replica_and_sees_the_champion() -> None:
    """The chart's own Prometheus (DNS discovery on headless Services): one `up` target per pod of each component,
    the shared rules loaded, and the served version (v1, from the step above) queryable."""
    prometheus = service_url("prometheus", 9090)
    components = ("inference", "mlflow", "prefect-server", "prefect-worker")
    started = time.monotonic()
    seen: dict[str, Any] = {}  # the last answer, for the failure message

    def every_replica_up() -> dict[str, set[str]] | None:
        active = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        seen["targets"] = [(t["labels"]["job"], t["labels"]["instance"], t["health"], t["lastError"]) for t in active]
        if {target["health"] for target in active} != {"up"}:
            return None
        scraped: dict[str, set[str]] = {}
        for target in active:
            scraped.setdefault(target["labels"]["job"], set()).add(target["labels"]["instance"].rsplit(":", 1)[0])
        running = {
            f"sentiment-{c}": {
                p["status"]["podIP"]
                for p in pods(c)
                if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            }
            for c in components
        }
        seen["pods"] = running
        # Every replica (not one load-balanced address) and nothing else: DNS is refreshed every scrape interval.
        return scraped if scraped == running else None

    try:
        scraped = wait_until("every Prometheus target up, one per pod", every_replica_up, timeout=90)
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen: {seen}") from None
    assert all(scraped.values()), scraped
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {group["name"] for group in groups} == {"sentiment-inference", "sentiment-training"}
    assert all(rule["health"] == "ok" for group in groups for rule in group["rules"]), groups

    def served() -> list[dict[str, Any]] | None:
        query = {"query": 'sentiment_model_version_info{job="sentiment-inference"}'}
        return httpx.get(f"{prometheus}/api/v1/query", params=query, timeout=10).json()["data"]["result"] or None

    rows = wait_until("v1 in Prometheus", served, timeout=60)
    assert {row["metric"]["version"] for row in rows} == {"1"}, rows
    timed("prometheus: targets up, rules, v1 queried", started)


def test_a_values_change_rolls_the_deployment_without_a_failed_request() -> None:
    api = service_url("inference", 8000)
    before = set(ready_pods("inference"))
    change = "--set inference.replicaCount=2 --set inference.config.pollIntervalSeconds=5"
    with Traffic(api, pause_seconds=0.02) as traffic:
        started = time.monotonic()
        make("deploy", timeout=1200, HELM_ARGS=f"{change} --set inference.podDisruptionBudget.enabled=true")
        timed("make deploy (values change: 2 replicas, PDB, poll interval)", started)
        wait_until(
            "2 new Ready replicas",
            lambda: len(ready_pods("inference")) == 2 and not before & set(ready_pods("inference")),
            300,
        )
        time.sleep(3)
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.versions) == {"1"}, set(traffic.versions)
    assert len(traffic.versions) > 20
    pdb = kubectl_json("get", "pdb", f"{RELEASE}-inference")
    assert pdb["status"]["currentHealthy"] >= pdb["status"]["desiredHealthy"] == 1


def test_a_better_run_swaps_every_replica_under_traffic() -> None:
    api = service_url("inference", 8000)
    with Traffic(api, pause_seconds=0.02) as traffic:
        started = time.monotonic()
        train = make("train", timeout=1800)
        assert "training Job succeeded" in train.stdout, train.stdout[-3000:]
        wait_until("every replica serves v2", lambda: set(replica_versions().values()) == {"2"}, 120)
        timed("better run trained and swapped", started)
        time.sleep(2)
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.versions) <= {"1", "2"}, set(traffic.versions)
    assert "2" in traffic.versions
    assert len(replica_versions()) == 2


def test_rollback_moves_every_replica_back_to_v1() -> None:
    api = service_url("inference", 8000)
    with port_forwards(), Traffic(api, pause_seconds=0.02) as traffic:
        result = run(
            str(REPO_ROOT / ".venv" / "bin" / "sentiment-trainer"),
            "rollback",
            MLFLOW_TRACKING_URI=forwarded("mlflow", ""),
        )
        assert "champion v1" in result.stdout or "-> v" in result.stdout, result.stdout
        assert champion_version(forwarded("mlflow", "")) == "1"
        wait_until("every replica back on v1", lambda: set(replica_versions().values()) == {"1"}, 120)
    assert traffic.failures == [], traffic.failures[:5]


def test_deleting_the_mlflow_pod_keeps_serving_and_the_poller_recovers() -> None:
    api = service_url("inference", 8000)
    with Traffic(api, pause_seconds=0.02) as traffic:
        (mlflow_pod,) = [p["metadata"]["name"] for p in pods("mlflow")]
        kubectl("delete", "pod", mlflow_pod, "--wait=false")
        wait_until("a poll failure", lambda: _poll_failures(api) > 0, 90, 1)
        wait_until("a new MLflow pod Ready", lambda: [p for p in ready_pods("mlflow") if p != mlflow_pod], 300)
        wait_until("the poller recovered", lambda: _poll_failures(api) == 0, 120)
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.versions) == {"1"}


def _poll_failures(api: str) -> int:
    failures = {
        httpx.get(f"{api}/model-info", timeout=10).json()["poll"]["consecutive_poll_failures"] for _ in range(4)
    }
    return max(failures)


def test_deleting_postgres_during_a_training_run_leaves_no_half_registered_version() -> None:
    with port_forwards():
        before = {v["version"] for v in model_versions(forwarded("mlflow", ""))}
    train = subprocess.Popen(
        ["make", "--no-print-directory", "train"],
        cwd=REPO_ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Once the flow-run pod runs (it logs to MLflow, whose store is Postgres), take Postgres away.
        wait_until("a running flow-run pod", _running_flow_run_pod, 600)
        time.sleep(10)
        (postgres_pod,) = [p["metadata"]["name"] for p in pods("postgresql")]
        kubectl("delete", "pod", postgres_pod, "--wait=false")
        output, _ = train.communicate(timeout=1800)
    finally:
        if train.poll() is None:
            train.kill()
    wait_until("Postgres back", lambda: ready_pods("postgresql"), 300)
    wait_until("MLflow Ready again", lambda: ready_pods("mlflow"), 300)
    with port_forwards():
        mlflow_url = forwarded("mlflow", "")
        versions = model_versions(mlflow_url)
        # The run either failed cleanly (no new version) or completed; never a version without its model.
        for version in versions:
            assert version["status"] == "READY", version
        new = {v["version"] for v in versions} - before
        outcome = "completed" if train.returncode == 0 else "failed"
        print(f"[cluster-e2e] training through a Postgres restart {outcome}; new versions {sorted(new)}", flush=True)
        if train.returncode == 0:
            assert len(new) <= 1, new
        else:
            assert new == set(), (new, output[-3000:])
        assert champion_version(mlflow_url) in {v["version"] for v in versions}
    api = service_url("inference", 8000)
    assert httpx.post(f"{api}/predict", json={"text": "great"}, timeout=10).status_code == 200


def _running_flow_run_pod() -> bool:
    listed = kubectl_json("get", "pods", "-l", "prefect.io/flow-run-id")["items"]
    return any(p["status"].get("phase") == "Running" for p in listed)


def test_restarting_kubelet_and_containerd_brings_pods_and_data_back() -> None:
    api = service_url("inference", 8000)
    serving = httpx.post(f"{api}/predict", json={"text": "great"}, timeout=10).json()["model_version"]
    run("bash", "harness/local-cluster/cluster.sh", "restart-node", timeout=600)
    for component in ("postgresql", "minio", "mlflow", "prefect-server", "prefect-worker", "inference"):
        wait_until(f"{component} Ready after the node restart", lambda c=component: ready_pods(c), 600)
    wait_until(
        "the API serving the same champion",
        lambda: httpx.post(f"{api}/predict", json={"text": "great"}, timeout=10).json()["model_version"] == serving,
        300,
    )
    # PVC data survived: the dataset is still in its claim, MLflow still knows every version.
    assert "reviews.csv.gz" in read_data_claim(), "the dataset is gone from its claim"
    with port_forwards():
        assert model_versions(forwarded("mlflow", ""))


def read_data_claim() -> str:
    """`ls -l` of the dataset claim from a throw-away pod that passes the namespace's `restricted` level."""
    image = f"sentiment-trainer:{run('bash', 'scripts/charts/kind-loop.sh', 'tag').stdout.strip()}"
    container = {
        "name": "data-check",
        "image": image,
        "imagePullPolicy": "Never",
        "command": ["ls", "-l", "/data"],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
    }
    spec = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"{RELEASE}-data", "readOnly": True}}],
    }
    overrides = json.dumps({"spec": spec})
    result = kubectl(
        "run",
        "data-check",
        "--rm",
        "-i",
        "--restart=Never",
        f"--image={image}",
        f"--overrides={overrides}",
        timeout=300,
    )
    return result.stdout


def test_helm_uninstall_leaves_only_the_documented_claims_and_secrets() -> None:
    run("helm", "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m", timeout=400)
    instance = f"app.kubernetes.io/instance={RELEASE}"
    wait_until("the release's pods gone", lambda: not kubectl_json("get", "pods", "-l", instance)["items"], 300)
    leftovers = kubectl_json(
        "get",
        "deploy,statefulset,job,service,configmap,secret,serviceaccount,role,rolebinding,pdb,hpa,pvc",
        "-l",
        instance,
    )["items"]
    kept = sorted(f"{i['kind']}/{i['metadata']['name']}" for i in leftovers)
    # k8s-dev/README.md ("Uninstall"): the data and the credentials that open it stay, for the next install.
    assert kept == [
        f"PersistentVolumeClaim/data-{RELEASE}-postgresql-0",
        f"PersistentVolumeClaim/{RELEASE}-data",
        f"PersistentVolumeClaim/{RELEASE}-minio",
        f"Secret/{RELEASE}-minio",
        f"Secret/{RELEASE}-postgresql",
    ], kept
    claims = sorted(c["metadata"]["name"] for c in kubectl_json("get", "pvc")["items"])
    assert claims == sorted([f"{RELEASE}-data", f"{RELEASE}-minio", f"data-{RELEASE}-postgresql-0"]), claims
    write_timings()
