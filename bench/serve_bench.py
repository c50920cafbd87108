"""Serving benchmark: the inference service against the bare pipeline and `mlflow models serve`.

One run, one model, one machine, one load generator, real review texts:
  (a) in-process single-call and batch rates of the bare pipeline (the reference);
  (b) our POST /predict at 1, 8 and 32 connections: req/s, p50, p99, errors;
  (c) `mlflow models serve` with the same registered version (--env-manager local, 1 worker);
  (d) POST /predict/batch docs/s;
  (e) swap: steady load while the champion alias moves 10 times (errors, p99 inside swap windows vs
      baseline, seconds from alias move to the first response from the new version);
  (f) service RSS with a model loaded.
Servers are pinned to one core, the load generator (wrk with a Lua script, else bench/serve_loadgen.py) to the
other. Figures are printed and written to bench/results/serve.json. Not a test: numbers, not assertions.

    .venv/bin/python bench/serve_bench.py [--param vectorizer=tfidf --param ngram_max=2] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from sentiment_core import registry
from sentiment_core.data import load_dataset, split_dataset, summarize
from sentiment_core.evaluation import evaluate
from sentiment_core.model import build_pipeline
from sentiment_core.params import load_params
from sentiment_core.settings import CHAMPION_ALIAS
from sentiment_local.process import ManagedProcess, executable, free_port, http_ok, tail
from sentiment_local.servers import start_mlflow

ROOT = Path(__file__).resolve().parents[1]
# The real IMDb reviews: ../shared/data/imdb beside the clone, or $IMDB_DATA_DIR (as tests/support/servers.py).
DEFAULT_DATA = Path(os.environ.get("IMDB_DATA_DIR") or ROOT.parent / "shared" / "data" / "imdb") / "reviews.csv.gz"
DEFAULT_OUT = ROOT / "bench" / "results" / "serve.json"
MODEL_NAME = "sentiment-bench"

# The bars of the serving issue (ratios against figures measured in this same run).
BAR_PREDICT8_VS_SINGLE = 0.6
BAR_PREDICT8_VS_MLFLOW = 2.0
BAR_PREDICT32_VS_SINGLE = 1.5
BAR_BATCH_VS_INPROCESS = 0.8
BAR_SWAP_P99_RATIO = 2.0


def log(message: str) -> None:
    print(f"[serve-bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- load generation ----------------------------------------------------------------------------------------
def lua_long_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


WRK_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\"requests\":%d,\"duration_us\":%d,\"status_errors\":%d,\"socket_errors\":%d," ..
    "\"p50_us\":%d,\"p99_us\":%d,\"mean_us\":%f}\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def write_wrk_script(path: Path, bodies: Sequence[str]) -> None:
    """POST the bodies round-robin (each wrk connection starts at its own offset)."""
    lines = ["wrk.method = 'POST'", "wrk.headers['Content-Type'] = 'application/json'", "local bodies = {"]
    lines += [f"  {lua_long_string(body)}," for body in bodies]
    lines += [
        "}",
        "local i = math.random(#bodies)",
        "request = function()",
        "  i = i % #bodies + 1",
        "  return wrk.format(nil, nil, nil, bodies[i])",
        "end",
        WRK_DONE,
    ]
    path.write_text("\n".join(lines))


def loadgen_argv(
    core: int, url: str, bodies_file: Path, connections: int, duration: float, out: Path, record: bool
) -> list[str]:
    """The async load generator, pinned to the client core (the server has the other one)."""
    argv = [
        "taskset", "-c", str(core), sys.executable, str(ROOT / "bench" / "serve_loadgen.py"),
        "--url", url, "--bodies", str(bodies_file), "--connections", str(connections),
        "--duration", str(duration), "--out", str(out),
    ]  # fmt: skip
    return [*argv, "--record"] if record else argv


class LoadGenerator:
    """Closed-loop load on the client core: wrk when installed, else serve_loadgen.py in its own process."""

    def __init__(self, work: Path, client_core: int) -> None:
        self.work = work
        self.client_core = client_core
        self.wrk = shutil.which("wrk")
        self.kind = "wrk 4 (Lua script, 1 thread)" if self.wrk else "serve_loadgen.py (asyncio, raw HTTP/1.1)"
        self._scripts: dict[str, Path] = {}

    def _files(self, name: str, bodies: Sequence[str]) -> Path:
        if name not in self._scripts:
            if self.wrk:
                path = self.work / f"{name}.lua"
                write_wrk_script(path, bodies)
            else:
                path = self.work / f"{name}.json"
                path.write_text(json.dumps(list(bodies)))
            self._scripts[name] = path
        return self._scripts[name]

    def run(self, url: str, name: str, bodies: Sequence[str], connections: int, duration: float) -> dict[str, Any]:
        files = self._files(name, bodies)
        pin = ["taskset", "-c", str(self.client_core)]
        if self.wrk:
            argv = [*pin, self.wrk, "-t1", f"-c{connections}", f"-d{duration:.0f}s", "-s", str(files), url]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
            line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
            raw = json.loads(line.removeprefix("WRKJSON "))
            seconds = raw["duration_us"] / 1e6
            return {
                "connections": connections,
                "rps": raw["requests"] / seconds,
                "p50_ms": raw["p50_us"] / 1000,
                "p99_ms": raw["p99_us"] / 1000,
                "mean_ms": raw["mean_us"] / 1000,
                "requests": raw["requests"],
                "errors": raw["status_errors"] + raw["socket_errors"],
            }
        summary = self.record(url, files, connections, duration, record=False)["summary"]
        return {"connections": connections, **summary}

    def best_of(
        self, repeats: int, url: str, name: str, bodies: Sequence[str], connections: int, duration: float
    ) -> dict[str, Any]:
        """The run with the highest rate out of `repeats` (this machine is shared: the best run is the one least
        disturbed by other work); every run's rate and p99 are kept next to it."""
        runs = [self.run(url, name, bodies, connections, duration) for _ in range(repeats)]
        best = max(runs, key=lambda run: run["rps"])
        return {**best, "runs": [{"rps": round(r["rps"], 1), "p99_ms": r["p99_ms"]} for r in runs]}

    def record(self, url: str, bodies_file: Path, connections: int, duration: float, record: bool) -> dict[str, Any]:
        out = self.work / f"loadgen-{time.time_ns()}.json"
        argv = loadgen_argv(self.client_core, url, bodies_file, connections, duration, out, record)
        subprocess.run(argv, check=True, timeout=duration + 120)
        return json.loads(out.read_text())


# --- processes ----------------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (MB)."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(child) for child in children)
    return total / 1024


def machine_record(load_avg: tuple[float, float, float]) -> dict[str, Any]:
    """What the figures were measured on; every serving benchmark writes it first (these machines are shared)."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": load_avg,
        "note": "shared 2-core machine: other work may run on either core during the measurement",
    }


def wait_http(process: ManagedProcess, url: str, timeout: float, what: str) -> None:
    process.wait_until(lambda: http_ok(url, timeout=5), timeout, what)


# --- (a) in-process reference -------------------------------------------------------------------------------
def timed_rate(call: Callable[[int], int], seconds: float) -> float:
    """Items per second of `call(i) -> items`, over `seconds` of wall time."""
    count = 0
    i = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        count += call(i)
        i += 1
    return count / (time.perf_counter() - started)


def in_process(
    pipeline: Any, texts: list[str], server_core: int, batch_size: int, seconds: float, repeats: int
) -> dict[str, Any]:
    """The bare pipeline on plain lists of strings, pinned to the server core; best of `repeats` rounds."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {server_core})
    single = 0.0
    batches: dict[str, float] = {}
    try:
        for text in texts[:50]:
            pipeline.predict_proba([text])
        for _ in range(repeats):
            rate = timed_rate(lambda i: len(pipeline.predict_proba([texts[i % len(texts)]])), seconds)
            single = max(single, rate)
            for size in sorted({32, batch_size, 256}):

                def call(i: int, size: int = size) -> int:
                    start = (i * size) % (len(texts) - size)
                    return len(pipeline.predict_proba(texts[start : start + size]))

                batches[str(size)] = max(batches.get(str(size), 0.0), timed_rate(call, seconds))
    finally:
        os.sched_setaffinity(0, previous)
    return {
        "single_calls_per_s": single,
        "single_call_ms": 1000 / single,
        "batch_docs_per_s": batches,
        "batch_size_for_bar": batch_size,
    }


# --- (e) swap benchmark -------------------------------------------------------------------------------------
def swap_benchmark(
    load: LoadGenerator,
    url: str,
    bodies_file: Path,
    client: Any,
    versions: list[str],
    moves: int,
    move_interval: float,
    connections: int,
) -> dict[str, Any]:
    """Steady load while the alias rotates over `versions` (each move is a full load: the rotation has 3
    versions and the service keeps only the previous one warm)."""
    baseline = 4.0
    duration = baseline + moves * move_interval + 2.0
    out = load.work / "swap.json"
    argv = loadgen_argv(load.client_core, url, bodies_file, connections, duration, out, record=True)
    generator = subprocess.Popen(argv)
    started = time.time()
    time.sleep(baseline)
    move_log: list[tuple[float, str]] = []
    for i in range(moves):
        target = versions[(i + 1) % len(versions)]
        moved = time.time()
        registry.set_alias(client, MODEL_NAME, CHAMPION_ALIAS, target)
        move_log.append((moved, target))
        time.sleep(max(0.0, moved + move_interval - time.time()))
    generator.wait(timeout=duration + 120)
    data = json.loads(out.read_text())
    records = data["records"]  # (wall send time, latency s, status, version)

    pickups: list[float | None] = []
    windows: list[tuple[float, float]] = []
    for moved, target in move_log:
        done = [wall + latency for wall, latency, status, version in records if version == target and wall >= moved]
        first = min(done) if done else None
        pickups.append(first - moved if first else None)
        # The swap window: from the alias move until shortly after the first response from the new model
        # (it covers detection, download, load, validation, warm-up and the swap itself).
        windows.append((moved, (first or moved + move_interval) + 0.5))

    def in_window(wall: float) -> bool:
        return any(start <= wall <= end for start, end in windows)

    warm = started + 1.0
    inside = sorted(latency for wall, latency, _, _ in records if in_window(wall))
    outside = sorted(latency for wall, latency, _, _ in records if wall >= warm and not in_window(wall))
    errors = sum(1 for _, _, status, _ in records if status != 200) + len(data["socket_errors"])
    served = {version for _, _, status, version in records if status == 200}

    def p99(values: list[float]) -> float:
        return values[min(len(values) - 1, int(0.99 * len(values)))] * 1000 if values else float("nan")

    valid = [p for p in pickups if p is not None]
    return {
        "moves": moves,
        "move_interval_s": move_interval,
        "connections": connections,
        "requests": len(records),
        "errors": errors,
        "versions_served": sorted(served),
        "unexpected_versions": sorted(served - set(versions)),
        "baseline_p99_ms": p99(outside),
        "swap_window_p99_ms": p99(inside),
        "swap_window_requests": len(inside),
        "p99_ratio": p99(inside) / p99(outside) if outside and inside else float("nan"),
        "move_to_first_new_response_s": [round(p, 3) if p is not None else None for p in pickups],
        "move_to_first_new_response_median_s": statistics.median(valid) if valid else None,
        "moves_not_picked_up": sum(p is None for p in pickups),
    }


# --- main ---------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--param", action="append", default=[], help="model override key=value (repeatable)")
    parser.add_argument("--train-rows", type=int, default=10_000)
    parser.add_argument("--texts", type=int, default=1000, help="real held-out reviews used as request bodies")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the best is reported")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per /predict/batch request")
    parser.add_argument("--swap-moves", type=int, default=10)
    parser.add_argument("--swap-interval", type=float, default=5.0)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--skip-mlflow-serve", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    overrides = dict(item.split("=", 1) for item in args.param)
    params = load_params(args.params, {f"model.{key}": value for key, value in overrides.items()})
    config = params.model
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    # Everything this script starts (MLflow, load generators) inherits the client core; the servers under
    # test are pinned to the server core explicitly.
    os.sched_setaffinity(0, {args.client_core})
    load_avg = os.getloadavg()
    log(f"work dir {work}; load average {load_avg}; model {config}")

    processes: list[ManagedProcess] = []
    results: dict[str, Any] = {
        "machine": machine_record(load_avg),
        "model": {"config": config.to_dict(), "train_rows": args.train_rows},
        "load_generator": None,
        "pinning": {"servers": args.server_core, "load_generator": args.client_core},
        "method": f"best of {args.repeats} runs of {args.duration:.0f}s per figure (in-process: best of"
        f" {args.repeats} rounds of 3s), on real held-out reviews",
    }
    try:
        # Data: train on part of the training split, requests are held-out reviews.
        split = split_dataset(load_dataset(args.data), params.data.test_size, params.data.seed)
        train = split.train.sample(min(args.train_rows, len(split.train)), random_state=1)
        train_b = split.train.sample(min(args.train_rows, len(split.train)), random_state=2)
        texts = split.test["text"].tolist()[: args.texts]
        eval_texts, eval_labels = split.test["text"].tolist()[-2000:], split.test["label"].tolist()[-2000:]

        # Registry: a dedicated MLflow (sqlite, local artifacts), three versions for the swap rotation.
        mlflow_port = free_port()
        mlflow_server = start_mlflow(
            work / "mlflow",
            f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
            str(work / "mlflow" / "artifacts"),
            mlflow_port,
        )
        processes.append(mlflow_server.process)
        client = registry.client(mlflow_server.url)
        versions = []
        for name, frame in (("A", train), ("B", train_b)):
            started = time.perf_counter()
            pipeline = build_pipeline(config).fit(frame["text"].tolist(), frame["label"].tolist())
            log(f"trained model {name} on {len(frame)} reviews in {time.perf_counter() - started:.1f}s")
            report = evaluate(pipeline, eval_texts, eval_labels)
            lineage = registry.Lineage("bench", summarize(frame).fingerprint, config.params_hash())
            logged = registry.log_training_run(
                tracking_uri=mlflow_server.url,
                experiment_name="serve-bench",
                pipeline=pipeline,
                params=config.to_dict(),
                report=report,
                summary=summarize(frame),
                lineage=lineage,
                input_example=texts[:2],
            )
            for _ in range(2 if name == "A" else 1):
                versions.append(str(registry.register_version(client, MODEL_NAME, logged, report, lineage).version))
        versions = sorted(versions, key=int)  # v1 = A, v2 = A again (re-registered), v3 = B
        registry.set_alias(client, MODEL_NAME, CHAMPION_ALIAS, versions[0])
        results["model"]["versions"] = versions
        results["model"]["accuracy"] = report.accuracy

        # (a) the bare pipeline, loaded exactly as the service loads it (pinned version, skops allow-list).
        served_pipeline = registry.load_version(client, MODEL_NAME, versions[0])
        log("(a) in-process reference …")
        results["in_process"] = reference = in_process(
            served_pipeline, texts, args.server_core, args.batch_size, seconds=3.0, repeats=args.repeats
        )
        del served_pipeline
        log(f"    single {reference['single_calls_per_s']:.0f} calls/s, batch {reference['batch_docs_per_s']}")

        load = LoadGenerator(work, args.client_core)
        results["load_generator"] = load.kind
        predict_bodies = [json.dumps({"text": text}) for text in texts]
        batch_bodies = [
            json.dumps({"texts": texts[i : i + args.batch_size]})
            for i in range(0, len(texts) - args.batch_size + 1, args.batch_size)
        ]

        # (b) our service, one worker pinned to the server core.
        port = free_port()
        service = ManagedProcess(
            name="inference",
            argv=["taskset", "-c", str(args.server_core), executable("sentiment-inference")],
            env={
                "MLFLOW_TRACKING_URI": mlflow_server.url,
                "MODEL_NAME": MODEL_NAME,
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "POLL_INTERVAL_SECONDS": "1",
                "LOG_LEVEL": "WARNING",
            },
            log_path=work / "inference.log",
        ).start()
        processes.append(service)
        base = f"http://127.0.0.1:{port}"
        wait_http(service, f"{base}/health/ready", 180, "ready")
        load.run(f"{base}/predict", "predict", predict_bodies, 8, 3)  # warm-up, discarded
        results["predict"] = {}
        for connections in (1, 8, 32):
            log(f"(b) /predict at {connections} connections …")
            figures = load.best_of(
                args.repeats, f"{base}/predict", "predict", predict_bodies, connections, args.duration
            )
            results["predict"][str(connections)] = figures
            log(f"    {figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms")
        metrics_text = httpx.get(f"{base}/metrics", timeout=10).text
        results["predict"]["model_call_texts_mean"] = _mean_batch(metrics_text)

        # (d) /predict/batch
        log(f"(d) /predict/batch ({args.batch_size} texts per request) …")
        figures = load.best_of(args.repeats, f"{base}/predict/batch", "batch", batch_bodies, 2, args.duration)
        figures["docs_per_s"] = figures["rps"] * args.batch_size
        results["predict_batch"] = figures
        log(f"    {figures['docs_per_s']:.0f} docs/s")

        # (f) RSS with a model loaded (after serving load, so warm caches are counted)
        results["rss_mb"] = {"service": rss_mb(service.pid)}

        # (e) swap under load
        log(f"(e) swap: {args.swap_moves} alias moves under load …")
        bodies_file = work / "predict-bodies.json"
        bodies_file.write_text(json.dumps(predict_bodies))
        results["swap"] = swap = swap_benchmark(
            load, f"{base}/predict", bodies_file, client, versions, args.swap_moves, args.swap_interval, 8
        )
        log(
            f"    errors {swap['errors']}, p99 baseline {swap['baseline_p99_ms']:.1f} ms, in swap windows"
            f" {swap['swap_window_p99_ms']:.1f} ms, move->first response {swap['move_to_first_new_response_s']}"
        )
        results["rss_mb"]["service_after_swaps"] = rss_mb(service.pid)
        service.stop()

        # (c) mlflow models serve, same version, one worker pinned to the server core.
        if not args.skip_mlflow_serve:
            log("(c) mlflow models serve …")
            registry.set_alias(client, MODEL_NAME, CHAMPION_ALIAS, versions[0])
            serve_port = free_port()
            reference_server = ManagedProcess(
                name="mlflow-models-serve",
                argv=[
                    "taskset",
                    "-c",
                    str(args.server_core),
                    executable("mlflow"),
                    "models",
                    "serve",
                    "-m",
                    f"models:/{MODEL_NAME}/{versions[0]}",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(serve_port),
                    "-w",
                    "1",
                ],
                env={
                    "MLFLOW_TRACKING_URI": mlflow_server.url,
                    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                    "MLFLOW_DISABLE_TELEMETRY": "true",
                },
                log_path=work / "mlflow-serve.log",
            ).start()
            processes.append(reference_server)
            serve_base = f"http://127.0.0.1:{serve_port}"
            wait_http(reference_server, f"{serve_base}/ping", 240, "serving")
            serve_bodies = [json.dumps({"dataframe_records": [{"text": text}]}) for text in texts]
            probe = httpx.post(
                f"{serve_base}/invocations", content=serve_bodies[0], headers={"content-type": "application/json"}
            )
            probe.raise_for_status()
            load.run(f"{serve_base}/invocations", "serve", serve_bodies, 8, 3)  # warm-up
            results["mlflow_models_serve"] = {}
            for connections in (1, 8):
                figures = load.best_of(
                    args.repeats, f"{serve_base}/invocations", "serve", serve_bodies, connections, args.duration
                )
                results["mlflow_models_serve"][str(connections)] = figures
                log(f"    {connections} conn: {figures['rps']:.0f} req/s, p99 {figures['p99_ms']:.1f} ms")
            results["rss_mb"]["mlflow_models_serve"] = rss_mb(reference_server.pid)
            reference_server.stop()
    except Exception:
        for process in processes:
            log(f"--- {process.name} log tail ---\n{tail(process.log_path, 30)}")
        raise
    finally:
        for process in reversed(processes):
            process.stop()

    results["bars"] = bars(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    print(json.dumps(results["bars"], indent=2, default=_json_default))
    log(f"written {args.out}")
    shutil.rmtree(work, ignore_errors=True)


def _mean_batch(metrics_text: str) -> float | None:
    values = {}
    for line in metrics_text.splitlines():
        if line.startswith(("sentiment_model_call_texts_sum", "sentiment_model_call_texts_count")):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    count = values.get("sentiment_model_call_texts_count")
    return values["sentiment_model_call_texts_sum"] / count if count else None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def bars(results: dict[str, Any]) -> dict[str, Any]:
    single = results["in_process"]["single_calls_per_s"]
    batch_reference = results["in_process"]["batch_docs_per_s"][str(results["in_process"]["batch_size_for_bar"])]
    p8 = results["predict"]["8"]
    p32 = results["predict"]["32"]
    out: dict[str, Any] = {
        "predict8_vs_in_process_single": {
            "value": p8["rps"] / single,
            "bar": f">= {BAR_PREDICT8_VS_SINGLE}",
            "met": p8["rps"] / single >= BAR_PREDICT8_VS_SINGLE,
        },
        "predict32_vs_in_process_single": {
            "value": p32["rps"] / single,
            "bar": f">= {BAR_PREDICT32_VS_SINGLE}",
            "met": p32["rps"] / single >= BAR_PREDICT32_VS_SINGLE,
        },
        "batch_vs_in_process_batch": {
            "value": results["predict_batch"]["docs_per_s"] / batch_reference,
            "bar": f">= {BAR_BATCH_VS_INPROCESS}",
            "met": results["predict_batch"]["docs_per_s"] / batch_reference >= BAR_BATCH_VS_INPROCESS,
        },
        "swap_errors": {"value": results["swap"]["errors"], "bar": "== 0", "met": results["swap"]["errors"] == 0},
        "swap_p99_ratio": {
            "value": results["swap"]["p99_ratio"],
            "bar": f"<= {BAR_SWAP_P99_RATIO}",
            "met": results["swap"]["p99_ratio"] <= BAR_SWAP_P99_RATIO,
        },
    }
    serve = results.get("mlflow_models_serve", {}).get("8")
    if serve:
        out["predict8_vs_mlflow_serve"] = {
            "value": p8["rps"] / serve["rps"],
            "bar": f">= {BAR_PREDICT8_VS_MLFLOW}",
            "met": p8["rps"] / serve["rps"] >= BAR_PREDICT8_VS_MLFLOW,
        }
        out["predict8_p99_vs_mlflow_serve_p99"] = {
            "value": f"{p8['p99_ms']:.1f} ms vs {serve['p99_ms']:.1f} ms",
            "bar": "lower",
            "met": p8["p99_ms"] < serve["p99_ms"],
        }
    return out


if __name__ == "__main__":
    main()
