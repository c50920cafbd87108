"""What `make train` and `make smoke` share: cluster access, the chart's names and labels, and HTTP calls
to in-cluster Services through the API server's service proxy (no port-forward needed).

The names mirror charts/sentiment-platform (resources are `<release>-<component>`, pods carry
`app.kubernetes.io/instance=<release>` and `app.kubernetes.io/component=<component>`); the chart tests
check that they still match the rendered manifests.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import MaxRetryError

DEFAULT_NAMESPACE = os.environ.get("K8S_NAMESPACE", "mlops")
DEFAULT_RELEASE = os.environ.get("HELM_RELEASE", "sentiment")

WORKER_COMPONENT = "prefect-worker"
WORKER_CONTAINER = "prefect-worker"
INFERENCE_COMPONENT = "inference"
INFERENCE_PORT_NAME = "http"
FLOW_RUN_LABEL = "prefect.io/flow-run-id"


class LoopError(RuntimeError):
    """A failure with a message meant for the person running `make`: no traceback needed."""


def component_selector(release: str, component: str) -> str:
    """Label selector of one component's pods in a release."""
    return f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"


def component_name(release: str, component: str) -> str:
    """Name of a component's Deployment/Service (the chart's `<fullname>-<component>`)."""
    return f"{release}-{component}"


def load_cluster(context: str | None) -> Any:
    """Load the kubeconfig (current or given context) and return a configured ApiClient."""
    try:
        # KUBECONFIG is read now, not when the kubernetes package was imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None, context=context)
    except (ConfigException, FileNotFoundError) as exc:
        raise LoopError(
            f"cannot load a kubeconfig{f' context {context!r}' if context else ''}: {exc}. "
            "Run `make kind-up` first (or pass --context)."
        ) from exc
    return client.ApiClient()


def is_pod_ready(pod: Any) -> bool:
    """True when the pod is Running and its Ready condition is True."""
    status = pod.status
    if status is None or status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))


def pick_ready_pod(pods: list[Any], what: str) -> Any:
    """The first Ready pod of a list, or a LoopError naming what is missing."""
    ready = [p for p in pods if is_pod_ready(p)]
    if not ready:
        phases = ", ".join(f"{p.metadata.name}={p.status.phase if p.status else '?'}" for p in pods) or "none"
        raise LoopError(f"no Ready {what} pod (pods: {phases}). Is the release deployed? Try `make deploy`.")
    return ready[0]


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except json.JSONDecodeError as exc:
            raise LoopError(f"expected JSON, got HTTP {self.status}: {self.body[:300]!r}") from exc


def service_proxy_path(namespace: str, service: str, port_name: str, path: str) -> str:
    """API server path that proxies to `path` on a Service port."""
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port_name}/proxy/{path.lstrip('/')}"


def proxy_request(
    api_client: Any,
    method: str,
    namespace: str,
    service: str,
    port_name: str,
    path: str,
    body: Any = None,
    timeout: float = 30.0,
) -> ProxyResponse:
    """One HTTP call to an in-cluster Service through the API server (any status is returned, not raised)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = api_client.param_serialize(
        method=method,
        resource_path=service_proxy_path(namespace, service, port_name, path),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request, _request_timeout=timeout)
    data = response.read() or b""
    return ProxyResponse(status=int(response.status), body=data, headers=dict(response.headers or {}))


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


# What the loop scripts catch at the top: their own errors, the API's answers, and an unreachable cluster.
LOOP_ERRORS = (LoopError, ApiException, MaxRetryError, OSError)


def describe_loop_error(exc: BaseException) -> str:
    """One line for a human, whatever of LOOP_ERRORS went wrong."""
    if isinstance(exc, ApiException):
        return f"Kubernetes API answered {exc.status} {exc.reason}: {exc.body or ''}"
    if isinstance(exc, (MaxRetryError, OSError)) and not isinstance(exc, LoopError):
        return f"cannot reach the Kubernetes API ({exc}); is the kind cluster up (`make kind-up`)?"
    return str(exc)
