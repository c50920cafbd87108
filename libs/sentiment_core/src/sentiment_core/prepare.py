"""The data step: build `data/reviews.csv.gz` (and the independent `data/test.csv.gz`) from the official IMDb
archive or from local files."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sentiment_core.data import (
    DatasetError,
    DatasetSummary,
    deduplicate,
    drop_overlap,
    load_dataset,
    sample_stratified,
    summarize,
    validate_dataset,
)

# Large Movie Review Dataset v1.0 (Maas et al., ACL 2011). The publisher gives an MD5; we check it and the size.
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
IMDB_SIZE = 84_125_825


@dataclass(frozen=True)
class ArchiveSource:
    """Where the archive is downloaded from and the MD5 it must have: the publisher's, or a mirror of it (a company
    mirror, or a CI cache server) with the same bytes, or a re-pack with its own checksum."""

    url: str = IMDB_URL
    md5: str = IMDB_MD5


OFFICIAL_ARCHIVE = ArchiveSource()
_REVIEW_PATH = re.compile(r"^aclImdb/(train|test)/(pos|neg)/\d+_\d+\.txt$")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PreparedTestSet:
    """The independent test file: the official test split (reviews of other films), or a local file."""

    path: Path
    source: str
    summary: DatasetSummary
    dropped_duplicates: int
    # Rows whose text also occurs in the training data: dropped, so the test measures unseen reviews only.
    overlap_rows: int


@dataclass(frozen=True)
class PreparedDataset:
    path: Path
    source: str
    summary: DatasetSummary
    dropped_duplicates: int
    test: PreparedTestSet | None = None


def prepare_dataset(
    output: Path,
    *,
    source: Path | None = None,
    sample_size: int = 0,
    seed: int = 42,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    test_output: Path | None = None,
    test_source: Path | None = None,
    test_sample_size: int = 0,
    archive_source: ArchiveSource = OFFICIAL_ARCHIVE,
) -> PreparedDataset:
    """Load the source (local file, else the official archive), deduplicate, sample, write gzip CSV atomically.

    With `test_output`, also write the independent test file: from `test_source` when given, else from the archive's
    official test split when the dataset comes from the archive (a local dataset without `test_source` gets none).
    Test rows whose text is in the dataset are dropped and counted.
    """
    archive: Path | None = None
    if source is not None:
        frame = load_dataset(source)
        origin = str(source)
    else:
        archive = download_imdb_archive(cache_dir or output.parent / ".cache", progress=progress, source=archive_source)
        frame = read_imdb_archive(archive)
        origin = archive_source.url
    deduplicated = deduplicate(frame)
    dropped = len(frame) - len(deduplicated)
    sample = sample_stratified(deduplicated, sample_size, seed)

    test: PreparedTestSet | None = None
    if test_output is not None and (test_source is not None or archive is not None):
        # Built (and checked) before anything is written: a bad test file leaves both outputs as they were.
        if test_source is not None:
            test_frame, test_origin = load_dataset(test_source, purpose="to measure a classifier"), str(test_source)
        else:
            assert archive is not None
            test_frame, test_origin = read_imdb_archive(archive, splits=("test",)), f"{archive_source.url} (test split)"
        test_unique = deduplicate(test_frame)
        # Against the whole deduplicated dataset, not the sample: no review the model could ever train on.
        test_kept, overlap = drop_overlap(test_unique, deduplicated, source=test_source or test_origin)
        test_sample = sample_stratified(test_kept, test_sample_size, seed)
        test = PreparedTestSet(
            path=test_output,
            source=test_origin,
            summary=summarize(test_sample),
            dropped_duplicates=len(test_frame) - len(test_unique),
            overlap_rows=overlap,
        )
    write_dataset_atomically(sample, output)
    if test is not None:
        write_dataset_atomically(test_sample, test.path)
    return PreparedDataset(path=output, source=origin, summary=summarize(sample), dropped_duplicates=dropped, test=test)


def write_dataset_atomically(frame: pd.DataFrame, output: Path) -> None:
    """Write to a temp file beside the target and rename: a failure never leaves a half-written dataset."""
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    os.close(handle)
    temp = Path(temp_name)
    try:
        name = output.name.lower()
        if name.endswith(".parquet"):
            frame.to_parquet(temp, index=False)
        else:
            payload = frame.to_csv(index=False).encode()
            # mtime=0 and no file name in the header: identical data gives identical bytes (and DVC hash).
            temp.write_bytes(gzip.compress(payload, mtime=0) if name.endswith(".gz") else payload)
        temp.replace(output)
    finally:
        temp.unlink(missing_ok=True)


def download_imdb_archive(
    cache_dir: Path, progress: Progress | None = None, source: ArchiveSource = OFFICIAL_ARCHIVE
) -> Path:
    """Download the archive once into cache_dir, verifying its MD5; a bad download is deleted."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / "aclImdb_v1.tar.gz"
    if target.is_file() and _md5(target) == source.md5:
        return target
    partial = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(source.url, timeout=60) as response, partial.open("wb") as sink:  # noqa: S310
            total = int(response.headers.get("Content-Length") or IMDB_SIZE)
            done = 0
            while chunk := response.read(1 << 20):
                sink.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except (OSError, ValueError) as error:  # ValueError: a malformed URL
        partial.unlink(missing_ok=True)
        raise DatasetError(source.url, f"download failed ({error}); on an offline machine pass --source FILE") from None
    actual = _md5(partial)
    if actual != source.md5:
        partial.unlink(missing_ok=True)
        raise DatasetError(
            source.url, f"checksum mismatch: got md5 {actual}, expected {source.md5}; the download is corrupt"
        )
    partial.replace(target)
    return target


def read_imdb_archive(archive: Path, splits: tuple[str, ...] = ("train",)) -> pd.DataFrame:
    """Reviews from the archive's train split by default (`("test",)`: the official test split): pos 1, neg 0."""
    rows: list[tuple[str, int]] = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                match = _REVIEW_PATH.match(member.name)
                if not match or match.group(1) not in splits or not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                if extracted is None:
                    continue
                text = extracted.read().decode("utf-8")
                rows.append((text, 1 if match.group(2) == "pos" else 0))
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as error:
        raise DatasetError(archive, f"not a readable IMDb archive ({error})") from None
    if not rows:
        raise DatasetError(archive, f"no reviews found under aclImdb/{{{','.join(splits)}}}/{{pos,neg}}")
    return validate_dataset(pd.DataFrame(rows, columns=["text", "label"]), source=archive)


def _md5(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - the publisher's checksum is MD5; this is integrity, not security
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
