"""Generate observability/dashboards/sentiment-platform.json with grafana-foundation-sdk (dashboards as code).

Edit the dashboard here, not the JSON, then run:

    python scripts/observability/build_dashboards.py          # rewrite the JSON
    python scripts/observability/build_dashboards.py --check  # exit 1 when the JSON is stale (tests/observability)

The JSON stays checked in: compose provisions it, the chart links it (files/) into a Grafana sidecar ConfigMap.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

DASHBOARD_PATH = Path(__file__).resolve().parents[2] / "observability" / "dashboards" / "sentiment-platform.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)


PREDICT = 'route=~"/predict.*"'
PANELS = (
    PanelSpec(
        "Traffic (requests/s by route)",
        "reqps",
        (("sum by (route) (rate(sentiment_http_requests_total[5m]))", "{{route}}"),),
    ),
    PanelSpec(
        "Errors (5xx ratio of /predict*)",
        "percentunit",
        (
            # `or vector(0)`: no 5xx series yet means 0 %, not "no data".
            (
                f'(sum(rate(sentiment_http_requests_total{{{PREDICT},status=~"5.."}}[5m])) or vector(0))'
                f" / clamp_min(sum(rate(sentiment_http_requests_total{{{PREDICT}}}[5m])), 1e-9)",
                "5xx ratio",
            ),
        ),
    ),
    PanelSpec(
        "/predict latency p50 / p90 / p99",
        "s",
        tuple(
            (
                f"histogram_quantile({q}, sum by (le) "
                f'(rate(sentiment_http_request_duration_seconds_bucket{{route="/predict"}}[5m])))',
                f"p{round(q * 100)}",
            )
            for q in (0.5, 0.9, 0.99)
        ),
    ),
    PanelSpec(
        "Micro-batcher: texts per model call (p50 / p99)",
        "short",
        tuple(
            (
                f"histogram_quantile({q}, sum by (le) (rate(sentiment_model_call_texts_bucket[5m])))",
                f"p{round(q * 100)}",
            )
            for q in (0.5, 0.99)
        ),
    ),
    PanelSpec(
        "Served model version",
        "short",
        (("max by (instance, version) (sentiment_model_version_info)", "{{instance}} v{{version}}"),),
    ),
    PanelSpec(
        "Model swaps (loads by result)",
        "short",
        (("sum by (result) (increase(sentiment_model_loads_total[5m]))", "{{result}}"),),
    ),
    PanelSpec(
        "Champion polls by outcome and failures",
        "short",
        (
            ("sum by (outcome) (increase(sentiment_registry_polls_total[5m]))", "{{outcome}}"),
            ("sum(increase(sentiment_registry_poll_failures_total[5m]))", "failures"),
        ),
    ),
    PanelSpec("Drift score by signal (PSI)", "short", (("max by (signal) (sentiment_drift_score)", "{{signal}}"),)),
)


def panel(spec: PanelSpec, index: int) -> timeseries.Panel:
    builder = (
        timeseries.Panel()
        .id(index + 1)
        .title(spec.title)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .grid_pos(GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2)))
    )
    for ref_id, (expr, legend) in zip("ABCDEFGH", spec.queries, strict=False):
        builder = builder.with_target(
            prometheus.Dataquery().ref_id(ref_id).expr(expr).legend_format(legend).datasource(DATASOURCE)
        )
    return builder


def build() -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard("Sentiment platform")
        .uid("sentiment-platform")
        .tags(["sentiment", "mlops"])
        .timezone("utc")
        .time("now-1h", "now")
        .refresh("30s")
        .readonly()
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .annotation(
            dashboard.AnnotationQuery()
            .name("Model swaps")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("orange")
            .expr("changes(sentiment_model_loaded_timestamp_seconds[1m]) > 0")
        )
    )
    for index, spec in enumerate(PANELS):
        board = board.with_panel(panel(spec, index))
    return board


def render() -> str:
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the JSON file is not up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DASHBOARD_PATH.is_file() or DASHBOARD_PATH.read_text() != text:
            print(f"{DASHBOARD_PATH} is stale: run python scripts/observability/build_dashboards.py", file=sys.stderr)
            return 1
        return 0
    DASHBOARD_PATH.write_text(text)
    print(DASHBOARD_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
