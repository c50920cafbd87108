"""A real Prometheus (built by `make prometheus`) scrapes a real inference API; the dashboard queries answer.

The API runs without a champion here, so the panels that need a served model (version) or the drift metric
(issue 13 item 4, not emitted yet) are listed in NEEDS_CHAMPION_OR_DRIFT and only checked to be valid PromQL.
"""

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sentiment_local.servers import HttpServer, start_inference, start_prometheus
from tests.charts.chartlib import REPO_ROOT

# The Prometheus server's cold build is too slow for make test's budget: `make test-scrape` builds it and runs this.
pytestmark = pytest.mark.skipif(
    os.environ.get("SENTIMENT_PROMETHEUS_SCRAPE") != "1", reason="run through `make test-scrape`"
)

DASHBOARD = REPO_ROOT / "observability" / "dashboards" / "sentiment-platform.json"
NEEDS_CHAMPION_OR_DRIFT = {"Served model version", "Drift score by signal (PSI)", "Model swaps (loads by result)"}


@pytest.fixture
def scraped_api(tmp_path: Path, mlflow_server: HttpServer) -> Iterator[tuple[HttpServer, HttpServer]]:
    api = start_inference(
        tmp_path, mlflow_server.url, env={"MODEL_NAME": f"absent-{uuid.uuid4().hex[:8]}", "POLL_INTERVAL_SECONDS": "1"}
    )
    prometheus: HttpServer | None = None
    try:
        prometheus = start_prometheus(tmp_path / "prometheus", {"sentiment-inference": f"127.0.0.1:{api.port}"})
        yield api, prometheus
    finally:
        if prometheus is not None:
            prometheus.process.stop()
        api.process.stop()


def query(prometheus: HttpServer, expr: str) -> list[dict[str, object]]:
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def panels() -> list[dict[str, object]]:
    return json.loads(DASHBOARD.read_text())["panels"]


def test_prometheus_scrapes_the_api_and_every_panel_answers(scraped_api: tuple[HttpServer, HttpServer]) -> None:
    api, prometheus = scraped_api
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for _ in range(5):
            httpx.post(f"{api.url}/predict", json={"text": "a fine film"}, timeout=10)
        up = query(prometheus, 'up{job="sentiment-inference"}')
        answered = [
            panel["title"]
            for panel in panels()
            if panel["title"] not in NEEDS_CHAMPION_OR_DRIFT
            and all(query(prometheus, target["expr"]) for target in panel["targets"])  # type: ignore[union-attr]
        ]
        if up and up[0]["value"][1] == "1" and len(answered) == len(panels()) - len(NEEDS_CHAMPION_OR_DRIFT):  # type: ignore[index]
            break
        time.sleep(2)
    assert up, "the inference target was never scraped"
    assert up[0]["value"][1] == "1", up  # type: ignore[index]
    missing = [p["title"] for p in panels() if p["title"] not in NEEDS_CHAMPION_OR_DRIFT and p["title"] not in answered]
    assert not missing, f"panels without data: {missing}"
    for panel in panels():
        for target in panel["targets"]:  # type: ignore[union-attr]
            query(prometheus, target["expr"])  # valid PromQL (status success) even when empty
    rules = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {group["name"] for group in rules} == {"sentiment-inference", "sentiment-training"}
