"""Hostile-traffic benchmark: attacks of issue 12 next to a steady normal client, before and after the protections.

One run, one model, two servers in turn: "before" is the inference service as it was at BEFORE_COMMIT (its
source taken with `git archive`, run with the same venv), "after" is this checkout. Each faces, in turn:
  baseline          no attack (the machine's own noise, for comparison);
  abandoned_batches 10 heavy 1 MiB batches whose clients hang up at once, then 200 fire-and-forget 1 MiB
                    batches (sent, then the connection closed) at 20/s  (attack 1);
  huge_headers      4 clients each sending a 100 MB header, again and again (attack 2);
  slowloris         200 slowloris connections (a header line a second) and 200 silent ones (attack 3);
  nfkc_expansion    8 clients posting 20,000 x U+FDFA in a closed loop (attack 6).
The normal client (its own process) posts real reviews to /predict at a steady rate on one keep-alive
connection, with a 10 s timeout; it reports p50/p99 and errors (any non-200 or socket error). The server's
RSS is sampled during each phase (peak). The server is pinned to one core, clients to the other, as in
serve_bench.py. Everything is on 127.0.0.1 and every loop is bounded by the phase duration.
Figures go to bench/results/hostile_traffic.json. Not a test: numbers, not assertions.

    .venv/bin/python bench/hostile_traffic.py [--phase-seconds 12] [--only after]
        [--phases baseline,nfkc_expansion] [--server-env GIL_SWITCH_INTERVAL_MS=5 ...]  (A/B of one setting)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

# serve_loadgen is light; serve_bench (rss_mb, wait_http) pulls in MLflow, so it is imported where used and
# the normal client's own process starts in a fraction of a second.
from serve_loadgen import build_requests, read_response

ROOT = Path(__file__).resolve().parents[1]
# The real IMDb reviews: ../shared/data/imdb beside the clone, or $IMDB_DATA_DIR (as tests/support/servers.py).
DEFAULT_DATA = Path(os.environ.get("IMDB_DATA_DIR") or ROOT.parent / "shared" / "data" / "imdb") / "reviews.csv.gz"
DEFAULT_OUT = ROOT / "bench" / "results" / "hostile_traffic.json"
BEFORE_COMMIT = "5878581"  # the branch point of the hardening work (issue 12)
MODEL_NAME = "sentiment-hostile"
CHART_MEMORY_REQUEST_MB = 512  # charts/sentiment-platform values.yaml inference.resources.requests.memory
BAR_P99_MS = 100.0
NORMAL_RATE = 20.0  # requests per second of the normal client
NORMAL_TIMEOUT = 10.0
ATTACK_DELAY = 1.0  # the attack starts this long after the normal client; those first requests are left out
HEAVY_BODY_BYTES = 1_040_000  # just under MAX_BODY_BYTES (1 MiB): the largest batch the service accepts


def log(message: str) -> None:
    print(f"[hostile {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the normal client (its own process, so attack clients do not share its interpreter) --------------------
async def normal_client(url: str, bodies: list[str], duration: float) -> list[tuple[float, float, int]]:
    """Paced POSTs on one keep-alive connection: (offset s, latency s, status; 0 = socket error or timeout)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = build_requests(url, bodies)
    records: list[tuple[float, float, int]] = []
    started = time.perf_counter()
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    i = 0
    while (now := time.perf_counter()) - started < duration:
        began = now
        try:
            if connection is None:
                connection = await asyncio.wait_for(asyncio.open_connection(host, port), NORMAL_TIMEOUT)
            reader, writer = connection
            writer.write(requests[i % len(requests)])
            status, _ = await asyncio.wait_for(read_response(reader), NORMAL_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            status = 0
            if connection is not None:
                connection[1].close()
            connection = None
        records.append((began - started, time.perf_counter() - began, status))
        i += 1
        await asyncio.sleep(max(0.0, began + 1 / NORMAL_RATE - time.perf_counter()))
    if connection is not None:
        connection[1].close()
    return records


def summarize(records: list[tuple[float, float, int]]) -> dict[str, Any]:
    latencies = sorted(latency for _, latency, _ in records)

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1) if latencies else -1

    statuses: dict[str, int] = {}
    for _, _, status in records:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "requests": len(records),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else -1,
        "errors": sum(1 for _, _, status in records if status != 200),
        "statuses": statuses,
    }


# --- attacks (asyncio, in this process, every loop bounded by `until`) ---------------------------------------
async def _send_and_leave(host: str, port: int, payload: bytes, linger: float, until: float) -> None:
    """Open, send the whole request, close after `linger` without reading: a client that hung up."""
    loop = asyncio.get_running_loop()
    writer: asyncio.StreamWriter | None = None
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), max(0.1, until - loop.time()))
        writer.write(payload)
        await asyncio.wait_for(writer.drain(), max(0.1, until - loop.time()))
        await asyncio.sleep(linger)
    except (OSError, TimeoutError):
        pass
    finally:
        if writer is not None:
            writer.transport.abort()


Attack = Callable[[str, int, float], Awaitable[dict[str, Any]]]  # (host, port, seconds) -> what was done


async def attack_abandoned_batches(host: str, port: int, duration: float, heavy: bytes) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    until = loop.time() + duration
    await asyncio.gather(*(_send_and_leave(host, port, heavy, 0.01, until) for _ in range(10)))
    sent = 10
    tasks = []
    for _ in range(200):  # fire and forget at 20/s
        if loop.time() >= until:
            break
        tasks.append(asyncio.ensure_future(_send_and_leave(host, port, heavy, 0.0, until)))
        sent += 1
        await asyncio.sleep(1 / 20)
    await asyncio.gather(*tasks)
    return {"heavy_batches_sent": sent, "batch_bytes": len(heavy)}


async def attack_huge_headers(host: str, port: int, duration: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    until = loop.time() + duration
    chunk = b"a" * (1 << 20)
    attempts = 0
    refused = 0

    async def one_client() -> None:
        nonlocal attempts, refused
        while loop.time() < until:
            attempts += 1
            writer: asyncio.StreamWriter | None = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), until - loop.time())
                writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
                for _ in range(100):  # 100 MB, unless the server refuses it first
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), max(0.1, until - loop.time()))
                    if reader.at_eof() or loop.time() >= until:
                        break
            except (OSError, TimeoutError):
                refused += 1
            finally:
                if writer is not None:
                    writer.transport.abort()
            await asyncio.sleep(0.05)

    await asyncio.gather(*(one_client() for _ in range(4)))
    return {"attempts": attempts, "cut_off_by_server": refused}


async def attack_slowloris(host: str, port: int, duration: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    until = loop.time() + duration
    closed = {"slowloris": 0, "silent": 0}

    async def hold(kind: str) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except (OSError, TimeoutError):
            closed[kind] += 1
            return
        try:
            if kind == "slowloris":
                writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
            while loop.time() < until:
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(65_536), 1.0) == b"" or reader.at_eof():
                        closed[kind] += 1
                        return
                if kind == "slowloris":
                    writer.write(b"X-a: b\r\n")
                    await writer.drain()
        except OSError:
            closed[kind] += 1
        finally:
            writer.transport.abort()

    await asyncio.gather(*(hold(kind) for kind in ("slowloris", "silent") for _ in range(200)))
    return {
        "connections": 400,
        "held_at_end": 400 - closed["slowloris"] - closed["silent"],
        "closed_by_server": closed,
        "seconds": duration,
    }


async def attack_nfkc(host: str, port: int, duration: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    until = loop.time() + duration
    [request] = build_requests(f"http://{host}:{port}/predict", [json.dumps({"text": "\ufdfa" * 20_000})])
    statuses: dict[str, int] = {}

    async def one_client() -> None:
        connection = None
        while loop.time() < until:
            try:
                if connection is None:
                    connection = await asyncio.open_connection(host, port)
                connection[1].write(request)
                status, _ = await asyncio.wait_for(read_response(connection[0]), max(0.1, until - loop.time()))
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                status = 0
                if connection is not None:
                    connection[1].transport.abort()
                connection = None
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        if connection is not None:
            connection[1].transport.abort()

    await asyncio.gather(*(one_client() for _ in range(8)))
    return {"clients": 8, "statuses": statuses}


# --- one phase: the normal client, one attack, RSS samples --------------------------------------------------
def run_phase(
    name: str,
    server_pid: int,
    base: str,
    bodies_file: Path,
    work: Path,
    client_core: int,
    duration: float,
    attack: Attack | None,
) -> dict[str, Any]:
    from serve_bench import rss_mb

    out = work / f"normal-{name}-{time.time_ns()}.json"
    argv = [
        "taskset", "-c", str(client_core), sys.executable, __file__, "--normal-client",
        "--url", f"{base}/predict", "--bodies", str(bodies_file), "--duration", str(duration), "--out", str(out),
    ]  # fmt: skip
    load_before = os.getloadavg()
    counters_before = server_counters(base)
    cpu_before = cpu_seconds(server_pid)
    client = subprocess.Popen(argv)
    peak = rss_mb(server_pid)

    async def sample_rss() -> None:
        nonlocal peak
        while client.poll() is None:
            peak = max(peak, rss_mb(server_pid))
            await asyncio.sleep(0.5)

    async def both() -> dict[str, Any]:
        await asyncio.sleep(ATTACK_DELAY)  # the normal client is connected and steady before the attack starts
        sampler = asyncio.ensure_future(sample_rss())
        parts = urlsplit(base)
        seconds = duration - ATTACK_DELAY
        details = await attack(parts.hostname or "127.0.0.1", parts.port or 80, seconds) if attack else {}
        await sampler
        return details

    details = asyncio.run(both())
    client.wait(timeout=duration + 60)
    records = json.loads(out.read_text())
    counters_after = server_counters(base)
    return {
        "server": {
            "cpu_seconds": round(cpu_seconds(server_pid) - cpu_before, 2),
            **{name: counters_after.get(name, 0) - counters_before.get(name, 0) for name in counters_after},
        },
        "normal_client": summarize([(t, latency, status) for t, latency, status in records if t >= ATTACK_DELAY]),
        "attack": details,
        "rss_peak_mb": round(peak, 1),
        "rss_end_mb": round(rss_mb(server_pid), 1),
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }


SERVER_COUNTERS = (
    "sentiment_model_call_texts_sum",  # texts the model computed
    "sentiment_model_call_texts_count",  # model calls
    'sentiment_shed_requests_total{reason="client_gone"}',
    'sentiment_shed_requests_total{reason="overloaded"}',
    'sentiment_shed_requests_total{reason="timeout"}',
)


def server_counters(base: str) -> dict[str, float]:
    """What the server did (from its /metrics): texts computed, model calls, requests shed (after only)."""
    try:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name in SERVER_COUNTERS:
            values[name] = float(value)
    return values


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drained(base: str, limit: float = 90.0) -> float | None:
    """Seconds until a /predict answers within 0.5 s again (the backlog of the attack is gone), None if never."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        sent = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.post(f"{base}/predict", json={"text": "a fine film"}, timeout=5)
            if response.status_code == 200 and time.perf_counter() - sent < 0.5:
                return round(time.perf_counter() - started, 1)
        time.sleep(0.5)
    return None


# --- setup: a model on a throwaway MLflow, the two servers --------------------------------------------------
def register_model(work: Path, data: Path, train_rows: int) -> tuple[Any, list[str]]:
    from sentiment_core import registry
    from sentiment_core.data import load_dataset, split_dataset
    from sentiment_core.data import summarize as summarize_frame
    from sentiment_core.evaluation import evaluate
    from sentiment_core.model import build_pipeline
    from sentiment_core.params import load_params
    from sentiment_core.settings import CHAMPION_ALIAS
    from sentiment_local.process import free_port
    from sentiment_local.servers import start_mlflow

    params = load_params(ROOT / "params.yaml", {})
    split = split_dataset(load_dataset(data), params.data.test_size, params.data.seed)
    train = split.train.sample(min(train_rows, len(split.train)), random_state=1)
    mlflow = start_mlflow(
        work / "mlflow", f"sqlite:///{work / 'mlflow' / 'mlflow.db'}", str(work / "mlflow" / "artifacts"), free_port()
    )
    pipeline = build_pipeline(params.model).fit(train["text"].tolist(), train["label"].tolist())
    test_texts, test_labels = split.test["text"].tolist(), split.test["label"].tolist()
    report = evaluate(pipeline, test_texts[-2000:], test_labels[-2000:])
    lineage = registry.Lineage("bench", summarize_frame(train).fingerprint, params.model.params_hash())
    client = registry.client(mlflow.url)
    logged = registry.log_training_run(
        tracking_uri=mlflow.url,
        experiment_name="hostile-bench",
        pipeline=pipeline,
        params=params.model.to_dict(),
        report=report,
        summary=summarize_frame(train),
        lineage=lineage,
        input_example=test_texts[:2],
    )
    version = registry.register_version(client, MODEL_NAME, logged, report, lineage)
    registry.set_alias(client, MODEL_NAME, CHAMPION_ALIAS, str(version.version))
    return mlflow, test_texts[:2000]


def before_source(work: Path, commit: str) -> str:
    """PYTHONPATH serving the inference package and the library as they were at `commit` (git archive: no worktree,
    nothing registered in .git). The library too: the service of then calls the library of then (registry
    signatures have changed since)."""
    packages = ("services/inference/src", "libs/sentiment_core/src")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, *packages],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    target = work / "before"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return os.pathsep.join(str(target / package) for package in packages)


def start_server(
    kind: str, source: Path | str, mlflow_url: str, work: Path, server_core: int, extra_env: dict[str, str]
) -> tuple[Any, str]:
    from serve_bench import wait_http

    from sentiment_local.process import ManagedProcess, free_port

    port = free_port()
    process = ManagedProcess(
        name=f"inference-{kind}",
        argv=["taskset", "-c", str(server_core), sys.executable, "-m", "sentiment_inference"],
        env={
            "PYTHONPATH": str(source),  # ahead of the venv's editable installs: this exact source is served
            "MLFLOW_TRACKING_URI": mlflow_url,
            "MODEL_NAME": MODEL_NAME,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
            **extra_env,
        },
        log_path=work / f"inference-{kind}.log",
    ).start()
    base = f"http://127.0.0.1:{port}"
    wait_http(process, f"{base}/health/ready", 240, "ready")
    return process, base


def heavy_batch(texts: list[str]) -> bytes:
    """A /predict/batch request of 256 real-review texts, as close to 1 MiB as the service accepts."""
    per_text = (HEAVY_BODY_BYTES - 64) // 256 - 8
    joined = " ".join(texts)
    batch = [joined[(i * 997) % 50_000 :][:per_text] for i in range(256)]
    body = json.dumps({"texts": batch}, ensure_ascii=True)
    return build_requests("http://x/predict/batch", [body])[0]


# --- main ---------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--train-rows", type=int, default=10_000)
    parser.add_argument("--phase-seconds", type=float, default=15.0)
    parser.add_argument("--before-commit", default=BEFORE_COMMIT)
    parser.add_argument("--only", choices=("before", "after"), help="run one server only")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--phases", help="comma-separated subset of the phases (default: all)")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE", help="extra environment of both servers"
    )
    # Internal: the normal client's own process.
    parser.add_argument("--normal-client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--bodies", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.normal_client:
        records = asyncio.run(normal_client(args.url, json.loads(args.bodies.read_text()), args.duration))
        args.out.write_text(json.dumps(records))
        return

    from serve_bench import machine_record

    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    os.sched_setaffinity(0, {args.client_core})
    results: dict[str, Any] = {
        "machine": machine_record(os.getloadavg()),
        "method": {
            "phase_seconds": args.phase_seconds,
            "normal_client": f"{NORMAL_RATE:g} req/s POST /predict, real reviews, one keep-alive connection,"
            f" {NORMAL_TIMEOUT:g} s timeout, own process",
            "before": f"services/inference/src and libs/sentiment_core/src at {args.before_commit} (git archive),"
            " same venv",
            "after": "this checkout, default settings",
            "server_env": args.server_env,
            "pinning": {"server": args.server_core, "clients": args.client_core},
        },
        "bars": {
            "normal_p99_ms": f"< {BAR_P99_MS:g}",
            "normal_errors": "== 0",
            "rss_mb": f"< {CHART_MEMORY_REQUEST_MB}",
        },
        "servers": {},
    }
    processes: list[Any] = []
    try:
        log(f"work dir {work}; load average {os.getloadavg()}")
        mlflow, texts = register_model(work, args.data, args.train_rows)
        processes.append(mlflow.process)
        bodies_file = work / "normal-bodies.json"
        bodies_file.write_text(json.dumps([json.dumps({"text": text}) for text in texts[:500]]))
        heavy = heavy_batch(texts)
        sources: dict[str, Path | str] = {
            "before": before_source(work, args.before_commit),
            "after": ROOT / "services" / "inference" / "src",
        }
        kinds = [args.only] if args.only else ["before", "after"]
        attacks: dict[str, Attack | None] = {
            "baseline": None,
            "abandoned_batches": functools.partial(attack_abandoned_batches, heavy=heavy),
            "huge_headers": attack_huge_headers,
            "slowloris": attack_slowloris,
            "nfkc_expansion": attack_nfkc,
        }
        if args.phases:
            attacks = {name: attacks[name] for name in args.phases.split(",")}
        extra_env = dict(item.split("=", 1) for item in args.server_env)
        for kind in kinds:
            log(f"--- {kind} ---")
            process, base = start_server(kind, sources[kind], mlflow.url, work, args.server_core, extra_env)
            processes.append(process)
            phases: dict[str, Any] = {}
            for name, attack in attacks.items():
                log(f"{kind}: {name} …")
                phase = run_phase(
                    name, process.pid, base, bodies_file, work, args.client_core, args.phase_seconds, attack
                )
                phase["drain_s"] = drained(base)
                if phase["drain_s"] is None:  # still busy with the attack's backlog: start afresh
                    process.stop()
                    process, base = start_server(kind, sources[kind], mlflow.url, work, args.server_core, extra_env)
                    processes.append(process)
                    phase["restarted_after"] = True
                phases[name] = phase
                n = phase["normal_client"]
                log(
                    f"    normal p50 {n['p50_ms']} ms, p99 {n['p99_ms']} ms, errors {n['errors']}/{n['requests']},"
                    f" RSS peak {phase['rss_peak_mb']} MB, drained in {phase['drain_s']} s; {phase['attack']}"
                )
            process.stop()
            results["servers"][kind] = phases
    finally:
        for process in reversed(processes):
            process.stop()

    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["verdict"] = verdict(results)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"written {args.out}")
    shutil.rmtree(work, ignore_errors=True)


def verdict(results: dict[str, Any]) -> dict[str, Any]:
    after = results["servers"].get("after", {})
    out = {}
    for name, phase in after.items():
        if not isinstance(phase, dict):
            continue
        n = phase["normal_client"]
        out[name] = {
            "p99_ok": n["p99_ms"] < BAR_P99_MS,
            "errors_ok": n["errors"] == 0,
            "rss_ok": phase["rss_peak_mb"] < CHART_MEMORY_REQUEST_MB,
        }
    return out


def print_table(results: dict[str, Any]) -> None:
    header = (
        f"{'server':7} {'phase':18} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>9} {'RSS peak':>9}"
        f" {'load1':>6}"
    )
    print(header)
    print("-" * len(header))
    for kind, phases in results["servers"].items():
        for name, phase in phases.items():
            if not isinstance(phase, dict):
                continue
            n = phase["normal_client"]
            print(
                f"{kind:7} {name:18} {n['p50_ms']:8.1f} {n['p99_ms']:8.1f} {n['max_ms']:8.1f}"
                f" {n['errors']:4}/{n['requests']:<4} {phase['rss_peak_mb']:8.0f}M"
                f" {phase['load_average']['after'][0]:6.1f}"
            )


if __name__ == "__main__":
    main()
