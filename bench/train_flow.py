"""Benchmark: the `sentiment-training` flow end to end on the full shared dataset, stage by stage, next to a bare
scikit-learn fit + evaluate of the same model on the same split, in the same process.

    .venv/bin/python bench/train_flow.py [--rounds 3] [--data PATH] [--output bench/results/train_flow.json]

Starts its own PostgreSQL, MinIO, MLflow (Postgres backend, artifacts proxied to MinIO) and Prefect server (Postgres
backend) in a temp dir, like the platform. Rounds interleave bare and flow runs so both see the same machine load
(the machine is shared); medians are compared. Round 1 is the cold run (no champion yet, new experiment and
registered model); later rounds are the steady state: a champion exists and is re-scored on the new split.

The bar: flow end-to-end <= 1.3 x bare fit+evaluate (steady state, medians).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "imdb" / "reviews.csv.gz"
BAR = 1.3
MODEL_NAME = "sentiment-bench"

# Flow steps -> the stages the issue asks for.
STAGES = {
    "load": ("load-data", "split-data"),
    "fit": ("train-model",),
    "evaluate": ("evaluate-model",),
    "mlflow_logging": ("log-mlflow",),
    "registration": ("register-model",),
    # fetch-champion runs concurrently with log-mlflow; only the time the flow waited for it counts here.
    "promotion": ("promote-champion", "fetch-champion-wait"),
}


def start_servers(root: Path, stack: ExitStack) -> tuple[str, str]:
    from sentiment_local.servers import (
        MLFLOW_BUCKET,
        MLFLOW_DATABASE,
        PREFECT_DATABASE,
        start_minio,
        start_mlflow,
        start_postgres,
        start_prefect_server,
    )

    postgres = start_postgres(root / "postgres" / "data")
    stack.callback(postgres.process.stop)
    postgres.create_database(MLFLOW_DATABASE)
    postgres.create_database(PREFECT_DATABASE)
    minio = start_minio(root / "minio" / "data")
    stack.callback(minio.process.stop)
    mlflow_server = start_mlflow(
        root / "mlflow",
        backend_store_uri=postgres.url(MLFLOW_DATABASE),
        artifacts_destination=f"s3://{MLFLOW_BUCKET}",
        env=minio.env(),
    )
    stack.callback(mlflow_server.process.stop)
    prefect_server = start_prefect_server(
        root / "prefect", database_url=postgres.url(PREFECT_DATABASE, driver="postgresql+asyncpg")
    )
    stack.callback(prefect_server.process.stop)
    return mlflow_server.url, f"{prefect_server.url}/api"


def bare_fit_evaluate(train: Any, test: Any, config: Any) -> dict[str, float]:
    """What a notebook would do: build the same pipeline, fit, evaluate with the library."""
    from sentiment_core.data import LABEL, TEXT
    from sentiment_core.evaluation import evaluate
    from sentiment_core.model import build_pipeline

    started = time.perf_counter()
    pipeline = build_pipeline(config).fit(train[TEXT].tolist(), train[LABEL].to_numpy())
    fitted = time.perf_counter()
    report = evaluate(pipeline, test[TEXT].tolist(), test[LABEL].tolist())
    done = time.perf_counter()
    return {"fit": fitted - started, "evaluate": done - fitted, "total": done - started, "f1": report.f1}


def flow_run(data: Path) -> dict[str, Any]:
    from sentiment_trainer.flow import training_flow

    started = time.perf_counter()
    outcome = training_flow(data_path=str(data), set_champion=True, model_name=MODEL_NAME, experiment_name=MODEL_NAME)
    total = time.perf_counter() - started
    stages = {stage: sum(outcome.timings.get(step, 0.0) for step in steps) for stage, steps in STAGES.items()}
    return {
        "total": total,
        "stages": stages,
        # Flow-run creation, task-run bookkeeping, parameter resolution, lineage: what is in no stage.
        "orchestration": total - sum(stages.values()),
        "champion_fetch_concurrent": outcome.timings.get("fetch-champion", 0.0),
        "version": outcome.version,
        "promoted": outcome.promoted,
        "reason": outcome.reason,
        "f1": outcome.metrics["f1"],
        "champion_f1_same_split": outcome.champion_f1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="bare+flow rounds (>= 2: round 1 is the cold run)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "bench" / "results" / "train_flow.json")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be >= 2")

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    root = Path(tempfile.mkdtemp(prefix="sentiment-bench-"))
    root.chmod(0o755)  # PostgreSQL runs as `postgres` when we are root
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        print(f"starting PostgreSQL, MinIO, MLflow and Prefect in {root} ...", flush=True)
        started = time.perf_counter()
        tracking_uri, prefect_api = start_servers(root, stack)
        print(f"servers up in {time.perf_counter() - started:.0f}s", flush=True)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        os.environ["PREFECT_HOME"] = str(root / "prefect-client")

        # Imports and data outside the timings: both sides start warm.
        import logging

        from prefect.settings import PREFECT_API_URL, temporary_settings

        from sentiment_core.data import load_dataset, split_dataset
        from sentiment_core.params import load_params
        from sentiment_trainer import flow as _flow  # noqa: F401  (import cost out of the first timing)

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        params = load_params(REPO_ROOT / "params.yaml")
        frame = load_dataset(args.data)
        split = split_dataset(frame, params.data.test_size, params.data.seed)
        print(f"data: {len(frame):,} reviews, {len(split.train):,} train / {len(split.test):,} test", flush=True)

        bare: list[dict[str, float]] = []
        flows: list[dict[str, Any]] = []
        stack.enter_context(temporary_settings(updates={PREFECT_API_URL: prefect_api}))
        for round_number in range(1, args.rounds + 1):
            bare.append(bare_fit_evaluate(split.train, split.test, params.model))
            print(f"round {round_number}: bare fit+evaluate {bare[-1]['total']:.2f}s", flush=True)
            flows.append(flow_run(args.data))
            stages = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in flows[-1]["stages"].items())
            print(
                f"round {round_number}: flow {flows[-1]['total']:.2f}s"
                f" ({'cold, no champion' if round_number == 1 else 'champion re-scored'}): {stages},"
                f" orchestration {flows[-1]['orchestration']:.2f}",
                flush=True,
            )
        # Send the last run logs to the Prefect API before its server stops.
        from prefect.logging.handlers import APILogHandler

        APILogHandler().flush()

    bare_median = statistics.median(run["total"] for run in bare)
    steady = flows[1:]
    steady_median = statistics.median(run["total"] for run in steady)
    ratio = steady_median / bare_median
    result = {
        "benchmark": "train_flow",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        },
        "data": {"path": str(args.data), "rows": len(frame), "train": len(split.train), "test": len(split.test)},
        "model": params.model.to_dict(),
        "rounds": args.rounds,
        "bare_fit_evaluate": {
            "runs": [_rounded(run) for run in bare],
            "median_total_s": round(bare_median, 3),
            "median_fit_s": round(statistics.median(run["fit"] for run in bare), 3),
            "median_evaluate_s": round(statistics.median(run["evaluate"] for run in bare), 3),
        },
        "flow": {
            "cold_run": _rounded(flows[0]),
            "steady_runs": [_rounded(run) for run in steady],
            "median_total_s": round(steady_median, 3),
            "median_stages_s": {
                stage: round(statistics.median(run["stages"][stage] for run in steady), 3) for stage in STAGES
            },
            "median_orchestration_s": round(statistics.median(run["orchestration"] for run in steady), 3),
        },
        "ratio_steady_flow_over_bare": round(ratio, 3),
        "ratio_cold_flow_over_bare": round(flows[0]["total"] / bare[0]["total"], 3),
        "bar": BAR,
        "passed": ratio <= BAR,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    return 0 if result["passed"] else 1


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def _print(result: dict[str, Any]) -> None:
    flow, bare = result["flow"], result["bare_fit_evaluate"]
    print()
    print(
        f"bare fit+evaluate (median of {result['rounds']}): {bare['median_total_s']:.2f}s"
        f"  (fit {bare['median_fit_s']:.2f}s, evaluate {bare['median_evaluate_s']:.2f}s)"
    )
    print(f"flow end to end, champion re-scored (median of {len(flow['steady_runs'])}): {flow['median_total_s']:.2f}s")
    for stage, seconds in flow["median_stages_s"].items():
        print(f"  {stage:<15} {seconds:6.2f}s")
    print(f"  {'orchestration':<15} {flow['median_orchestration_s']:6.2f}s  (Prefect flow/task runs, lineage, params)")
    print(
        f"flow / bare: {result['ratio_steady_flow_over_bare']:.2f}x steady, {result['ratio_cold_flow_over_bare']:.2f}x"
        f" cold (first run)  ->  bar {result['bar']}x: {'PASS' if result['passed'] else 'FAIL'}"
    )
    print(f"peak RSS {result['machine']['peak_rss_mb']} MB · load average {result['machine']['load_average_at_end']}")


if __name__ == "__main__":
    sys.exit(main())
