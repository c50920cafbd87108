"""`make smoke`: wait until the inference service serves a champion, then classify two reviews.

Talks to the inference Service through the API server's service proxy (no port-forward):
1. poll `GET /health/ready` until it names a model version (a validated champion is loaded; `make train` makes one),
2. `POST /predict` a clearly positive and a clearly negative review and check the answers.

    python scripts/charts/k8s_smoke.py [--namespace mlops] [--release sentiment] [--timeout 600]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from k8s_common import (
    DEFAULT_NAMESPACE,
    DEFAULT_RELEASE,
    INFERENCE_COMPONENT,
    INFERENCE_PORT_NAME,
    LOOP_ERRORS,
    LoopError,
    ProxyResponse,
    component_name,
    describe_loop_error,
    fail,
    load_cluster,
    proxy_request,
)
from kubernetes.client.exceptions import ApiException

POLL_SECONDS = 5.0
SAMPLES: dict[str, str] = {
    "positive": "A wonderful film: brilliant acting, a moving story and a superb score. I loved every minute.",
    "negative": "Dull, predictable and far too long. The worst film I have seen this year, a waste of time.",
}
SENTIMENTS = {"positive", "negative"}


def check_prediction(response: ProxyResponse, expected: str) -> dict[str, Any]:
    """Validate one /predict answer; LoopError with the body when it is wrong."""
    if response.status != 200:
        raise LoopError(f"POST /predict answered {response.status}: {response.body[:300]!r}")
    body = response.json()
    if not isinstance(body, dict) or body.get("sentiment") not in SENTIMENTS:
        raise LoopError(f"POST /predict returned an unexpected body: {body!r}")
    confidence = body.get("confidence")
    if not isinstance(confidence, int | float) or not 0.0 <= float(confidence) <= 1.0:
        raise LoopError(f"POST /predict returned an invalid confidence: {body!r}")
    if not body.get("model_version"):
        raise LoopError(f"POST /predict did not say which model version answered: {body!r}")
    if body["sentiment"] != expected:
        raise LoopError(f"the champion classified a clearly {expected} review as {body['sentiment']}: {body!r}")
    return body


def wait_until_ready(api: Any, namespace: str, service: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    print(f"==> waiting up to {timeout:.0f}s for {service} to serve a champion (GET /health/ready)", flush=True)
    while True:
        try:
            response = proxy_request(api, "GET", namespace, service, INFERENCE_PORT_NAME, "health/ready")
            body = response.json() if response.status == 200 else None
            # Ready without a model_version means "the registry has no champion yet": keep waiting.
            if isinstance(body, dict) and body.get("model_version"):
                return body
            last = f"HTTP {response.status} {response.body[:200]!r}"
        except ApiException as exc:
            last = f"API {exc.status} {exc.reason}"
        if time.monotonic() > deadline:
            raise LoopError(
                f"{service} has no champion after {timeout:.0f}s (last answer: {last}). "
                "Train one with `make train`, then re-run `make smoke`."
            )
        time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
    parser.add_argument("--release", default=DEFAULT_RELEASE)
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for a champion")
    args = parser.parse_args(argv)
    service = component_name(args.release, INFERENCE_COMPONENT)
    try:
        api = load_cluster(args.context)
        ready = wait_until_ready(api, args.namespace, service, args.timeout)
        print(f"==> ready: {ready}", flush=True)
        for expected, text in SAMPLES.items():
            response = proxy_request(
                api, "POST", args.namespace, service, INFERENCE_PORT_NAME, "predict", body={"text": text}
            )
            body = check_prediction(response, expected)
            print(f"==> POST /predict {text[:40]!r}... -> {body}", flush=True)
    except LOOP_ERRORS as exc:
        return fail(describe_loop_error(exc))
    print("==> smoke test passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
