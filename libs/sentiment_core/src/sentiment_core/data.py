"""Labelled review datasets: load, validate, deduplicate, split, sample and fingerprint."""

from __future__ import annotations

import gzip
import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from sentiment_core.errors import SentimentError

TEXT = "text"
LABEL = "label"
SUPPORTED_SUFFIXES = (".csv", ".csv.gz", ".parquet")


class DatasetError(SentimentError, ValueError):
    """A dataset that cannot be used. The message names the file, the row (when there is one) and the problem."""

    def __init__(self, source: str | Path, problem: str, row: int | None = None) -> None:
        self.source = str(source)
        self.row = row
        self.problem = problem
        where = f"{self.source}, row {row}" if row is not None else self.source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class DatasetSplit:
    train: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True)
class DatasetSummary:
    """What lineage needs to know about a dataset."""

    rows: int
    positives: int
    negatives: int
    fingerprint: str

    @property
    def positive_share(self) -> float:
        return self.positives / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "positives": self.positives,
            "negatives": self.negatives,
            "positive_share": round(self.positive_share, 4),
            "fingerprint": self.fingerprint,
        }


def load_dataset(path: str | Path, purpose: str = "to train a classifier") -> pd.DataFrame:
    """Read a `text,label` dataset (CSV, CSV.gz or Parquet) and validate it. Rows are numbered from 1."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise DatasetError(path, "file not found")
    if not name.endswith(SUPPORTED_SUFFIXES):
        raise DatasetError(path, f"unsupported file type; expected one of {', '.join(SUPPORTED_SUFFIXES)}")
    if name.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as error:
            raise DatasetError(path, f"not a readable Parquet file ({error})") from None
    else:
        frame = _read_csv(path)
    clean = validate_dataset(frame, source=path, purpose=purpose)
    # The file travels with its rows, so a later step (split_dataset) can name it in its errors.
    clean.attrs["source"] = str(path)
    return clean


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as error:
        raise DatasetError(path, f"cannot read the file ({error})") from None
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        # Line 1 is the header, so the data row is the line number minus one.
        line = raw[: error.start].count(b"\n") + 1
        raise DatasetError(path, f"not valid UTF-8 (byte {error.start}, line {line})", row=max(line - 1, 1)) from None
    if not content.strip():
        raise DatasetError(path, "the file is empty; expected a header 'text,label' and at least one row")
    try:
        return pd.read_csv(io.StringIO(content), dtype={TEXT: "string"}, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as error:
        raise DatasetError(path, f"malformed CSV ({error})") from None


def validate_dataset(
    frame: pd.DataFrame, source: str | Path = "<dataframe>", purpose: str = "to train a classifier"
) -> pd.DataFrame:
    """Check columns, texts and labels; return a clean frame with `text: str` and `label: int` (0 or 1).

    `purpose` ends the one-class error ("both classes are needed {purpose}").
    """
    missing = [column for column in (TEXT, LABEL) if column not in frame.columns]
    if missing:
        raise DatasetError(
            source,
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns)) or 'none'}",
        )
    if frame.empty:
        raise DatasetError(source, "no rows; expected at least one labelled review")

    texts = frame[TEXT]
    missing_text = texts.isna().to_numpy()
    if missing_text.any():
        raise DatasetError(source, "text is missing", row=int(missing_text.argmax()) + 1)
    not_string = ~texts.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
    if not_string.any():
        position = int(not_string.argmax())
        kind = type(texts.iloc[position]).__name__
        raise DatasetError(source, f"text must be a string, got {kind}", row=position + 1)
    blank = (texts.str.strip() == "").to_numpy(dtype=bool)
    if blank.any():
        raise DatasetError(source, "text is empty or only whitespace", row=int(blank.argmax()) + 1)

    labels = pd.to_numeric(frame[LABEL], errors="coerce")
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        position = int(bad.to_numpy().argmax()) + 1
        raise DatasetError(source, f"label must be 0 or 1, got {frame[LABEL].iloc[position - 1]!r}", row=position)

    clean = pd.DataFrame({TEXT: texts.astype(str).to_numpy(), LABEL: labels.astype(int).to_numpy()})
    classes = set(clean[LABEL].unique().tolist())
    if classes != {0, 1}:
        only = "positive (1)" if classes == {1} else "negative (0)"
        raise DatasetError(source, f"only {only} labels; both classes are needed {purpose}")
    return clean


@dataclass(frozen=True)
class TestSet:
    """An independent test file (reviews of other films), checked against the data the model learns from."""

    path: Path
    frame: pd.DataFrame
    # Rows of the file whose text is also in the training data: dropped, and reported as `test.overlap_rows`.
    overlap_rows: int

    @property
    def summary(self) -> DatasetSummary:
        return summarize(self.frame)


def load_test_set(path: str | Path, training: pd.DataFrame) -> TestSet:
    """Load a test file and drop the rows whose text also occurs in `training`.

    Dropped, not refused: the official IMDb test split repeats a few train texts verbatim, and a copy of a training
    review would only flatter the model; counting and reporting them keeps that visible. A file left with nothing,
    or with one class only, after the drop is refused: it cannot measure accuracy.
    """
    path = Path(path)
    frame = load_dataset(path, purpose="to measure a classifier on a test file")
    kept, overlap = drop_overlap(frame, training, source=path)
    return TestSet(path=path, frame=kept, overlap_rows=overlap)


def drop_overlap(test: pd.DataFrame, training: pd.DataFrame, source: str | Path) -> tuple[pd.DataFrame, int]:
    """The test rows whose text is not in `training`, and how many were dropped. Refuses what cannot measure."""
    seen = test[TEXT].isin(set(training[TEXT].tolist())).to_numpy(dtype=bool)
    overlap = int(seen.sum())
    if overlap == len(test):
        raise DatasetError(
            source, f"all {overlap} test rows also occur in the training data; the test file must hold other reviews"
        )
    kept = test[~seen].reset_index(drop=True)
    if kept[LABEL].nunique() < 2:
        raise DatasetError(
            source,
            f"after dropping {overlap} row(s) that also occur in the training data, one class only is left;"
            " a test file needs both classes",
        )
    return kept, overlap


def deduplicate(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop repeated texts. A text seen with both labels is ambiguous, so all its rows go."""
    label_counts = frame.groupby(TEXT)[LABEL].nunique()
    conflicting = set(label_counts[label_counts > 1].index)
    kept = frame[~frame[TEXT].isin(conflicting)]
    return kept.drop_duplicates(subset=TEXT, keep="first").reset_index(drop=True)


def split_dataset(frame: pd.DataFrame, test_size: float, seed: int) -> DatasetSplit:
    """Stratified train/test split; the same seed and data always give the same split."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    needed = min_rows_to_split(test_size)
    smallest_class = int(frame[LABEL].value_counts().min()) if len(frame) else 0
    if len(frame) < needed or smallest_class < 2:
        raise DatasetError(
            frame.attrs.get("source", "<dataframe>"),
            f"{len(frame)} rows ({smallest_class} in the smaller class) are too few to split with test_size"
            f" {test_size}: at least {needed} rows, with at least 2 of each class, are needed",
        )
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=frame[LABEL])
    if train[LABEL].nunique() < 2 or test[LABEL].nunique() < 2:
        raise ValueError("the split left a side with one class only; use more data or another test_size")
    return DatasetSplit(train=train.reset_index(drop=True), test=test.reset_index(drop=True))


def min_rows_to_split(test_size: float) -> int:
    """Fewest rows a stratified split accepts: both sides need one review of each class at least."""
    # sklearn gives the test side ceil(test_size * rows) rows. Bounded: a test_size within 1e-6 of 0 or 1 is absurd.
    for rows in range(4, 10**6):
        if math.ceil(test_size * rows) >= 2 and rows - math.ceil(test_size * rows) >= 2:
            return rows
    return 10**6


def sample_stratified(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """A class-balanced-as-the-source sample of `size` rows (all rows when size is 0 or >= len)."""
    if size < 0:
        raise ValueError(f"sample size must be >= 0, got {size}")
    if size == 0 or size >= len(frame):
        return frame.reset_index(drop=True)
    sample, _ = train_test_split(frame, train_size=size, random_state=seed, stratify=frame[LABEL])
    return sample.reset_index(drop=True)


def fingerprint(frame: pd.DataFrame) -> str:
    """Content hash of (text, label) rows in order: the same data gives the same fingerprint, whatever the file."""
    digest = hashlib.sha256()
    for text, label in zip(frame[TEXT].tolist(), frame[LABEL].tolist(), strict=True):
        digest.update(f"{int(label)}\t{text}\n".encode())
    return digest.hexdigest()


def summarize(frame: pd.DataFrame) -> DatasetSummary:
    positives = int((frame[LABEL] == 1).sum())
    return DatasetSummary(
        rows=len(frame),
        positives=positives,
        negatives=len(frame) - positives,
        fingerprint=fingerprint(frame),
    )
