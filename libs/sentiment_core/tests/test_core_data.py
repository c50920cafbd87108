"""Loading, validating, deduplicating, splitting and fingerprinting labelled datasets."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from sentiment_core.data import (
    DatasetError,
    deduplicate,
    fingerprint,
    load_dataset,
    load_test_set,
    sample_stratified,
    split_dataset,
    summarize,
    validate_dataset,
)


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


GOOD = "text,label\ngreat film,1\nawful film,0\nloved it,1\nhated it,0\n"


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_loads_every_supported_format(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"text": ["good", "bad"], "label": [1, 0]})
    path = tmp_path / f"reviews{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    elif suffix == ".csv.gz":
        path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    else:
        frame.to_csv(path, index=False)
    loaded = load_dataset(path)
    assert loaded["text"].tolist() == ["good", "bad"]
    assert loaded["label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    ("content", "row", "problem"),
    [
        ("text,label\ngood,1\n,0\n", 2, "text is missing"),
        ("text,label\ngood,1\n   ,0\n", 2, "empty or only whitespace"),
        ("text,label\ngood,1\nbad,neutral\n", 2, "label must be 0 or 1, got 'neutral'"),
        ("text,label\ngood,1\nbad,2\n", 2, "label must be 0 or 1"),
        ("text,label\ngood,1\nbad,\n", 2, "label must be 0 or 1"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, content: str, row: int, problem: str) -> None:
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(DatasetError) as error:
        load_dataset(path)
    assert error.value.row == row
    assert problem in str(error.value)
    assert str(path) in str(error.value)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="empty"):
        load_dataset(write(tmp_path / "empty.csv", ""))


def test_header_only(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(write(tmp_path / "header.csv", "text,label\n"))


def test_one_class_only(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"only positive \(1\) labels"):
        load_dataset(write(tmp_path / "pos.csv", "text,label\ngood,1\nnice,1\n"))


def test_missing_column(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing column\\(s\\) label; found text, sentiment"):
        load_dataset(write(tmp_path / "cols.csv", "text,sentiment\ngood,1\n"))


def test_non_utf8_bytes_name_the_row(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.csv", b"text,label\ngood,1\n" + "café crème,0\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not valid UTF-8") as error:
        load_dataset(path)
    assert error.value.row == 2


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unsupported file type"):
        load_dataset(write(tmp_path / "data.json", "{}"))
    with pytest.raises(DatasetError, match="file not found"):
        load_dataset(tmp_path / "nope.csv")


def test_corrupt_gzip_and_parquet(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(write(tmp_path / "broken.csv.gz", b"not gzip at all"))
    with pytest.raises(DatasetError, match="not a readable Parquet"):
        load_dataset(write(tmp_path / "broken.parquet", b"PAR1 nope"))


def test_deduplicate_drops_repeats_and_ambiguous_texts() -> None:
    frame = validate_dataset(
        pd.DataFrame({"text": ["a", "a", "b", "b", "c"], "label": [1, 1, 1, 0, 0]}),
    )
    assert deduplicate(frame)[["text", "label"]].values.tolist() == [["a", 1], ["c", 0]]


def test_split_is_stratified_and_reproducible() -> None:
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(200)], "label": [i % 4 == 0 for i in range(200)]})
    frame["label"] = frame["label"].astype(int)
    first = split_dataset(frame, test_size=0.25, seed=7)
    second = split_dataset(frame, test_size=0.25, seed=7)
    assert first.test["text"].tolist() == second.test["text"].tolist()
    assert len(first.test) == 50
    assert first.test["label"].mean() == pytest.approx(0.25, abs=0.02)
    assert set(first.train["text"]).isdisjoint(first.test["text"])
    with pytest.raises(ValueError, match="test_size"):
        split_dataset(frame, test_size=1.5, seed=7)


def test_sample_keeps_class_balance() -> None:
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(1000)], "label": [int(i < 300) for i in range(1000)]})
    sample = sample_stratified(frame, 100, seed=1)
    assert len(sample) == 100
    assert sample["label"].sum() == 30
    assert len(sample_stratified(frame, 0, seed=1)) == 1000


def test_fingerprint_tracks_content_not_files(tmp_path: Path) -> None:
    csv = load_dataset(write(tmp_path / "a.csv", GOOD))
    gz = load_dataset(write(tmp_path / "a.csv.gz", gzip.compress(GOOD.encode())))
    assert fingerprint(csv) == fingerprint(gz)
    changed = csv.copy()
    changed.loc[0, "label"] = 0
    assert fingerprint(changed) != fingerprint(csv)
    summary = summarize(csv)
    assert (summary.rows, summary.positives, summary.negatives) == (4, 2, 2)
    assert summary.to_dict()["positive_share"] == 0.5


def test_real_dataset_is_valid(imdb_path: Path) -> None:
    frame = load_dataset(imdb_path)
    assert len(frame) == 24_904
    assert frame["label"].sum() == 12_472
    assert len(deduplicate(frame)) == len(frame)


TRAINING = pd.DataFrame({"text": ["great film", "awful film", "loved it", "hated it"], "label": [1, 0, 1, 0]})


def test_test_set_drops_and_counts_rows_seen_in_training(tmp_path: Path) -> None:
    path = write(tmp_path / "test.csv", "text,label\nnew praise,1\nnew scorn,0\ngreat film,1\nmore praise,1\n")
    test = load_test_set(path, TRAINING)
    assert test.overlap_rows == 1
    assert test.frame["text"].tolist() == ["new praise", "new scorn", "more praise"]
    assert test.summary.rows == 3


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("review,sentiment\nnew praise,1\n", "missing column(s) text, label; found review, sentiment"),
        ("text,label\nnew praise,1\nmore praise,1\n", "both classes are needed to measure a classifier"),
        ("text,label\ngreat film,1\nawful film,0\n", "all 2 test rows also occur in the training data"),
        ("text,label\ngreat film,1\nawful film,0\nnew praise,1\n", "after dropping 2 row(s)"),
    ],
)
def test_bad_test_files_name_the_file_and_the_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = write(tmp_path / "test.csv", content)
    with pytest.raises(DatasetError) as raised:
        load_test_set(path, TRAINING)
    assert str(raised.value).startswith(str(path))
    assert problem in str(raised.value)


def test_too_few_rows_to_split_names_the_file_and_the_minimum(tmp_path: Path) -> None:
    """Issue 12, item 11: a 2-row file failed with sklearn's "test_size = 1 should be greater or equal to ..."."""
    frame = load_dataset(write(tmp_path / "two.csv", "text,label\ngreat film,1\nawful film,0\n"))
    expected = r"two\.csv: 2 rows .* too few to split with test_size 0\.2: at least 6 rows"
    with pytest.raises(DatasetError, match=expected):
        split_dataset(frame, test_size=0.2, seed=1)
    six = load_dataset(write(tmp_path / "six.csv", GOOD + "fine film,1\nbad film,0\n"))
    assert len(split_dataset(six, test_size=0.2, seed=1).test) == 2
