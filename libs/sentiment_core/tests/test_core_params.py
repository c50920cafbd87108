"""params.yaml and its overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment_core.model import ModelConfig
from sentiment_core.params import load_params

REPO_PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


def test_repo_params_match_the_model_defaults() -> None:
    """params.yaml is the source of truth, and the library's defaults agree with it."""
    params = load_params(REPO_PARAMS)
    assert params.model == ModelConfig()
    assert params.model_name == "sentiment-classifier"
    assert params.flat()["data.test_size"] == params.data.test_size


def test_overrides(tmp_path: Path) -> None:
    params = load_params(REPO_PARAMS, {"C": "0.5", "data.seed": "3", "promotion.min_improvement": "0.01"})
    assert params.model.C == 0.5
    assert params.data.seed == 3
    assert params.promotion.min_improvement == 0.01


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"data.nope": "1"}, "unknown data parameter"),
        ({"train.C": "1"}, "unknown parameter section"),
        ({"data.seed": "x"}, "data.seed must be int"),
        ({"model.C": "-1"}, "C must be > 0"),
        # Issue 12, item 11: refused when the config is read, before anything trains, naming the parameter.
        ({"promotion.min_improvement": "-1"}, "promotion.min_improvement must be a number >= 0"),
        ({"promotion.min_improvement": "nan"}, "promotion.min_improvement must be a number >= 0"),
        ({"promotion.min_accuracy": "1.5"}, "promotion.min_accuracy must be a number between 0 and 1"),
        ({"promotion.min_held_out": "1"}, "promotion.min_held_out must be an integer >= 2"),
        ({"model.nb_alpha": "nan"}, "model.nb_alpha must be a finite number, got nan"),
        ({"model.C": "inf"}, "model.C must be a finite number"),
        ({"data.test_size": "0"}, "data.test_size must be between 0 and 1"),
        ({"data.test_size": "nan"}, "data.test_size must be between 0 and 1"),
        ({"data.sample_size": "-5"}, "data.sample_size must be >= 0"),
        ({"data.seed": "-1"}, "data.seed must be between 0 and 2\\*\\*32 - 1"),
    ],
)
def test_bad_overrides(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_params(REPO_PARAMS, overrides)


def test_repo_params_promotion_floors_match_the_library_defaults() -> None:
    """The API has no params.yaml: it uses QualityFloors' defaults, so they must be the file's."""
    from sentiment_core.quality_gate import QualityFloors

    assert load_params(REPO_PARAMS).promotion.floors() == QualityFloors()


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_params(tmp_path / "none.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("training: {}\n")
    with pytest.raises(ValueError, match="unknown section"):
        load_params(bad)


def test_settings_stay_light() -> None:
    import subprocess
    import sys

    # Importing the settings must not drag in pandas or scikit-learn (the API's workers start on it).
    probe = "import sys, sentiment_core.settings; print('pandas' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
