"""Drift tracking overhead: POST /predict throughput with drift tracking off and on, in one run.

One model (trained on part of the training split, logged with its drift reference profile) on a throwaway MLflow;
three services pinned to the same server core, started side by side and loaded in turn (off, on, on-every-text,
repeated, so machine noise spreads over all three):
  - off: DRIFT_ENABLED=false (no recording, no collector);
  - on: the defaults (every text recorded; at most DRIFT_MAX_TEXTS_PER_SECOND=25 featurised per second);
  - on-every-text: DRIFT_MAX_TEXTS_PER_SECOND=1e6, every text featurised (the cost the budget avoids).
The load generator (serve_bench's, on the client core) replays real held-out reviews. After the runs, /drift of
each tracking service shows what its window holds. Figures are printed and written to
bench/results/drift_overhead.json. Not a test: numbers, not assertions.

    .venv/bin/python bench/drift_overhead.py [--duration 8] [--repeats 3] [--connections 1 8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# bench/ is a folder of scripts: serve_bench sits beside this one (sys.path[0] when run as a script).
from serve_bench import DEFAULT_DATA, LoadGenerator, log, machine_record, wait_http

from sentiment_core import registry
from sentiment_core.data import load_dataset, split_dataset, summarize
from sentiment_core.drift import build_reference
from sentiment_core.evaluation import evaluate
from sentiment_core.model import build_pipeline
from sentiment_core.params import load_params
from sentiment_core.settings import CHAMPION_ALIAS
from sentiment_local.process import ManagedProcess, executable, free_port, tail
from sentiment_local.servers import start_mlflow

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "drift_overhead.json"
MODEL_NAME = "sentiment-drift-bench"
VARIANTS: dict[str, dict[str, str]] = {
    "off": {"DRIFT_ENABLED": "false"},
    "on": {"DRIFT_ENABLED": "true"},
    "on_every_text": {"DRIFT_ENABLED": "true", "DRIFT_MAX_TEXTS_PER_SECOND": "1000000"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--train-rows", type=int, default=10_000)
    parser.add_argument("--texts", type=int, default=1000, help="real held-out reviews used as request bodies")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the variants; the best run is reported")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    params = load_params(args.params, {})
    config = params.model
    work = Path(tempfile.mkdtemp(prefix="drift-bench-"))
    os.sched_setaffinity(0, {args.client_core})
    load_avg = os.getloadavg()
    log(f"work dir {work}; load average {load_avg}")
    results: dict[str, Any] = {
        "machine": machine_record(load_avg),
        "model": {"config": config.to_dict(), "train_rows": args.train_rows},
        "variants": VARIANTS,
        "note_on_scores": "serve_loadgen.py connection i replays the bodies from offset i, so at 8 connections the"
        " last 1000 requests hold ~130 distinct reviews, each ~8 times: the window's PSI then carries the noise of"
        " ~130 texts; offline, 1000 distinct held-out reviews score 0.01-0.02 on text_length and unseen_tokens.",
        "method": f"{args.repeats} rounds over the variants, {args.duration:.0f}s per run; best run per variant and"
        " connection count (every run kept); real held-out reviews, one per request",
    }
    processes: list[ManagedProcess] = []
    try:
        split = split_dataset(load_dataset(args.data), params.data.test_size, params.data.seed)
        train = split.train.sample(min(args.train_rows, len(split.train)), random_state=1)
        texts = split.test["text"].tolist()[: args.texts]
        held_out = split.test.iloc[args.texts :]

        mlflow_server = start_mlflow(
            work / "mlflow",
            f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
            str(work / "mlflow" / "artifacts"),
            free_port(),
        )
        processes.append(mlflow_server.process)
        client = registry.client(mlflow_server.url)
        pipeline = build_pipeline(config).fit(train["text"].tolist(), train["label"].tolist())
        report = evaluate(pipeline, held_out["text"].tolist(), held_out["label"].tolist())
        started = time.perf_counter()
        proba = pipeline.predict_proba(held_out["text"].tolist())[:, 1]
        reference = build_reference(train["text"].tolist(), held_out["text"].tolist(), proba)
        results["reference_build_s"] = round(time.perf_counter() - started, 2)
        logged = registry.log_training_run(
            tracking_uri=mlflow_server.url,
            experiment_name="drift-bench",
            pipeline=pipeline,
            params=config.to_dict(),
            report=report,
            summary=summarize(train),
            lineage=logged_lineage(train, config),
            input_example=texts[:2],
            drift_reference=reference,
        )
        version = str(
            registry.register_version(client, MODEL_NAME, logged, report, logged_lineage(train, config)).version
        )
        registry.set_alias(client, MODEL_NAME, CHAMPION_ALIAS, version)

        bases: dict[str, str] = {}
        services: dict[str, ManagedProcess] = {}
        for name, env in VARIANTS.items():
            port = free_port()
            service = ManagedProcess(
                name=f"inference-{name}",
                argv=["taskset", "-c", str(args.server_core), executable("sentiment-inference")],
                env={
                    "MLFLOW_TRACKING_URI": mlflow_server.url,
                    "MODEL_NAME": MODEL_NAME,
                    "HOST": "127.0.0.1",
                    "PORT": str(port),
                    # The idle services must not disturb the measured one: poll rarely.
                    "POLL_INTERVAL_SECONDS": "60",
                    "LOG_LEVEL": "WARNING",
                    **env,
                },
                log_path=work / f"inference-{name}.log",
            ).start()
            processes.append(service)
            services[name] = service
            bases[name] = f"http://127.0.0.1:{port}"
        for name, base in bases.items():
            wait_http(services[name], f"{base}/health/ready", 240, f"{name} ready")

        load = LoadGenerator(work, args.client_core)
        results["load_generator"] = load.kind
        bodies = [json.dumps({"text": text}) for text in texts]
        for base in bases.values():
            load.run(f"{base}/predict", "predict", bodies, 8, 3)  # warm-up, discarded
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in VARIANTS}
        for round_ in range(args.repeats):
            for connections in args.connections:
                for name, base in bases.items():
                    figures = load.run(f"{base}/predict", "predict", bodies, connections, args.duration)
                    runs[name].setdefault(str(connections), []).append(figures)
                    log(f"round {round_ + 1} {name:>13} {connections:>2} conn: {figures['rps']:.0f} req/s,"
                        f" p99 {figures['p99_ms']:.1f} ms")  # fmt: skip
        results["predict"] = {
            name: {
                connections: {
                    **max(figures, key=lambda run: run["rps"]),
                    "runs": [{"rps": round(run["rps"], 1), "p99_ms": run["p99_ms"]} for run in figures],
                }
                for connections, figures in by_connections.items()
            }
            for name, by_connections in runs.items()
        }
        results["on_vs_off"] = {
            name: {
                connections: round(results["predict"][name][connections]["rps"] / off["rps"], 3)
                for connections, off in results["predict"]["off"].items()
            }
            for name in VARIANTS
            if name != "off"
        }
        # Medians too: on a shared machine one disturbed run can decide a best-of comparison.
        results["on_vs_off_median"] = {
            name: {
                connections: round(
                    statistics.median(run["rps"] for run in runs[name][connections])
                    / statistics.median(run["rps"] for run in runs["off"][connections]),
                    3,
                )
                for connections in runs["off"]
            }
            for name in VARIANTS
            if name != "off"
        }
        results["drift_after_runs"] = {
            name: _drift_summary(httpx.get(f"{base}/drift", timeout=60).json()) for name, base in bases.items()
        }
    except Exception:
        for process in processes:
            log(f"--- {process.name} log tail ---\n{tail(process.log_path, 30)}")
        raise
    finally:
        for process in reversed(processes):
            process.stop()
    results["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    summary = {key: results[key] for key in ("on_vs_off", "on_vs_off_median", "drift_after_runs")}
    print(json.dumps(summary, indent=2))
    log(f"written {args.out}")
    shutil.rmtree(work, ignore_errors=True)


def logged_lineage(train: Any, config: Any) -> registry.Lineage:
    return registry.Lineage("bench", summarize(train).fingerprint, config.params_hash())


def _drift_summary(body: dict[str, Any]) -> dict[str, Any]:
    signals = {name: signal.get("score") for name, signal in body.get("signals", {}).items()}
    return {"status": body["status"], "window": body.get("window"), "scores": signals}


if __name__ == "__main__":
    main()
