#!/usr/bin/env bash
# The test suite's dataset on a CI runner: ../shared/data/imdb when the machine has it (this project's own machines),
# else the product's own data step, `sentiment-trainer prepare`, which downloads the official archive (MD5-checked;
# .github/workflows/ci.yml caches it under .cache/imdb-archive) and writes the same two files ../shared holds.
# Prints IMDB_DATA_DIR=<dir> and appends it to $GITHUB_ENV when set; the tests read that variable.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

shared=../shared/data/imdb
if [[ -f "$shared/reviews.csv.gz" && -f "$shared/test_sample.csv.gz" ]]; then
  dir="$(cd "$shared" && pwd)"
  echo "dataset: using $dir" >&2
else
  dir="$PWD/.cache/imdb-data"
  echo "dataset: no ../shared; preparing it from the official archive into $dir" >&2
  # Same file names as ../shared: the training file and a 5,000-review sample of the official test split.
  .venv/bin/sentiment-trainer prepare \
    --output "$dir/reviews.csv.gz" \
    --test-output "$dir/test_sample.csv.gz" \
    --test-sample-size 5000 \
    --cache-dir .cache/imdb-archive
fi
echo "IMDB_DATA_DIR=$dir"
if [[ -n "${GITHUB_ENV:-}" ]]; then echo "IMDB_DATA_DIR=$dir" >>"$GITHUB_ENV"; fi
