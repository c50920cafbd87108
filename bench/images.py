"""Image sizes and cold-start times (container start -> healthy) of the platform's images.

    eval "$(harness/container-engine/engine.sh env)"      # or any Docker engine with the images built
    .venv/bin/python bench/images.py [--repeats 3] [--out bench/results/images.json]

Each container starts fresh (no volume, no state) with the healthcheck its compose service uses, probed every
0.5 s, so "healthy" is seen within half a second of being true. Our three images plus, for context, the base
images (on this machine the stand-ins of harness/stand-in-images: their figures are not upstream's).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "images.json"


@dataclass(frozen=True)
class Case:
    name: str
    image: str
    run_args: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    health: tuple[str, ...] = ()  # empty = the image's own HEALTHCHECK


PY_GET = "import urllib.request; urllib.request.urlopen('{}', timeout=4)"
CASES = (
    Case("inference", "sentiment-inference:dev"),
    Case("mlflow", "sentiment-mlflow:dev"),
    Case(
        "prefect-server (trainer image)",
        "sentiment-trainer:dev",
        command=("prefect", "server", "start", "--host", "0.0.0.0", "--port", "4200"),  # noqa: S104
        health=("python", "-c", PY_GET.format("http://127.0.0.1:4200/api/health")),
    ),
    Case(
        "postgres",
        "postgres:17.6-bookworm",
        run_args=("--env", "POSTGRES_PASSWORD=bench-password"),
        health=("pg_isready", "-h", "127.0.0.1", "-p", "5432"),
    ),
    Case(
        "minio",
        "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
        run_args=("--env", "MINIO_ROOT_USER=bench", "--env", "MINIO_ROOT_PASSWORD=bench-password"),
        command=("server", "/data", "--address", ":9000", "--console-address", ":9001"),
        health=("mc", "ready", "local"),
    ),
)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=300).stdout.strip()


def image_size_mb(image: str) -> float:
    return int(docker("image", "inspect", "--format", "{{.Size}}", image)) / 1e6


def cold_start_seconds(case: Case, timeout: float = 300) -> float:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    health = ["--health-interval", "0.5s", "--health-start-period", "0s", "--health-retries", "1000"]
    if case.health:
        health += ["--health-cmd", subprocess.list2cmdline(case.health)]
    try:
        docker("create", "--name", name, *health, *case.run_args, case.image, *case.command)
        started = time.perf_counter()
        docker("start", name)
        while time.perf_counter() - started < timeout:
            state = docker("inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", name)
            if state.endswith(" healthy"):
                return time.perf_counter() - started
            if state.startswith("exited"):
                raise RuntimeError(f"{case.name} exited: {docker('logs', name)[-500:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{case.name} not healthy after {timeout:.0f}s")
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for case in CASES:
        times = [cold_start_seconds(case) for _ in range(args.repeats)]
        row = {
            **{k: v for k, v in asdict(case).items() if k in ("name", "image")},
            "size_mb": round(image_size_mb(case.image), 1),
            "cold_start_s": {
                "median": round(statistics.median(times), 2),
                "min": round(min(times), 2),
                "max": round(max(times), 2),
                "runs": [round(t, 2) for t in times],
            },
        }
        rows.append(row)
        median = row["cold_start_s"]["median"]
        print(f"{case.name:<32} {row['size_mb']:>8.1f} MB   start->healthy median {median:6.2f} s")
    engine = docker("version", "--format", "{{.Server.Version}}")
    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"engine": engine, "machine": platform.machine(), "load_average_at_end": load, "images": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
