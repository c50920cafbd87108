"""The checked dashboard JSON: every panel has a Prometheus query, ids are unique, the issue's panels are there."""

import json
from pathlib import Path

from tests.charts.chartlib import REPO_ROOT

DASHBOARDS = sorted((REPO_ROOT / "observability" / "dashboards").glob("*.json"))


def load(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())


def test_dashboards_exist() -> None:
    assert DASHBOARDS


def test_every_panel_queries_a_sentiment_metric() -> None:
    for path in DASHBOARDS:
        dashboard = load(path)
        panels = dashboard["panels"]
        assert isinstance(panels, list)
        assert len({panel["id"] for panel in panels}) == len(panels), path
        for panel in panels:
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert "sentiment_" in target["expr"], panel["title"]


def test_platform_dashboard_covers_the_required_panels() -> None:
    dashboard = load(REPO_ROOT / "observability" / "dashboards" / "sentiment-platform.json")
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])  # type: ignore[union-attr]
    for metric in (
        "sentiment_http_requests_total",
        "sentiment_http_request_duration_seconds_bucket",
        "sentiment_model_call_texts_bucket",
        "sentiment_model_version_info",
        "sentiment_model_loads_total",
        "sentiment_registry_polls_total",
        "sentiment_drift_score",
    ):
        assert metric in queries, metric
