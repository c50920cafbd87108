"""The data step: local sources, the official archive's layout, checksum failures, atomic output."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sentiment_core import prepare
from sentiment_core.data import DatasetError, load_dataset
from tests.support.file_server import serve_directory


def make_archive(path: Path, reviews: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in reviews.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_local_source_is_deduplicated_sampled_and_written(tmp_path: Path) -> None:
    source = tmp_path / "src.csv"
    rows = [(f"review {i}", i % 2) for i in range(100)] + [("review 1", 1)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(source, index=False)
    output = tmp_path / "data" / "reviews.csv.gz"
    result = prepare.prepare_dataset(output, source=source, sample_size=40, seed=1)
    assert result.dropped_duplicates == 1
    assert result.summary.rows == 40
    assert result.summary.positives == 20
    assert load_dataset(output)["text"].nunique() == 40
    # Same inputs give byte-identical output, so DVC sees no change.
    first = output.read_bytes()
    prepare.prepare_dataset(output, source=source, sample_size=40, seed=1)
    assert output.read_bytes() == first


def test_bad_source_leaves_no_output(tmp_path: Path) -> None:
    source = tmp_path / "src.csv"
    source.write_text("text,label\nonly positive,1\n")
    output = tmp_path / "reviews.csv.gz"
    with pytest.raises(DatasetError, match="only positive"):
        prepare.prepare_dataset(output, source=source)
    assert list(tmp_path.iterdir()) == [source]


def test_reads_the_official_archive_layout(tmp_path: Path) -> None:
    archive = make_archive(
        tmp_path / "a.tar.gz",
        {
            "aclImdb/train/pos/0_9.txt": "Bromwell High is a cartoon comedy.",
            "aclImdb/train/neg/1_2.txt": "Terrible.<br />Avoid.",
            "aclImdb/test/pos/2_8.txt": "a test review",
            "aclImdb/train/unsup/3_0.txt": "unlabelled",
            "aclImdb/README": "readme",
        },
    )
    frame = prepare.read_imdb_archive(archive)
    assert sorted(zip(frame["text"], frame["label"], strict=True)) == [
        ("Bromwell High is a cartoon comedy.", 1),
        ("Terrible.<br />Avoid.", 0),
    ]
    with pytest.raises(DatasetError, match="not a readable IMDb archive"):
        prepare.read_imdb_archive((tmp_path / "junk.tar.gz").write_bytes(b"junk") and tmp_path / "junk.tar.gz")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as url:
        yield url, root


def test_download_with_a_bad_checksum_is_rejected_and_removed(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, root = http_root
    make_archive(root / "aclImdb_v1.tar.gz", {"aclImdb/train/pos/0_9.txt": "fine"})
    seen: list[int] = []
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        prepare.download_imdb_archive(
            cache,
            progress=lambda done, total: seen.append(done),
            source=prepare.ArchiveSource(url=f"{url}/aclImdb_v1.tar.gz"),
        )
    assert seen, "progress was reported"
    assert list(cache.iterdir()) == []


def test_a_mirror_with_its_own_checksum_is_downloaded_once(http_root: tuple[str, Path], tmp_path: Path) -> None:
    url, root = http_root
    archive = root / "aclImdb_v1.tar.gz"
    make_archive(archive, {"aclImdb/train/pos/0_9.txt": "fine"})
    mirror = prepare.ArchiveSource(url=f"{url}/aclImdb_v1.tar.gz", md5=hashlib.md5(archive.read_bytes()).hexdigest())  # noqa: S324
    first = prepare.download_imdb_archive(tmp_path, source=mirror)
    assert first.read_bytes() == archive.read_bytes()
    archive.unlink()  # the cached copy is reused: no second download
    assert prepare.download_imdb_archive(tmp_path, source=mirror) == first


def test_unreachable_download_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="pass --source FILE"):
        prepare.download_imdb_archive(
            tmp_path, source=prepare.ArchiveSource(url="http://127.0.0.1:9/aclImdb_v1.tar.gz")
        )


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": [1, 0]})
    first, second = tmp_path / "1.csv.gz", tmp_path / "2.csv.gz"
    prepare.write_dataset_atomically(frame, first)
    prepare.write_dataset_atomically(frame, second)
    assert first.read_bytes() == second.read_bytes()
    assert gzip.decompress(first.read_bytes()).decode().startswith("text,label")


def test_local_test_source_is_written_beside_the_dataset_without_training_texts(tmp_path: Path) -> None:
    source = tmp_path / "src.csv"
    pd.DataFrame([(f"review {i}", i % 2) for i in range(100)], columns=["text", "label"]).to_csv(source, index=False)
    test_source = tmp_path / "test-src.csv"
    rows = [(f"other film {i}", i % 2) for i in range(60)] + [("review 3", 1), ("review 4", 0), ("other film 0", 0)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(test_source, index=False)
    output = tmp_path / "data" / "reviews.csv.gz"
    result = prepare.prepare_dataset(
        output, source=source, test_output=output.parent / "test.csv.gz", test_source=test_source, test_sample_size=40
    )
    assert result.test is not None
    assert result.test.path == tmp_path / "data" / "test.csv.gz"
    assert (result.test.overlap_rows, result.test.dropped_duplicates) == (2, 1)
    written = load_dataset(result.test.path)
    assert len(written) == 40
    assert written["label"].sum() == 20
    assert not set(written["text"]) & set(load_dataset(output)["text"])


def test_a_local_dataset_without_a_test_source_writes_no_test_file(tmp_path: Path) -> None:
    source = tmp_path / "src.csv"
    pd.DataFrame([(f"review {i}", i % 2) for i in range(10)], columns=["text", "label"]).to_csv(source, index=False)
    result = prepare.prepare_dataset(tmp_path / "reviews.csv.gz", source=source, test_output=tmp_path / "test.csv.gz")
    assert result.test is None
    assert not (tmp_path / "test.csv.gz").exists()


def test_a_bad_test_source_leaves_no_output(tmp_path: Path) -> None:
    source = tmp_path / "src.csv"
    pd.DataFrame([(f"review {i}", i % 2) for i in range(10)], columns=["text", "label"]).to_csv(source, index=False)
    test_source = tmp_path / "test-src.csv"
    test_source.write_text("text,label\nreview 1,1\nreview 2,0\n")
    with pytest.raises(DatasetError, match="all 2 test rows also occur in the training data"):
        prepare.prepare_dataset(
            tmp_path / "data" / "reviews.csv.gz",
            source=source,
            test_output=tmp_path / "data" / "test.csv.gz",
            test_source=test_source,
        )
    assert not (tmp_path / "data").exists()


def test_the_archive_gives_its_official_test_split_as_the_test_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_archive(
        tmp_path / "a.tar.gz",
        {
            "aclImdb/train/pos/0_9.txt": "train praise",
            "aclImdb/train/neg/1_2.txt": "train scorn",
            "aclImdb/test/pos/2_8.txt": "test praise",
            "aclImdb/test/neg/3_1.txt": "test scorn",
            "aclImdb/test/neg/5_1.txt": "more test scorn",
            "aclImdb/test/pos/4_7.txt": "train praise",
        },
    )
    # The download itself is tested above; here the archive is already "downloaded".
    monkeypatch.setattr(prepare, "download_imdb_archive", lambda cache_dir, progress=None, source=None: archive)
    output = tmp_path / "data" / "reviews.csv.gz"
    result = prepare.prepare_dataset(output, test_output=output.parent / "test.csv.gz")
    assert result.test is not None
    assert result.test.source.endswith("(test split)")
    assert result.test.overlap_rows == 1
    assert sorted(load_dataset(result.test.path)["text"]) == ["more test scorn", "test praise", "test scorn"]
    assert sorted(load_dataset(output)["text"]) == ["train praise", "train scorn"]
