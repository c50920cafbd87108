"""Fixtures of the trainer tests: a small real dataset and a Prefect API for in-process flow runs.

The servers themselves come from the root conftest (tests/support/servers.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

# Prefect configures logging when `prefect.main` is first imported, binding its console handler to the sys.stderr
# of that moment. Import it now, not inside a CliRunner invocation whose captured stderr is closed afterwards.
import prefect.main  # noqa: F401
import pytest

from sentiment_core.data import load_dataset, sample_stratified
from sentiment_core.prepare import prepare_dataset
from sentiment_local.servers import HttpServer
from services.trainer.tests.trainer_helpers import SAMPLE_ROWS, TEST_FILE_OVERLAP


@pytest.fixture(scope="session")
def trainer_data(tmp_path_factory: pytest.TempPathFactory, imdb_path: Path) -> Path:
    """A stratified sample of the shared IMDb reviews, written by the library's data step (as `prepare` does)."""
    output = tmp_path_factory.mktemp("trainer-data") / "reviews-3000.csv.gz"
    prepare_dataset(output, source=imdb_path, sample_size=SAMPLE_ROWS, seed=42)
    return output


@pytest.fixture(scope="session")
def trainer_data_with_test(tmp_path_factory: pytest.TempPathFactory, trainer_data: Path, imdb_test_path: Path) -> Path:
    """The trainer sample with an independent test file beside it (as `prepare` lays them out): 1,000 reviews of the
    shared official-test sample plus TEST_FILE_OVERLAP reviews copied from the training data."""
    directory = tmp_path_factory.mktemp("trainer-data-with-test")
    data = directory / "reviews.csv.gz"
    shutil.copyfile(trainer_data, data)
    test = pd.concat(
        [
            sample_stratified(load_dataset(imdb_test_path), 1000, seed=3),
            load_dataset(trainer_data).head(TEST_FILE_OVERLAP),
        ]
    )
    test.to_csv(directory / "test.csv.gz", index=False)
    return data


@pytest.fixture
def one_class_data(tmp_path: Path, trainer_data: Path) -> Path:
    """Positive reviews only: a dataset no classifier can be trained on."""
    frame = pd.read_csv(trainer_data)
    path = tmp_path / "positives.csv"
    frame[frame["label"] == 1].head(200).to_csv(path, index=False)
    return path


@pytest.fixture
def prefect_api(prefect_server: HttpServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Flows run in this process report to the session's Prefect server.

    Prefect reads its settings once, at import: set them through `temporary_settings`; the environment variable is
    for code that reads it at call time (the CLI) and for subprocesses.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api_url = f"{prefect_server.url}/api"
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        yield api_url
