"""Text cleaning, which the pipeline runs for training and serving alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentiment_core.text import TextCleaner, as_text_list, clean_text


def test_clean_text_strips_html_and_normalises() -> None:
    assert clean_text("Great<br /><br />MOVIE!!  Loved   it") == "great movie!! loved it"
    assert clean_text("caf\u0065\u0301 &amp; ﬁlm") == "café & film"
    assert clean_text("  \t\n ") == ""


@pytest.mark.parametrize(
    "given",
    [
        ["Good <b>film</b>", "Bad"],
        pd.DataFrame({"text": ["Good <b>film</b>", "Bad"]}),
        pd.Series(["Good <b>film</b>", "Bad"]),
        np.array(["Good <b>film</b>", "Bad"]),
        ("Good <b>film</b>", "Bad"),
    ],
)
def test_cleaner_accepts_strings_and_dataframes(given: object) -> None:
    assert TextCleaner().fit_transform(given) == ["good film", "bad"]


def test_cleaner_rejects_a_bare_string_and_wrong_frames() -> None:
    with pytest.raises(TypeError, match="single string"):
        as_text_list("just one")
    with pytest.raises(ValueError, match="'text' column"):
        as_text_list(pd.DataFrame({"a": ["x"], "b": ["y"]}))
