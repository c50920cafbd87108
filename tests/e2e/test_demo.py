"""`make demo` end to end: it starts everything, trains through Prefect, serves a prediction, and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentiment_core.data import load_dataset, sample_stratified
from sentiment_local.process import free_port, port_in_use

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.servers
def test_demo_up_predicts_and_stops(tmp_path: Path, imdb_path: Path) -> None:
    source = tmp_path / "reviews.csv.gz"
    sample_stratified(load_dataset(imdb_path), 3_000, seed=11).to_csv(source, index=False)
    ports = {
        "DEMO_MLFLOW_PORT": free_port(),
        "DEMO_PREFECT_PORT": free_port(),
        "DEMO_API_PORT": free_port(),
        "DEMO_PROMETHEUS_PORT": free_port(),
    }
    env = {
        **os.environ,
        **{key: str(value) for key, value in ports.items()},
        "DEMO_STATE_DIR": str(tmp_path / "state"),
        "DEMO_DATA_PATH": str(tmp_path / "data" / "reviews.csv.gz"),
        "DATA_SOURCE": str(source),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    demo = subprocess.Popen(
        [str(Path(sys.executable).parent / "sentiment-demo"), "up"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 900
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            output.append(line)
            if "example prediction" in line or time.monotonic() > deadline:
                break
        printed = "".join(output)
        assert "example prediction" in printed, printed
        assert '"sentiment": "positive"' in printed, printed
        assert '"model_version": "1"' in printed, printed
        # Prometheus starts after the prediction, before the URLs are printed.
        assert all(port_in_use(port) for name, port in ports.items() if name != "DEMO_PROMETHEUS_PORT"), printed
        # The URLs and next commands follow the prediction.
        for line in demo.stdout:
            output.append(line)
            if "make demo-down" in line:
                break
        printed = "".join(output)
        assert f"http://127.0.0.1:{ports['DEMO_API_PORT']}/docs" in printed
        assert port_in_use(ports["DEMO_PROMETHEUS_PORT"]), printed
        assert "rollback" in printed
    finally:
        os.killpg(demo.pid, signal.SIGINT) if demo.poll() is None else None
        try:
            # Read while waiting: wait() on an undrained pipe can leave the demo blocked on its own shutdown messages.
            # Up to 5 servers x 15 s SIGTERM grace each, on a loaded machine.
            demo.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            rest, _ = demo.communicate(timeout=10)
            message = f"the demo did not stop within 120 s of Ctrl-C; its output:\n{''.join(output)}{rest}"
            raise AssertionError(message) from None
    assert demo.returncode == 130
    assert not any(port_in_use(port) for port in ports.values()), "a demo server outlived Ctrl-C"
    assert not list((tmp_path / "state" / "run").glob("*.pid"))

    # `down` with nothing running says so and succeeds.
    down = subprocess.run(
        [str(Path(sys.executable).parent / "sentiment-demo"), "down"], env=env, capture_output=True, text=True
    )
    assert down.returncode == 0
    assert "nothing is running" in down.stdout
