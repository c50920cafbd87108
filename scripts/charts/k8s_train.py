"""`make train`: trigger the `sentiment-training/k8s` deployment and follow its Kubernetes Job to the end.

1. Run `prefect deployment run sentiment-training/k8s` inside the worker pod (kubectl-exec through the
   kubernetes client): it already has PREFECT_API_URL, and no local port-forward is needed.
2. Wait for the Job the worker creates for that flow run (label `prefect.io/flow-run-id`).
3. Stream its pod's log, then exit 0 when the Job completed, 1 when it failed.

    python scripts/charts/k8s_train.py [--namespace mlops] [--release sentiment] [--timeout 1800] [--param C=4 ...]
    make train PARAMS="C=4 nb_alpha=1"     # the same overrides as `sentiment-trainer train --param`
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from k8s_common import (
    DEFAULT_NAMESPACE,
    DEFAULT_RELEASE,
    FLOW_RUN_LABEL,
    LOOP_ERRORS,
    WORKER_COMPONENT,
    WORKER_CONTAINER,
    LoopError,
    component_selector,
    describe_loop_error,
    fail,
    load_cluster,
    pick_ready_pod,
)
from kubernetes import client
from kubernetes.stream import stream

DEFAULT_DEPLOYMENT = "sentiment-training/k8s"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
POLL_SECONDS = 2.0


def parse_flow_run_id(output: str) -> str:
    """The flow-run id printed by `prefect deployment run` (its `UUID: …` line)."""
    labelled = re.search(rf"UUID:\s*({UUID_RE})", output, re.IGNORECASE)
    if labelled:
        return labelled.group(1).lower()
    anywhere = re.findall(UUID_RE, output, re.IGNORECASE)
    if anywhere:
        return anywhere[-1].lower()
    raise LoopError(f"could not find a flow-run id in the output of `prefect deployment run`:\n{output}")


def job_outcome(job: Any) -> str | None:
    """'succeeded' / 'failed' once the Job finished, else None (still running)."""
    status = job.status
    if status is None:
        return None
    for condition in status.conditions or []:
        if condition.status != "True":
            continue
        if condition.type == "Complete":
            return "succeeded"
        if condition.type == "Failed":
            reason = f" ({condition.reason}: {condition.message})" if condition.reason else ""
            return f"failed{reason}"
    return None


def wait_for(what: str, timeout: float, probe: Callable[[], Any]) -> Any:
    """Poll `probe` until it returns something truthy; LoopError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise LoopError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_SECONDS)


def exec_in_pod(core: Any, namespace: str, pod: str, container: str, command: list[str], timeout: float) -> str:
    """Run a command in a container; return stdout+stderr, LoopError on a non-zero exit."""
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    chunks: list[str] = []
    deadline = time.monotonic() + timeout
    while ws.is_open():
        ws.update(timeout=1)
        if ws.peek_stdout():
            chunks.append(ws.read_stdout())
        if ws.peek_stderr():
            chunks.append(ws.read_stderr())
        if time.monotonic() > deadline:
            ws.close()
            raise LoopError(f"`{' '.join(command)}` did not finish within {timeout:.0f}s")
    output = "".join(chunks)
    code = ws.returncode
    ws.close()
    if code not in (0, None):
        raise LoopError(f"`{' '.join(command)}` exited with {code} in pod {pod}:\n{output}")
    return output


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`key=value` overrides -> the flow's `overrides` parameter."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LoopError(f"--param expects key=value, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def trigger(core: Any, namespace: str, release: str, deployment: str, overrides: dict[str, str]) -> str:
    pods = core.list_namespaced_pod(namespace, label_selector=component_selector(release, WORKER_COMPONENT)).items
    worker = pick_ready_pod(pods, "Prefect worker")
    command = ["prefect", "--no-prompt", "deployment", "run", deployment]
    if overrides:
        command += ["--param", f"overrides={json.dumps(overrides)}"]
    print(f"==> {' '.join(command)}   (in pod {worker.metadata.name})", flush=True)
    output = exec_in_pod(core, namespace, worker.metadata.name, WORKER_CONTAINER, command, timeout=120)
    print(output.rstrip(), flush=True)
    return parse_flow_run_id(output)


def follow(core: Any, batch: Any, namespace: str, flow_run_id: str, timeout: float) -> str:
    selector = f"{FLOW_RUN_LABEL}={flow_run_id}"

    def find_job() -> Any:
        jobs = batch.list_namespaced_job(namespace, label_selector=selector).items
        return jobs[0] if jobs else None

    print("==> waiting for the worker to create the flow-run Job", flush=True)
    job = wait_for(f"a Job labelled {selector} (is the worker polling the pool?)", 300, find_job)
    job_name = job.metadata.name
    print(f"==> Job {job_name}", flush=True)

    def find_started_pod() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
        started = [p for p in pods if p.status and p.status.phase in {"Running", "Succeeded", "Failed"}]
        if started:
            return started[0]
        # A pod that cannot start (image missing, ...) never reaches Running: report why.
        for pod in pods:
            for cs in (pod.status.container_statuses or []) if pod.status else []:
                waiting = cs.state.waiting if cs.state else None
                if waiting and waiting.reason in {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff"}:
                    raise LoopError(f"pod {pod.metadata.name}: {waiting.reason}: {waiting.message}")
        return None

    pod = wait_for(f"the pod of Job {job_name} to start", 600, find_started_pod)
    print(f"==> logs of pod {pod.metadata.name}", flush=True)
    log = core.read_namespaced_pod_log(
        pod.metadata.name, namespace, follow=True, _preload_content=False, _request_timeout=timeout
    )
    for chunk in log.stream(4096):
        sys.stdout.write(chunk.decode("utf-8", "replace"))
        sys.stdout.flush()

    def finished() -> str | None:
        return job_outcome(batch.read_namespaced_job(job_name, namespace))

    return str(wait_for(f"Job {job_name} to finish", timeout, finished))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--release", default=DEFAULT_RELEASE)
    parser.add_argument("--deployment", default=DEFAULT_DEPLOYMENT)
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the Job")
    parser.add_argument("--param", action="append", default=[], help="training override key=value (repeatable)")
    args = parser.parse_args(argv)
    try:
        overrides = parse_params([pair for item in args.param for pair in item.split()])
        api = load_cluster(args.context)
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        flow_run_id = trigger(core, args.namespace, args.release, args.deployment, overrides)
        print(f"==> flow run {flow_run_id}", flush=True)
        outcome = follow(core, batch, args.namespace, flow_run_id, args.timeout)
    except LOOP_ERRORS as exc:
        return fail(describe_loop_error(exc))
    except KeyboardInterrupt:
        return fail("interrupted (the flow run keeps running in the cluster)")
    print(f"==> training Job {outcome}", flush=True)
    return 0 if outcome == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
