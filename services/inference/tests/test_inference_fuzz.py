"""Fuzz the live service from its own OpenAPI schema (schemathesis): whatever is sent, never a 5xx.

The service runs with WORKERS=2 (each worker process polls and loads the champion on its own) and no admin
token or webhook secret, so those operations must answer their documented 403, not fail.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sentiment_local.servers import HttpServer, start_inference
from services.inference.tests.inference_helpers import BASE_ENV, ModelRegistry, SharedLogged, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_service(
    tmp_path_factory: pytest.TempPathFactory, shared_registry: ModelRegistry, shared_logged: SharedLogged
) -> Iterator[HttpServer]:
    model_name = f"sentiment-fuzz-{uuid.uuid4().hex[:8]}"
    version = shared_registry.register(model_name, shared_logged.good_a)
    shared_registry.promote(model_name, version)
    server = start_inference(
        tmp_path_factory.mktemp("inference-fuzz"),
        shared_registry.tracking_uri,
        env={
            **BASE_ENV,
            "MODEL_NAME": model_name,
            "WORKERS": "2",
            "ADMIN_TOKEN": "",
            "WEBHOOK_SECRET": "",
            "LOG_FORMAT": "json",
        },
    )
    try:
        # New connection per probe, so both workers get asked; both must have loaded the champion.
        def all_ready() -> bool:
            return all(httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 200 for _ in range(12))

        wait_for(all_ready, 60, "both workers ready", server)
        yield server
    finally:
        server.process.stop()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_no_input_makes_the_service_fail(fuzz_service: HttpServer) -> None:
    """Schema-valid and schema-violating requests for every operation (30 each, derandomized): no 5xx, and
    every answer is documented (status code, content type and body schema)."""
    schema = schemathesis.openapi.from_url(f"{fuzz_service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    statuses: Counter[int] = Counter()
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        # An inner @given per operation: bounded examples each, and a failure names its operation.
        @given(case=strategy)
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(checks=CHECKS, timeout=30)
            statuses[response.status_code] += 1

        try:
            check()
        except Exception as error:
            raise AssertionError(f"{operation.label}: {error}") from error
    print(f"fuzz: {sum(statuses.values())} requests, status codes {dict(sorted(statuses.items()))}")
    assert sum(statuses.values()) >= 100
    assert not [status for status in statuses if status >= 500]
    assert statuses[200] > 0
    assert statuses[422] > 0


def test_json_logs_from_every_worker(fuzz_service: HttpServer) -> None:
    """LOG_FORMAT=json: one JSON object per line, swaps logged as structured events by both workers."""
    entries = []
    for line in fuzz_service.process.log_path.read_text().splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    swaps = [entry for entry in entries if entry.get("event") == "model_swapped"]
    assert len(swaps) >= 2, entries[-10:]
    assert {"time", "level", "logger", "message", "version"} <= set(swaps[0])
    assert any(entry["logger"].startswith("uvicorn") for entry in entries)
