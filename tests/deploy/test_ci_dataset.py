"""The GitHub workflow's test job gets real data without ../shared: its Dataset step, run here as ci.yml runs it, in
a clone with no ../shared beside it, downloads an archive in the official layout (served on loopback, standing in
for the publisher), checks its MD5 and writes the two files the suite reads through IMDB_DATA_DIR."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sentiment_core.data import load_dataset
from sentiment_core.prepare import IMDB_MD5
from tests.deploy.test_workflows import steps, workflow
from tests.support.file_server import serve_directory
from tests.support.servers import SHARED_DATA, SHARED_TEST_DATA

REPO_ROOT = Path(__file__).resolve().parents[2]
ROWS_PER_SPLIT = 200


def dataset_steps() -> tuple[dict, dict, list[str]]:
    """The cache step, the Dataset step and the names of every step of the test job, in order."""
    job = steps(workflow("ci.yml"), "test")
    names = [step.get("name", "") for step in job]
    cache = next(step for step in job if step.get("with", {}).get("path") == ".cache/imdb-archive")
    dataset = next(step for step in job if step.get("name") == "Dataset")
    return cache, dataset, names


def test_the_test_job_prepares_the_data_before_make_test_and_caches_the_archive_by_its_checksum() -> None:
    cache, dataset, names = dataset_steps()
    assert cache["uses"].startswith("actions/cache@")
    # The key is the publisher's MD5, the one prepare checks: a new archive can never hide behind an old cache.
    assert IMDB_MD5 in cache["with"]["key"]
    assert names.index("Install") < names.index("Dataset") < names.index("make test")
    assert dataset["run"].strip() == "bash scripts/ci/dataset.sh"


def official_layout_archive(path: Path) -> None:
    """aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt, as the publisher's archive has it, from the real reviews."""
    splits = {
        "train": pd.read_csv(SHARED_DATA).groupby("label").head(ROWS_PER_SPLIT // 2),
        "test": pd.read_csv(SHARED_TEST_DATA).groupby("label").head(ROWS_PER_SPLIT // 2),
    }
    with tarfile.open(path, "w:gz") as tar:
        for split, frame in splits.items():
            for index, (text, label) in enumerate(zip(frame["text"], frame["label"], strict=True)):
                payload = str(text).encode()
                member = tarfile.TarInfo(
                    f"aclImdb/{split}/{'pos' if label == 1 else 'neg'}/{index}_{8 if label else 2}.txt"
                )
                member.size = len(payload)
                tar.addfile(member, io.BytesIO(payload))


@pytest.fixture
def archive_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(url, md5) of an official-layout archive served on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "aclImdb_v1.tar.gz"
    official_layout_archive(archive)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()  # noqa: S324 - the publisher's checksum kind
    with serve_directory(served) as url:
        yield f"{url}/aclImdb_v1.tar.gz", md5


def runner_clone(root: Path) -> Path:
    """What the Dataset step sees on a runner: the checkout (the step's script and params.yaml), `make install`'s
    .venv, and no ../shared beside it."""
    clone = root / "runner" / "repo"
    (clone / "scripts" / "ci").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "scripts" / "ci" / "dataset.sh", clone / "scripts" / "ci" / "dataset.sh")
    shutil.copy2(REPO_ROOT / "params.yaml", clone / "params.yaml")
    (clone / ".venv").symlink_to(Path(sys.executable).parent.parent)
    assert not (clone.parent / "shared").exists()
    return clone


def run_dataset_step(clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    _, dataset, _ = dataset_steps()
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", dataset["run"]],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_dataset_step_downloads_and_prepares_without_shared(
    tmp_path: Path, archive_server: tuple[str, str]
) -> None:
    url, md5 = archive_server
    clone = runner_clone(tmp_path)
    github_env = tmp_path / "github_env"
    env = {
        **{key: value for key, value in os.environ.items() if key != "IMDB_DATA_DIR"},
        "GITHUB_ENV": str(github_env),
        "DATA_ARCHIVE_URL": url,
        "DATA_ARCHIVE_MD5": md5,
    }
    result = run_dataset_step(clone, env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data_dir = clone / ".cache" / "imdb-data"
    assert github_env.read_text().strip() == f"IMDB_DATA_DIR={data_dir}"
    train = load_dataset(data_dir / "reviews.csv.gz")
    test = load_dataset(data_dir / "test_sample.csv.gz")
    assert len(train) == ROWS_PER_SPLIT
    assert set(train["label"]) == {0, 1}
    assert 0 < len(test) <= ROWS_PER_SPLIT
    assert set(test["label"]) == {0, 1}
    assert not set(test["text"]) & set(train["text"])
    assert (clone / ".cache" / "imdb-archive" / "aclImdb_v1.tar.gz").is_file()

    # The suite's fixtures read the prepared files through IMDB_DATA_DIR.
    probe = "from tests.support.servers import SHARED_DATA, SHARED_TEST_DATA; print(SHARED_DATA, SHARED_TEST_DATA)"
    seen = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT,
        env={**env, "IMDB_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert seen == [str(data_dir / "reviews.csv.gz"), str(data_dir / "test_sample.csv.gz")]


def test_a_corrupt_download_fails_the_step_and_leaves_nothing_behind(
    tmp_path: Path, archive_server: tuple[str, str]
) -> None:
    url, _ = archive_server
    clone = runner_clone(tmp_path)
    env = {**os.environ, "GITHUB_ENV": str(tmp_path / "github_env"), "DATA_ARCHIVE_URL": url}
    # Without DATA_ARCHIVE_MD5 the publisher's checksum applies, which this re-pack cannot match.
    result = run_dataset_step(clone, env)
    assert result.returncode != 0
    assert "checksum mismatch" in result.stdout + result.stderr
    assert not (clone / ".cache" / "imdb-data" / "reviews.csv.gz").exists()
    assert not list((clone / ".cache" / "imdb-archive").glob("*.tar.gz"))
    assert not (tmp_path / "github_env").exists()


def test_gzip_layout_of_the_stand_in_archive_is_what_prepare_reads(tmp_path: Path) -> None:
    """Guards the stand-in itself: the library's archive reader finds every review in it."""
    from sentiment_core.prepare import read_imdb_archive

    archive = tmp_path / "aclImdb_v1.tar.gz"
    official_layout_archive(archive)
    with gzip.open(archive) as handle:
        assert handle.read(2)  # a real gzip stream
    assert len(read_imdb_archive(archive, splits=("train",))) == ROWS_PER_SPLIT
    assert len(read_imdb_archive(archive, splits=("test",))) == ROWS_PER_SPLIT
