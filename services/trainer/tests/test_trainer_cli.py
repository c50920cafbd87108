"""The `sentiment-trainer` CLI: the happy path on real servers; error paths are one line, exit != 0, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentiment_local.process import free_port
from sentiment_trainer.cli import app

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _assert_one_line_error(code: int, stdout: str, stderr: str, expected: str) -> None:
    assert code != 0
    assert "Traceback" not in stdout + stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    assert expected in lines[0], lines[0]


@pytest.mark.slow
def test_train_then_inspect_move_and_roll_back(
    trainer_data_with_test: Path, tracking_uri: str, prefect_api: str, model_name: str
) -> None:
    # The dataset has its independent test file beside it (test.csv.gz), as `prepare` lays them out.
    trainer_data = trainer_data_with_test
    common = ["--data", str(trainer_data), "--model-name", model_name, "--experiment", model_name]
    metrics_file = trainer_data.parent / "reports" / f"{model_name}.json"
    code, out, err = _invoke(
        "train",
        "--champion",
        *common,
        "--param",
        "n_features=4096",
        "-p",
        "ngram_max=1",
        "--metrics-out",
        str(metrics_file),
    )
    assert code == 0, out + err
    written = json.loads(metrics_file.read_text())
    assert written["version"] == "1"
    assert written["alias"] == "champion"
    assert 0.5 < written["f1"] <= 1.0
    assert 0.5 < written["test.f1"] <= 1.0
    assert written["test.f1"] != written["f1"]
    assert "held-out split metrics" in out
    assert "independent test file metrics" in out
    assert "model version" in out
    assert f"{model_name} v1" in out
    assert "promoted to champion" in out
    assert "no champion yet" in out
    for metric in ("accuracy", "f1", "precision", "recall", "roc_auc"):
        assert metric in out

    # Without --champion: registered, no alias moves.
    code, out, err = _invoke("train", *common, "--param", "n_features=2048", "-p", "ngram_max=1")
    assert code == 0, out + err
    assert f"{model_name} v2" in out
    assert "aliases unchanged" in out

    code, out, err = _invoke("model-info", "--model-name", model_name)
    assert code == 0, err
    assert f"{model_name} @champion" in out
    for field in ("run id", "lineage.dataset_fingerprint", "lineage.git_commit", "model.sha256", "promotion.decision"):
        assert field in out, field
    # Both exams, named apart; v1 (the champion) was scored on the test file.
    for field in ("held-out accuracy", "held-out ece", "test-file accuracy", "test-file brier", "promotion.exam"):
        assert field in out, field
    assert "no test file" not in out

    code, out, err = _invoke("set-alias", "--version", "2", "--alias", "champion", "--model-name", model_name)
    assert code == 0, err
    assert "champion -> v2 (was v1)" in out

    code, out, err = _invoke("list-versions", "--model-name", model_name)
    assert code == 0, err
    assert "test acc" in out
    assert "held acc" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()[:1].isdigit()}
    assert "champion" in rows["2"]
    assert "champion" not in rows["1"]

    code, out, err = _invoke("rollback", "--model-name", model_name)
    assert code == 0, err
    assert "champion v2 -> v1" in out


@pytest.mark.slow
def test_registry_errors_are_one_line(tracking_uri: str, model_name: str) -> None:
    _assert_one_line_error(
        *_invoke("model-info", "--model-name", model_name), f"no registered model named '{model_name}'"
    )
    _assert_one_line_error(*_invoke("list-versions", "--model-name", model_name), "no registered model named")
    _assert_one_line_error(
        *_invoke("set-alias", "--version", "3", "--alias", "champion", "--model-name", model_name),
        "no registered model named",
    )
    _assert_one_line_error(*_invoke("rollback", "--model-name", model_name), "no registered model named")
    _assert_one_line_error(*_invoke("set-alias", "--version", "x", "--alias", "champion"), "must be a version number")


@pytest.mark.slow
def test_missing_version_and_alias_are_one_line(
    trainer_data: Path, tracking_uri: str, prefect_api: str, model_name: str
) -> None:
    from sentiment_trainer.flow import training_flow

    training_flow(
        data_path=str(trainer_data), overrides={"n_features": 1024}, model_name=model_name, experiment_name=model_name
    )
    _assert_one_line_error(
        *_invoke("set-alias", "--version", "42", "--alias", "champion", "--model-name", model_name),
        f"model '{model_name}' has no version 42",
    )
    _assert_one_line_error(*_invoke("model-info", "--model-name", model_name), "has no 'champion' alias yet")
    _assert_one_line_error(*_invoke("rollback", "--model-name", model_name), "no champion to roll back")


@pytest.mark.slow
def test_a_failing_flow_run_is_one_line(one_class_data: Path, tracking_uri: str, prefect_api: str) -> None:
    """The flow fails in load-data: the CLI says why in one line; Prefect's traceback goes to its API, not here."""
    _assert_one_line_error(
        *_invoke("train", "--champion", "--data", str(one_class_data), "--model-name", "m", "--experiment", "m"),
        "both classes are needed",
    )


def test_unreachable_mlflow_answers_fast_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    for command in (["model-info"], ["list-versions"], ["rollback"], ["set-alias", "--version", "1", "--alias", "a"]):
        started = time.monotonic()
        _assert_one_line_error(*_invoke(*command, "--model-name", "m"), f"cannot reach MLflow at {uri}")
        assert time.monotonic() - started < 10, command


def test_train_and_prepare_input_errors_are_one_line(tmp_path: Path, one_class_data: Path) -> None:
    _assert_one_line_error(*_invoke("train", "--data", str(tmp_path / "missing.csv")), "dataset not found")
    _assert_one_line_error(*_invoke("train", "--param", "C"), "--param expects key=value")
    _assert_one_line_error(*_invoke("train", "--param", "nonsense=1"), "unknown model parameter")
    # Issue 12, item 11: refused while the run config is read, before MLflow, Prefect or training.
    _assert_one_line_error(
        *_invoke("train", "--param", "promotion.min_improvement=-1"), "promotion.min_improvement must be a number >= 0"
    )
    _assert_one_line_error(*_invoke("train", "-p", "nb_alpha=nan"), "model.nb_alpha must be a finite number, got nan")
    _assert_one_line_error(*_invoke("train", "-p", "data.test_size=1.5"), "data.test_size must be between 0 and 1")
    _assert_one_line_error(*_invoke("train", "-p", "promotion.min_f1=2"), "promotion.min_f1 must be a number between")
    _assert_one_line_error(*_invoke("prepare", "--source", str(tmp_path / "none.csv")), "source file not found")
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,1\n,0\n")
    _assert_one_line_error(
        *_invoke("prepare", "--source", str(bad), "--output", str(tmp_path / "out.csv.gz")), "row 2: text is missing"
    )


def test_train_with_unreachable_mlflow_fails_before_training(
    trainer_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    _assert_one_line_error(*_invoke("train", "--data", str(trainer_data)), "cannot reach MLflow")


def test_prepare_writes_a_sample(trainer_data: Path, tmp_path: Path) -> None:
    output = tmp_path / "data" / "reviews.csv.gz"
    code, out, err = _invoke("prepare", "--source", str(trainer_data), "--output", str(output), "--sample-size", "500")
    assert code == 0, err
    assert output.is_file()
    assert "500" in out
    assert "fingerprint" in out


def test_module_entry_point_errors_without_traceback(tmp_path: Path) -> None:
    """`python -m sentiment_trainer` in a real process: stderr is the one line, nothing else."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}
    result = subprocess.run(
        [sys.executable, "-m", "sentiment_trainer", "list-versions", "--model-name", "m"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    _assert_one_line_error(result.returncode, result.stdout, result.stderr, "cannot reach MLflow")


@pytest.mark.slow
def test_too_small_a_file_fails_naming_it_and_the_minimum(
    tmp_path: Path, tracking_uri: str, prefect_api: str, model_name: str
) -> None:
    """Issue 12, item 11: a 2-row file failed with sklearn's raw "test_size = 1 should be ..." naming no file."""
    two = tmp_path / "two-rows.csv"
    two.write_text("text,label\na wonderful film,1\na dreadful film,0\n")
    _assert_one_line_error(
        *_invoke("train", "--data", str(two), "--model-name", model_name, "--experiment", model_name),
        f"{two}: 2 rows (1 in the smaller class) are too few to split with test_size 0.2: at least 6 rows",
    )


def _tiny_file(source: Path, path: Path, rows: int) -> Path:
    """`rows` real reviews, half of each class: enough to train, far too few to judge a model on."""
    import pandas as pd

    frame = pd.read_csv(source)
    half = rows // 2
    pd.concat([frame[frame["label"] == 1].head(half), frame[frame["label"] == 0].head(half)]).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_junk_never_becomes_champion_and_set_alias_or_rollback_refuse_it(
    trainer_data: Path, tmp_path: Path, tracking_uri: str, prefect_api: str, model_name: str
) -> None:
    """Issue 12, items 4 and 5: `train --champion` on 10 reviews promoted accuracy 0.5; set-alias moved champion to
    versions the API rejects, exit 0. Now the floors hold before any alias moves, and --force is explicit."""
    from mlflow.tracking import MlflowClient

    from sentiment_core import registry

    names = ["--model-name", model_name, "--experiment", model_name]
    small = ["-p", "n_features=4096", "-p", "ngram_max=1"]
    code, out, err = _invoke("train", "--champion", "--data", str(trainer_data), *names, *small)
    assert code == 0, out + err
    assert "promoted to champion" in out

    ten = _tiny_file(trainer_data, tmp_path / "ten.csv", 10)
    code, out, err = _invoke("train", "--champion", "--data", str(ten), *names, *small)
    assert code == 0, out + err
    assert "challenger" in out
    assert "below the quality floors" in out
    assert "held-out split of 2 reviews, fewer than the minimum 200" in " ".join(out.split())
    client = MlflowClient(tracking_uri)
    assert registry.alias_version(client, model_name, "champion").version == "1"
    assert client.get_model_version(model_name, "2").tags["promotion.decision"] == "not-promoted"

    _assert_one_line_error(
        *_invoke("set-alias", "--version", "2", "--alias", "champion", "--model-name", model_name),
        f"refused: version 2 of '{model_name}' cannot serve: below the quality floors: held-out split of 2 reviews",
    )
    assert registry.alias_version(client, model_name, "champion").version == "1"
    code, out, err = _invoke("set-alias", "--version", "2", "--alias", "challenger", "--model-name", model_name)
    assert code == 0, err  # only champion serves: other aliases are not gated

    code, out, err = _invoke("train", "--data", str(trainer_data), *names, *small, "-p", "data.seed=7")
    assert code == 0, out + err
    # --force is the explicit way past the floors; then a good version takes over again.
    force_junk = ["set-alias", "--version", "2", "--alias", "champion", "--force"]
    code, out, err = _invoke(*force_junk, "--model-name", model_name)
    assert code == 0, err
    code, out, err = _invoke("set-alias", "--version", "3", "--alias", "champion", "--model-name", model_name)
    assert code == 0, err
    assert "champion -> v3 (was v2)" in out
    # Rolling back would crown v2 again: refused, nothing moves, unless --force.
    _assert_one_line_error(*_invoke("rollback", "--model-name", model_name), "refused: version 2 of")
    assert registry.alias_version(client, model_name, "champion").version == "3"
    code, out, err = _invoke("rollback", "--model-name", model_name, "--force")
    assert code == 0, err
    assert "champion v3 -> v2" in out

    # An artifact that is not the one registered: refused like the API would.
    client.set_model_version_tag(model_name, "3", "model.sha256", "0" * 64)
    _assert_one_line_error(
        *_invoke("set-alias", "--version", "3", "--alias", "champion", "--model-name", model_name),
        "artifact hash differs from the registry's model.sha256 tag",
    )
