"""What the Kubernetes worker would submit for a flow run, rendered offline for the deploy tests.

Imported as services.trainer.tests.k8s_job_render; test tooling only (the product never renders Jobs itself).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sentiment_trainer.deployments import k8s_base_job_template


async def render_k8s_job(
    job_variables: Mapping[str, Any],
    base_template: Mapping[str, Any] | None = None,
    flow_run: Any | None = None,
    deployment: Any | None = None,
) -> dict[str, Any]:
    """The Job manifest the Kubernetes worker would submit for a run: the same two calls prefect-kubernetes makes.

    Needs a Prefect API (block and variable placeholders are resolved through it).
    """
    from uuid import uuid4

    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = dict(base_template or k8s_base_job_template())
    configuration = await KubernetesWorkerJobConfiguration.from_template_and_values(template, dict(job_variables))
    flow_run = flow_run or FlowRun(id=uuid4(), name="render-preview", flow_id=uuid4())
    configuration.prepare_for_flow_run(flow_run, deployment=deployment)
    return configuration.job_manifest


# prefect-kubernetes' manifest check insists on these two keys in the *pod* spec, where Kubernetes does not define
# them; the API server drops unknown fields (field validation "Warn", the default), so the Job it stores lacks them.
POD_SPEC_FIELDS_DROPPED_BY_API_SERVER = ("parallelism", "completions")


def as_stored_by_api_server(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest without the pod-spec keys the API server prunes: what strict schema validation should see."""
    stored = json.loads(json.dumps(manifest))
    pod_spec = stored["spec"]["template"]["spec"]
    for key in POD_SPEC_FIELDS_DROPPED_BY_API_SERVER:
        pod_spec.pop(key, None)
    return stored
