"""Every endpoint and every bad-input case, against the service under uvicorn serving a real champion.

One service for the module (started once, champion registered on the session's MLflow): each test is a few
HTTP requests, so the whole module takes seconds once the service is up.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sentiment_inference.routes.admin import sign_webhook
from sentiment_local.servers import HttpServer, start_inference
from services.inference.tests.inference_helpers import (
    BASE_ENV,
    ModelRegistry,
    SharedLogged,
    metric,
    metric_values,
    serving_version,
    wait_for,
)

ADMIN_TOKEN = "test-admin-token"
WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, shared_registry: ModelRegistry, shared_logged: SharedLogged
) -> Iterator[tuple[HttpServer, str]]:
    model_name = f"sentiment-api-{uuid.uuid4().hex[:8]}"
    version = shared_registry.register(model_name, shared_logged.good_a)
    shared_registry.promote(model_name, version)
    server = start_inference(
        tmp_path_factory.mktemp("inference-api"),
        shared_registry.tracking_uri,
        env={**BASE_ENV, "MODEL_NAME": model_name, "ADMIN_TOKEN": ADMIN_TOKEN, "WEBHOOK_SECRET": WEBHOOK_SECRET},
    )
    try:
        wait_for(lambda: serving_version(server) == version, 30, "the champion served", server)
        yield server, version
    finally:
        server.process.stop()


@pytest.fixture
def client(api: tuple[HttpServer, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api[0].url, timeout=10) as http:
        yield http


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]


# --- predictions --------------------------------------------------------------------------------------------
def test_predict_returns_sentiment_confidence_and_version(client: httpx.Client, api: tuple[HttpServer, str]) -> None:
    for text, expected in (("A wonderful, moving film. I loved it.", "positive"), ("Awful and boring.", "negative")):
        response = client.post("/predict", json={"text": text})
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"sentiment", "confidence", "model_version"}
        assert body["sentiment"] == expected
        assert 0.5 <= body["confidence"] <= 1.0
        assert body["model_version"] == api[1]
        assert response.headers["x-model-version"] == api[1]


def test_batch_gives_one_result_per_text_in_order(client: httpx.Client, api: tuple[HttpServer, str]) -> None:
    texts = ["A wonderful film.", "Terrible, a waste of time.", "Loved every minute!", "Dull and far too long."]
    response = client.post("/predict/batch", json={"texts": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == api[1] == response.headers["x-model-version"]
    assert len(body["results"]) == len(texts)
    for text, result in zip(texts, body["results"], strict=True):
        single = client.post("/predict", json={"text": text}).json()
        assert result["sentiment"] == single["sentiment"]
        assert result["confidence"] == pytest.approx(single["confidence"], abs=1e-9)
    assert [r["sentiment"] for r in body["results"]] == ["positive", "negative", "positive", "negative"]


def test_limits_are_inclusive(client: httpx.Client) -> None:
    assert client.post("/predict", json={"text": "x" * 20_000}).status_code == 200
    assert client.post("/predict/batch", json={"texts": ["good"] * 256}).status_code == 200


# --- bad input: a 4xx whose message says what to fix -------------------------------------------------------
JSON = {"content-type": "application/json"}

BAD_PREDICT: list[tuple[str, Any, dict[str, str], int, str]] = [
    ("empty text", {"text": ""}, JSON, 422, "'text' must not be empty"),
    ("whitespace text", {"text": "  \n\t "}, JSON, 422, "'text' is only whitespace"),
    ("text too long", {"text": "x" * 20_001}, JSON, 422, "20001 characters long; the maximum is 20000"),
    ("number text", {"text": 42}, JSON, 422, "'text' must be a string, got a number"),
    ("null text", {"text": None}, JSON, 422, "'text' must be a string, got null"),
    ("list text", {"text": ["a"]}, JSON, 422, "'text' must be a string, got an array"),
    ("missing field", {}, JSON, 422, "field 'text' is required"),
    ("misspelt field", {"txt": "good"}, JSON, 422, "unknown field 'txt'"),
    ("array body", ["good"], JSON, 422, "the body must be a JSON object, got an array"),
    ("string body", "good", JSON, 422, "the body must be a JSON object, got a string"),
    ("invalid json", b'{"text": "good"', JSON, 400, "the body is not valid JSON"),
    ("empty body", b"", JSON, 422, "the request body is missing"),
    (
        "not json content type",
        b'{"text": "good"}',
        {"content-type": "text/plain"},
        422,
        "Content-Type: application/json",
    ),
]

BAD_BATCH: list[tuple[str, Any, int, str]] = [
    ("empty batch", {"texts": []}, 422, "'texts' must contain at least 1 item"),
    ("batch too large", {"texts": ["good"] * 257}, 422, "'texts' has 257 items; the maximum is 256"),
    ("blank item", {"texts": ["good", " "]}, 422, "'texts.1' is only whitespace"),
    ("empty item", {"texts": ["good", ""]}, 422, "'texts.1' must not be empty"),
    ("item too long", {"texts": ["x" * 20_001]}, 422, "'texts.0' is 20001 characters long"),
    ("number item", {"texts": ["good", 3]}, 422, "'texts.1' must be a string, got a number"),
    ("string not list", {"texts": "good"}, 422, "'texts' must be a list of strings, got a string"),
    ("missing field", {"text": "good"}, 422, "field 'texts' is required"),
    ("invalid json", b"{texts: [}", 400, "the body is not valid JSON"),
]


@pytest.mark.parametrize(("case", "body", "headers", "status", "message"), BAD_PREDICT, ids=[c[0] for c in BAD_PREDICT])
def test_bad_predict_input(
    client: httpx.Client, case: str, body: Any, headers: dict[str, str], status: int, message: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/predict", content=content, headers=headers)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert message in error["message"], error
    assert error["code"] == ("invalid_json" if status == 400 else "invalid_request")


@pytest.mark.parametrize(("case", "body", "status", "message"), BAD_BATCH, ids=[c[0] for c in BAD_BATCH])
def test_bad_batch_input(client: httpx.Client, case: str, body: Any, status: int, message: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/predict/batch", content=content, headers=JSON)
    assert response.status_code == status, response.text
    assert message in error_of(response)["message"]


def test_body_over_the_size_cap_is_413_from_content_length(client: httpx.Client) -> None:
    body = json.dumps({"text": "x" * (1 << 20)}).encode()
    response = client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "body_too_large"
    assert "the maximum is 1048576 bytes" in error["message"]


def test_streamed_body_over_the_size_cap_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"texts": ["'
        for _ in range(20):
            yield b"y" * 65_536
        yield b'"]}'

    response = client.post("/predict/batch", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert "MAX_BODY_BYTES" in error_of(response)["message"]


def test_streamed_body_under_the_cap_is_served(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "a '
        yield b'wonderful film"}'

    response = client.post("/predict", content=chunks(), headers=JSON)
    assert response.status_code == 200, response.text


def test_wrong_method_and_unknown_route_get_the_uniform_error(client: httpx.Client) -> None:
    response = client.get("/predict")
    assert response.status_code == 405
    assert "use POST" in error_of(response)["message"]
    response = client.post("/nope", json={})
    assert response.status_code == 404
    assert "see /docs" in error_of(response)["message"]


# --- health, model info, docs, metrics ----------------------------------------------------------------------
def test_health_endpoints(client: httpx.Client, api: tuple[HttpServer, str]) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").json() == {"ready": True, "model_version": api[1]}
    summary = client.get("/health").json()
    assert summary["status"] == "ok"
    assert summary["ready"] is True
    assert summary["model_version"] == api[1]
    assert summary["last_poll_result"] in {"unchanged", "loaded"}


def test_model_info(client: httpx.Client, api: tuple[HttpServer, str]) -> None:
    info = client.get("/model-info").json()
    assert info["version"] == api[1]
    assert info["alias"] == "champion"
    assert info["name"].startswith("sentiment-api-")
    assert info["run_id"]
    assert 0.7 < info["metrics"]["accuracy"] <= 1.0
    assert {"f1", "precision", "recall", "roc_auc"} <= set(info["metrics"])
    assert info["lineage"]["lineage.git_commit"] == "test-commit"
    assert {"lineage.dataset_fingerprint", "lineage.params_hash"} <= set(info["lineage"])
    assert info["loaded_at"]
    assert info["poll"]["last_poll_at"]
    assert info["poll"]["last_poll_result"] in {"unchanged", "loaded"}
    assert info["poll"]["registry_champion_version"] == api[1]


def test_openapi_docs(client: httpx.Client) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    schema = client.get("/openapi.json").json()
    assert {
        "/predict",
        "/predict/batch",
        "/health",
        "/health/live",
        "/health/ready",
        "/model-info",
        "/admin/reload",
        "/metrics",
        "/webhooks/mlflow",
    } <= set(schema["paths"])
    text_schema = schema["components"]["schemas"]["PredictRequest"]["properties"]["text"]
    assert text_schema["maxLength"] == 20_000


def test_metrics(client: httpx.Client, api: tuple[HttpServer, str]) -> None:
    server, version = api
    client.post("/predict", json={"text": "great"})
    client.post("/predict/batch", json={"texts": ["great", "awful", "fine"]})
    client.post("/predict", json={"text": ""})
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    values = metric_values(server)
    names = {name for name, _ in values}
    for required in (
        "sentiment_http_requests_total",
        "sentiment_http_request_duration_seconds_bucket",
        "sentiment_predictions_total",
        "sentiment_batch_request_texts_bucket",
        "sentiment_model_call_texts_bucket",
        "sentiment_model_version_info",
        "sentiment_model_loads_total",
        "sentiment_registry_poll_failures_total",
        "sentiment_registry_last_successful_poll_timestamp_seconds",
    ):
        assert required in names, required
    assert metric(server, "sentiment_http_requests_total", route="/predict", method="POST", status="200") >= 1
    assert metric(server, "sentiment_http_requests_total", route="/predict", method="POST", status="422") >= 1
    assert metric(server, "sentiment_predictions_total", sentiment="positive") >= 1
    assert metric(server, "sentiment_predictions_total", sentiment="negative") >= 1
    labels = {"name": api[0].env["MODEL_NAME"], "version": version, "alias": "champion"}
    assert metric(server, "sentiment_model_version_info", **labels) == 1
    assert metric(server, "sentiment_model_loads_total", result="ok") >= 1
    assert ("sentiment_model_loads_total", (("result", "rejected"),)) in values
    assert ("sentiment_model_loads_total", (("result", "failed"),)) in values
    # Sub-millisecond buckets exist, so fast routes are not all lumped into the first bucket.
    buckets = [labels for name, labels in values if name == "sentiment_http_request_duration_seconds_bucket"]
    assert any(dict(b)["le"] == "0.00025" for b in buckets)
    assert metric(server, "sentiment_registry_last_successful_poll_timestamp_seconds") > time.time() - 60


# --- admin reload and webhook -------------------------------------------------------------------------------
def test_admin_reload_needs_the_token(client: httpx.Client, api: tuple[HttpServer, str]) -> None:
    response = client.post("/admin/reload")
    assert response.status_code == 401
    assert "Authorization: Bearer" in error_of(response)["message"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = client.post("/admin/reload", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert error_of(response)["message"] == "wrong admin token"
    response = client.post("/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == "unchanged"
    assert body["serving_version"] == api[1]


def _signed(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    delivery = str(uuid.uuid4())
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "content-type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign_webhook(secret, delivery, stamp, body),
    }


def test_webhook_verifies_the_signature_and_nudges_the_poller(
    client: httpx.Client, api: tuple[HttpServer, str]
) -> None:
    body = json.dumps(
        {"entity": "model_version_alias", "action": "created", "data": {"name": api[0].env["MODEL_NAME"]}}
    ).encode()
    polls = metric(api[0], "sentiment_registry_polls_total", outcome="unchanged")
    response = client.post("/webhooks/mlflow", content=body, headers=_signed(body))
    assert response.status_code == 202
    assert response.json()["accepted"] is True
    wait_for(lambda: metric(api[0], "sentiment_registry_polls_total", outcome="unchanged") > polls, 5, "a nudged poll")

    for headers, message in (
        (_signed(body, secret="wrong"), "signature does not match"),
        (_signed(body, timestamp=int(time.time()) - 3600), "old"),
        ({"content-type": "application/json"}, "missing webhook signature headers"),
    ):
        response = client.post("/webhooks/mlflow", content=body, headers=headers)
        assert response.status_code == 401
        assert message in error_of(response)["message"]
    other = json.dumps({"data": {"name": "another-model"}}).encode()
    response = client.post("/webhooks/mlflow", content=other, headers=_signed(other))
    assert response.status_code == 202
    assert response.json()["accepted"] is False


# --- HTTP limits of the server itself (no ingress in front); no champion needed ------------------------------
@pytest.fixture(scope="module")
def bare_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """The service under uvicorn with short read timeouts and no registry (it answers HTTP regardless)."""
    server = start_inference(
        tmp_path_factory.mktemp("inference-http-limits"),
        "http://127.0.0.1:9",  # nothing listens: polls fail, HTTP is served anyway
        env={
            **BASE_ENV,
            "HTTP_HEADER_TIMEOUT_SECONDS": "1",
            "HTTP_BODY_TIMEOUT_SECONDS": "1",
            "HTTP_KEEPALIVE_TIMEOUT_SECONDS": "1",
            "HTTP_MAX_CONNECTIONS": "50",
        },
    )
    try:
        yield server
    finally:
        server.process.stop()


def raw_exchange(server: HttpServer, payload: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes; the answer and the seconds it took."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        started = time.perf_counter()
        with contextlib.suppress(OSError):  # the server may close while we still send
            sock.sendall(payload)
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65_536):
                answer += chunk
        return answer, time.perf_counter() - started


def error_from_raw(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, error_of(httpx.Response(status, content=body))


def test_huge_headers_are_refused_with_431_before_they_are_read(bare_server: HttpServer) -> None:
    for payload in (
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 << 20) + b"\r\n\r\n",  # one 8 MiB header
        b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n",
        b"GET /health/live?" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # the request line counts
    ):
        answer, seconds = raw_exchange(bare_server, payload)
        status, error = error_from_raw(answer)
        assert status == 431, answer[:200]
        assert error["code"] == "header_too_large"
        assert "HTTP_MAX_HEADER_BYTES" in error["message"]
        assert seconds < 2, seconds
    # Headers within the limits are served as before.
    response = httpx.get(f"{bare_server.url}/health/live", headers={f"x-{i}": "v" * 100 for i in range(50)})
    assert response.status_code == 200


def test_slow_and_silent_connections_are_closed_by_the_read_timeouts(bare_server: HttpServer) -> None:
    answer, seconds = raw_exchange(bare_server, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    status, error = error_from_raw(answer)
    assert (status, error["code"]) == (408, "request_timeout")
    assert "HTTP_HEADER_TIMEOUT_SECONDS" in error["message"]
    assert 0.8 < seconds < 3, seconds

    body_start = (
        b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"te'
    )
    answer, seconds = raw_exchange(bare_server, body_start)
    status, error = error_from_raw(answer)
    assert (status, error["code"]) == (408, "request_timeout")
    assert "HTTP_BODY_TIMEOUT_SECONDS" in error["message"]

    answer, seconds = raw_exchange(bare_server, b"")  # silent: closed without an answer
    assert answer == b""
    assert 0.8 < seconds < 3, seconds

    # Idle keep-alive: the connection is closed after HTTP_KEEPALIVE_TIMEOUT_SECONDS.
    with socket.create_connection(("127.0.0.1", bare_server.port), timeout=10) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        response = b""
        while b"\r\n\r\n" not in response:  # headers and body may come in separate segments
            response += sock.recv(65_536)
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        while len(body) < length:
            body += sock.recv(65_536)
        # Then nothing more: the server closes the idle connection (recv returns b"") well before the 10 s
        # socket timeout would raise.
        assert sock.recv(65_536) == b""


def test_connections_over_the_cap_get_503_overloaded(bare_server: HttpServer) -> None:
    held = [socket.create_connection(("127.0.0.1", bare_server.port)) for _ in range(50)]
    try:
        time.sleep(0.2)
        answer, _ = raw_exchange(bare_server, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        status, error = error_from_raw(answer)
        assert (status, error["code"]) == (503, "overloaded")
        assert b"retry-after: 1" in answer.lower()
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{bare_server.url}/health/live").status_code == 200


def test_invalid_http_gets_the_uniform_error_body(bare_server: HttpServer) -> None:
    status, error = error_from_raw(raw_exchange(bare_server, b"NOT HTTP AT ALL\r\n\r\n")[0])
    assert (status, error["code"]) == (400, "invalid_http")


def test_a_streamed_body_over_the_cap_gets_the_whole_413_message(bare_server: HttpServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(40):
            yield b"y" * 65_536
        yield b'"]}'

    response = httpx.post(f"{bare_server.url}/predict/batch", content=chunks(), headers=JSON, timeout=10)
    assert response.status_code == 413
    assert error_of(response)["message"] == (
        "the request body (streamed) is more than 1048576 bytes; the maximum is 1048576 bytes (MAX_BODY_BYTES):"
        " send less text per request"
    )
