"""Train the default model on the IMDb reviews and measure quality and shipping cost in one run.

Trains with `params.yaml` -> `model:` (plus `--param key=value` overrides) on the fixed held-out split
(`data.test_size` / `data.seed`), then measures: accuracy on the held-out split (a random split of the training
reviews: same films on both sides) and on the independent test file (official test split: other films), with ECE
(15 bins) and Brier score there, fit time, feature counts, the skops artifact size, its load time through
`load_pipeline`, single-text and batch predict latency. Then it fits the same config on *all* the reviews (what the
fit-time bar is about) and scores that model on the test file too. Reference configurations and `--variant`s are
trained and measured the same way in the same run: one frontier, compared like with like on a noisy machine.

    .venv/bin/python bench/train_quality.py [--data PATH] [--test-data PATH] [--out PATH] [--param C=16]
        [--reference none] [--variant "tri:ngram_max=3,n_features=4194304"]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from sentiment_core.data import load_dataset, load_test_set, split_dataset
from sentiment_core.evaluation import apply_temperature, fit_temperature, report_from_scores
from sentiment_core.model import ModelConfig, build_pipeline, load_pipeline, save_pipeline
from sentiment_core.params import load_params

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the clone, as in CI (see shared/data/imdb/SOURCE.md).
SHARED_DATA = ROOT.parent / "shared" / "data" / "imdb" / "reviews.csv.gz"
SHARED_TEST_DATA = ROOT.parent / "shared" / "data" / "imdb" / "test_sample.csv.gz"
DEFAULT_OUT = ROOT / "bench" / "results" / "train_quality.json"

# The bars from issue 14: accuracy and calibration on the independent test file (model fit on all the reviews),
# fit time on all the reviews, shipping cost of the artifact.
MIN_TEST_ACCURACY = 0.92
MAX_TEST_ECE = 0.02
MAX_FIT_SECONDS = 60.0
MAX_ARTIFACT_MB = 50.0
MAX_LOAD_SECONDS = 1.0
MAX_SINGLE_PREDICT_MS = 1.5

# sklearn's default token pattern: what the earlier models used.
SKLEARN_WORDS = r"(?u)\b\w\w+\b"


def reference_configs(base: ModelConfig) -> dict[str, ModelConfig]:
    """Configurations to measure next to the chosen one (fixed, whatever params.yaml says)."""
    return {
        # The usual strong baseline: vocabulary TF-IDF over word uni+bigrams, logistic regression.
        "tfidf-bigram": replace(
            base,
            vectorizer="tfidf",
            ngram_min=1,
            ngram_max=2,
            min_df=2,
            max_df=0.95,
            sublinear_tf=True,
            token_pattern=SKLEARN_WORDS,
            weighting="tfidf",
            C=8.0,
            dual=False,
        ),
        # The default before tuning: hashed word 1-3-grams, plain TF-IDF, primal liblinear.
        "previous-default": replace(
            base,
            vectorizer="hashing",
            ngram_min=1,
            ngram_max=3,
            n_features=2**21,
            sublinear_tf=True,
            token_pattern=SKLEARN_WORDS,
            weighting="tfidf",
            C=8.0,
            dual=False,
        ),
    }


@dataclass
class Measurement:
    name: str
    config: dict[str, Any]
    # Held-out split (random 20% of the training reviews; same films as training).
    accuracy: float
    f1: float
    roc_auc: float
    # The same model (fit on the other 80%) on the independent test file (other films).
    test_accuracy: float | None
    test_f1: float | None
    test_ece: float | None
    test_brier: float | None
    # The config fit on all the reviews (what ships after tuning), on the test file; fit time on all the reviews.
    full_test_accuracy: float | None
    full_test_ece: float | None
    full_test_brier: float | None
    full_fit_seconds: float | None
    # Temperature scaling fitted on the held-out split (80% model), then applied unchanged to the test-file
    # probabilities of both models: calibration without touching accuracy or the test file.
    held_out_temperature: float
    test_ece_scaled: float | None
    test_brier_scaled: float | None
    full_test_ece_scaled: float | None
    full_test_brier_scaled: float | None
    fit_seconds: float
    n_features: int
    nonzero_coefficients: int
    vocabulary_size: int | None
    artifact_bytes: int
    artifact_mb: float
    load_seconds_median: float
    load_seconds_all: list[float]
    single_predict_ms_median: float
    single_predict_ms_p99: float
    batch_predict_ms_per_text: float
    dataframe_input_ok: bool
    bars: dict[str, bool] = field(default_factory=dict)


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 4)


def measure(
    name: str,
    config: ModelConfig,
    train: pd.DataFrame,
    test: pd.DataFrame,
    workdir: Path,
    load_repeats: int,
    predict_calls: int,
    independent: pd.DataFrame | None = None,
    full: pd.DataFrame | None = None,
) -> Measurement:
    train_texts: list[str] = train["text"].tolist()
    test_texts: list[str] = test["text"].tolist()
    print(f"[{name}] fitting {config.to_dict()}", flush=True)

    started = time.perf_counter()
    pipeline = build_pipeline(config).fit(train_texts, train["label"].to_numpy())
    fit_seconds = time.perf_counter() - started
    held_out_labels = test["label"].to_numpy(dtype=int)
    held_out_probability = pipeline.predict_proba(test_texts)[:, 1]
    report = report_from_scores(held_out_labels, held_out_probability)
    temperature = fit_temperature(held_out_labels, held_out_probability)
    test_report = scaled_report = None
    if independent is not None:
        independent_labels = independent["label"].to_numpy(dtype=int)
        independent_probability = pipeline.predict_proba(independent["text"].tolist())[:, 1]
        test_report = report_from_scores(independent_labels, independent_probability)
        scaled_report = report_from_scores(independent_labels, apply_temperature(independent_probability, temperature))

    classifier = pipeline.named_steps["classify"]
    coefficients = np.asarray(classifier.coef_)
    vocabulary = getattr(pipeline.named_steps.get("tfidf"), "vocabulary_", None)

    path = workdir / f"{name}.skops"
    save_pipeline(pipeline, path)
    artifact_bytes = path.stat().st_size
    del pipeline
    gc.collect()

    load_times: list[float] = []
    loaded: Pipeline | None = None
    for _ in range(load_repeats):
        loaded = None
        gc.collect()
        started = time.perf_counter()
        loaded = load_pipeline(path)
        load_times.append(time.perf_counter() - started)
    assert loaded is not None
    path.unlink()

    # Serving input: a one-row DataFrame with a `text` column (MLflow pyfunc) must give the same answer.
    sample = test_texts[:20]
    dataframe_ok = bool(np.allclose(loaded.predict_proba(pd.DataFrame({"text": sample})), loaded.predict_proba(sample)))

    # Single-text latency on real reviews, cycling through the held-out texts, after a short warm-up.
    for text in test_texts[:20]:
        loaded.predict_proba([text])
    single: list[float] = []
    for index in range(predict_calls):
        text = test_texts[index % len(test_texts)]
        started = time.perf_counter()
        loaded.predict_proba([text])
        single.append(time.perf_counter() - started)

    started = time.perf_counter()
    loaded.predict_proba(test_texts)
    batch_per_text = (time.perf_counter() - started) / len(test_texts)
    del loaded
    gc.collect()

    full_report = full_scaled_report = None
    full_fit_seconds: float | None = None
    if full is not None:
        started = time.perf_counter()
        full_pipeline = build_pipeline(config).fit(full["text"].tolist(), full["label"].to_numpy())
        full_fit_seconds = time.perf_counter() - started
        if independent is not None:
            full_probability = full_pipeline.predict_proba(independent["text"].tolist())[:, 1]
            full_report = report_from_scores(independent["label"].to_numpy(dtype=int), full_probability)
            full_scaled_report = report_from_scores(
                independent["label"].to_numpy(dtype=int), apply_temperature(full_probability, temperature)
            )
        del full_pipeline
        gc.collect()

    load_median = statistics.median(load_times)
    artifact_mb = artifact_bytes / 1e6
    result = Measurement(
        name=name,
        config=config.to_dict(),
        accuracy=round(report.accuracy, 4),
        f1=round(report.f1, 4),
        roc_auc=round(report.roc_auc, 4),
        test_accuracy=round(test_report.accuracy, 4) if test_report else None,
        test_f1=round(test_report.f1, 4) if test_report else None,
        test_ece=round(test_report.ece, 4) if test_report else None,
        test_brier=round(test_report.brier, 4) if test_report else None,
        full_test_accuracy=round(full_report.accuracy, 4) if full_report else None,
        full_test_ece=round(full_report.ece, 4) if full_report else None,
        full_test_brier=round(full_report.brier, 4) if full_report else None,
        full_fit_seconds=round(full_fit_seconds, 2) if full_fit_seconds is not None else None,
        held_out_temperature=round(temperature, 3),
        test_ece_scaled=round(scaled_report.ece, 4) if scaled_report else None,
        test_brier_scaled=round(scaled_report.brier, 4) if scaled_report else None,
        full_test_ece_scaled=round(full_scaled_report.ece, 4) if full_scaled_report else None,
        full_test_brier_scaled=round(full_scaled_report.brier, 4) if full_scaled_report else None,
        fit_seconds=round(fit_seconds, 2),
        n_features=int(coefficients.shape[1]),
        nonzero_coefficients=int(np.count_nonzero(coefficients)),
        vocabulary_size=len(vocabulary) if vocabulary is not None else None,
        artifact_bytes=artifact_bytes,
        artifact_mb=round(artifact_mb, 2),
        load_seconds_median=round(load_median, 4),
        load_seconds_all=[round(value, 4) for value in load_times],
        single_predict_ms_median=_ms(statistics.median(single)),
        single_predict_ms_p99=_ms(float(np.percentile(single, 99))),
        batch_predict_ms_per_text=_ms(batch_per_text),
        dataframe_input_ok=dataframe_ok,
        bars={
            f"test_accuracy>={MIN_TEST_ACCURACY}": full_report is not None
            and full_report.accuracy >= MIN_TEST_ACCURACY,
            f"test_ece<={MAX_TEST_ECE}": full_report is not None and full_report.ece <= MAX_TEST_ECE,
            f"full_fit<={MAX_FIT_SECONDS:g}s": full_fit_seconds is not None and full_fit_seconds <= MAX_FIT_SECONDS,
            f"artifact<={MAX_ARTIFACT_MB:g}MB": artifact_mb <= MAX_ARTIFACT_MB,
            f"load<={MAX_LOAD_SECONDS:g}s": load_median <= MAX_LOAD_SECONDS,
            f"single_predict<={MAX_SINGLE_PREDICT_MS:g}ms": statistics.median(single) * 1000 <= MAX_SINGLE_PREDICT_MS,
        },
    )
    print(format_row(result), flush=True)
    return result


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_row(result: Measurement) -> str:
    return (
        f"{result.name:18s} held-out acc={result.accuracy:.4f} f1={result.f1:.4f} | test-file "
        f"acc={_fmt(result.test_accuracy)} ece={_fmt(result.test_ece)} brier={_fmt(result.test_brier)} | "
        f"fit-on-all: test acc={_fmt(result.full_test_accuracy)} ece={_fmt(result.full_test_ece)} "
        f"fit={result.full_fit_seconds}s | T(held-out)={result.held_out_temperature:.3f} scaled test ece "
        f"{_fmt(result.test_ece_scaled)} / fit-on-all {_fmt(result.full_test_ece_scaled)} | "
        f"fit(80%)={result.fit_seconds:6.2f}s "
        f"size={result.artifact_mb:7.2f}MB load={result.load_seconds_median:7.3f}s "
        f"single={result.single_predict_ms_median:.3f}ms (p99 {result.single_predict_ms_p99:.3f}) "
        f"batch={result.batch_predict_ms_per_text:.3f}ms/text "
        f"features={result.n_features} nonzero={result.nonzero_coefficients}"
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("DATA_SOURCE", str(SHARED_DATA))),
        help="text,label dataset (default: $DATA_SOURCE or the shared IMDb reviews)",
    )
    parser.add_argument(
        "--test-data",
        type=Path,
        default=Path(os.environ.get("DATA_TEST_SOURCE", str(SHARED_TEST_DATA))),
        help="independent test file, other films (default: $DATA_TEST_SOURCE or the shared test sample)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="another config to measure: params.yaml's model with these overrides (repeatable)",
    )
    parser.add_argument("--no-full-fit", action="store_true", help="skip the fit on all the reviews")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="params file (model: section)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. C=16 or model.C=16"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--reference",
        action="append",
        choices=[*reference_configs(ModelConfig()), "none"],
        help="reference configuration(s) to measure in the same run (default: all; 'none' skips them)",
    )
    parser.add_argument("--name", default="params", help="label of the params.yaml configuration in the output")
    parser.add_argument("--load-repeats", type=int, default=5)
    parser.add_argument("--predict-calls", type=int, default=500)
    return parser.parse_args(argv)


def parse_variants(items: list[str], params_file: Path, base: dict[str, str]) -> dict[str, ModelConfig]:
    """`NAME:k=v,k=v` -> the params.yaml model with `base` and these overrides."""
    variants: dict[str, ModelConfig] = {}
    for item in items:
        name, sep, spec = item.partition(":")
        if not sep or not name:
            raise SystemExit(f"--variant expects NAME:KEY=VALUE,..., got {item!r}")
        overrides = dict(base)
        for pair in filter(None, spec.split(",")):
            key, eq, value = pair.partition("=")
            if not eq:
                raise SystemExit(f"--variant {name}: expected KEY=VALUE, got {pair!r}")
            overrides[key.strip()] = value.strip()
        variants[name] = load_params(params_file, overrides).model
    return variants


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param expects KEY=VALUE, got {item!r}")
        overrides[key] = value
    params = load_params(args.params, overrides)
    references = args.reference or list(reference_configs(params.model))
    if "none" in references:
        references = []

    frame = load_dataset(args.data)
    split = split_dataset(frame, test_size=params.data.test_size, seed=params.data.seed)
    # Overlapping texts dropped (and counted) exactly as training does.
    independent = load_test_set(args.test_data, frame) if args.test_data.is_file() else None
    print(
        f"test file {args.test_data}: "
        + (
            f"{len(independent.frame)} rows, {independent.overlap_rows} dropped as seen in training"
            if independent
            else "absent"
        ),
        flush=True,
    )
    print(
        f"data {args.data}: {len(frame)} rows, train {len(split.train)}, test {len(split.test)} "
        f"(test_size={params.data.test_size}, seed={params.data.seed})",
        flush=True,
    )

    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="train-quality-") as tmp:
        workdir = Path(tmp)
        measured = {args.name: params.model}
        measured.update({name: reference_configs(params.model)[name] for name in references})
        measured.update(parse_variants(args.variant, args.params, overrides))
        for name, config in measured.items():
            results.append(
                measure(
                    name,
                    config,
                    split.train,
                    split.test,
                    workdir,
                    args.load_repeats,
                    args.predict_calls,
                    independent=independent.frame if independent else None,
                    full=None if args.no_full_fit else frame,
                )
            )
            gc.collect()

    model, others = results[0], results[1:]
    comparisons = {
        other.name: {
            "accuracy_delta": round(model.accuracy - other.accuracy, 4),
            "test_accuracy_delta": (
                round(model.full_test_accuracy - other.full_test_accuracy, 4)
                if model.full_test_accuracy is not None and other.full_test_accuracy is not None
                else None
            ),
            "f1_delta": round(model.f1 - other.f1, 4),
            "artifact_size_ratio": _ratio(model.artifact_bytes, other.artifact_bytes),
            "load_time_ratio": _ratio(model.load_seconds_median, other.load_seconds_median),
            "fit_time_ratio": _ratio(model.fit_seconds, other.fit_seconds),
            "single_predict_ratio": _ratio(model.single_predict_ms_median, other.single_predict_ms_median),
        }
        for other in others
    }
    payload: dict[str, Any] = {
        "data": {
            "path": str(args.data),
            "rows": len(frame),
            "train_rows": len(split.train),
            "test_rows": len(split.test),
            "test_size": params.data.test_size,
            "seed": params.data.seed,
            # The independent test file (other films): metrics named test_* / full_test_* in each measurement.
            "independent_test_path": str(args.test_data),
            "independent_test_rows": len(independent.frame) if independent else 0,
            "independent_test_overlap_dropped": independent.overlap_rows if independent else 0,
        },
        "bars": {
            "min_test_accuracy": MIN_TEST_ACCURACY,
            "max_test_ece": MAX_TEST_ECE,
            "max_fit_seconds": MAX_FIT_SECONDS,
            "max_artifact_mb": MAX_ARTIFACT_MB,
            "max_load_seconds": MAX_LOAD_SECONDS,
            "max_single_predict_ms": MAX_SINGLE_PREDICT_MS,
        },
        "model": asdict(model),
        "references": [asdict(other) for other in others],
        # Every measured config in one list: accuracy (held-out, test file) vs size vs load vs fit vs latency.
        "frontier": [
            {
                "name": r.name,
                "held_out_accuracy": r.accuracy,
                "test_accuracy": r.test_accuracy,
                "fit_on_all_test_accuracy": r.full_test_accuracy,
                "fit_on_all_test_ece": r.full_test_ece,
                "artifact_mb": r.artifact_mb,
                "load_seconds": r.load_seconds_median,
                "fit_on_all_seconds": r.full_fit_seconds,
                "single_predict_ms": r.single_predict_ms_median,
            }
            for r in results
        ],
        "model_vs_reference": comparisons,
        "all_bars_met": all(model.bars.values()),
        "environment": {
            "python": platform.python_version(),
            "sklearn": sklearn.__version__,
            "cpus": os.cpu_count(),
            # Other jobs share the machine: the load average says how noisy the timings are.
            "load_average_at_end": [round(value, 2) for value in os.getloadavg()],
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")

    print()
    for result in results:
        print(format_row(result))
    for name, comparison in comparisons.items():
        print(f"{args.name} vs {name}: {comparison}")
    print(f"bars: {model.bars} -> {'all met' if payload['all_bars_met'] else 'NOT all met'}")
    print(f"wrote {args.out}")
    return 0 if payload["all_bars_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
