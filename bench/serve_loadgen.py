"""A small closed-loop HTTP/1.1 load generator (asyncio, keep-alive), run as its own process by serve_bench.py.

Used where wrk is missing, and for the swap benchmark, which needs every response's send time, latency,
status and X-Model-Version header (wrk's Lua summary cannot give that cheaply). Raw sockets rather than an
HTTP client library: a Python client is the bottleneck long before a single-core server is.

    python bench/serve_loadgen.py --url http://127.0.0.1:8000/predict --bodies bodies.json \
        --connections 8 --duration 10 --out result.json [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def build_requests(url: str, bodies: list[str]) -> list[bytes]:
    parts = urlsplit(url)
    host = parts.netloc
    path = parts.path or "/"
    requests = []
    for body in bodies:
        payload = body.encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        requests.append(head.encode() + payload)
    return requests


async def read_response(reader: asyncio.StreamReader) -> tuple[int, str | None]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    version = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "x-model-version":
            version = value.strip()
    if length:
        await reader.readexactly(length)
    return status, version


async def connection(
    index: int,
    host: str,
    port: int,
    requests: list[bytes],
    deadline: float,
    records: list[tuple[float, float, int, str | None]],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = index
    try:
        while time.perf_counter() < deadline:
            request = requests[i % len(requests)]
            i += 1
            wall = time.time()
            started = time.perf_counter()
            try:
                writer.write(request)
                status, version = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError) as error:
                errors.append(repr(error))
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            records.append((wall, time.perf_counter() - started, status, version))
    finally:
        writer.close()


async def run(url: str, bodies: list[str], connections: int, duration: float) -> dict[str, Any]:
    parts = urlsplit(url)
    requests = build_requests(url, bodies)
    records: list[tuple[float, float, int, str | None]] = []
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(
            connection(i, parts.hostname or "127.0.0.1", parts.port or 80, requests, deadline, records, errors)
            for i in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "records": records, "errors": errors}


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    records = result["records"]
    latencies = sorted(latency for _, latency, _, _ in records)
    ok = sum(1 for _, _, status, _ in records if 200 <= status < 300)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "requests": len(records),
        "rps": len(records) / result["elapsed"],
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "errors": (len(records) - ok) + len(result["errors"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, type=Path, help="JSON list of request bodies (strings)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--record", action="store_true", help="also write every request (wall, latency, status)")
    args = parser.parse_args()
    bodies = json.loads(args.bodies.read_text())
    coroutine = run(args.url, bodies, args.connections, args.duration)
    try:
        import uvloop  # the client needs to be cheap per request too

        result = uvloop.run(coroutine)
    except ImportError:
        result = asyncio.run(coroutine)
    output: dict[str, Any] = {"summary": summarize(result), "socket_errors": result["errors"][:20]}
    if args.record:
        output["records"] = result["records"]
    args.out.write_text(json.dumps(output))


if __name__ == "__main__":
    main()
