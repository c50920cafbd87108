"""Drift profiles and PSI: the numbers agree with their definitions, shifted samples score high, profiles round-trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sentiment_core.drift import (
    SIGNALS,
    Binned,
    DriftReference,
    DriftReferenceError,
    SeenTokens,
    binned,
    build_reference,
    psi,
    sample_from_scores,
    status_of,
    text_stats,
)

TRAIN = [
    "A wonderful film with a great cast and a moving story.",
    "The plot was dull and the acting was terrible.",
    "I loved the music, the actors and the ending!",
    "Boring, too long and badly written. Avoid it.",
] * 5


def test_psi_matches_its_definition() -> None:
    expected = [0.5, 0.5]
    actual = [0.9, 0.1]
    by_hand = (0.9 - 0.5) * math.log(0.9 / 0.5) + (0.1 - 0.5) * math.log(0.1 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(expected, expected) == 0.0
    assert psi([0.2, 0.3, 0.5], [0.5, 0.3, 0.2]) == pytest.approx(psi([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]))


@pytest.mark.parametrize(
    ("expected", "actual"), [([1.0], [1.0]), ([0.5, 0.5], [1.0, 0.0]), ([0.5, 0.5], [0.3, 0.3, 0.4])]
)
def test_psi_refuses_unusable_shares(expected: list[float], actual: list[float]) -> None:
    with pytest.raises(ValueError, match="PSI"):
        psi(expected, actual)


def test_status_thresholds_are_inclusive() -> None:
    assert [status_of(s, 0.1, 0.25) for s in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "ok",
        "ok",
        "warning",
        "warning",
        "drift",
        "drift",
    ]


def test_deciles_give_even_bins_and_merge_point_masses() -> None:
    rng = np.random.default_rng(0)
    spread = binned(rng.normal(size=10_000))
    assert len(spread.edges) == 9
    assert all(share == pytest.approx(0.1, abs=0.01) for share in spread.shares)
    # 70% zeros (texts with no unseen token): one bin for the mass, no empty bins between equal edges.
    mostly_zero = binned(np.concatenate([np.zeros(700), rng.uniform(0.01, 0.2, 300)]))
    assert mostly_zero.shares[0] == pytest.approx(0.7, abs=0.01)
    assert list(mostly_zero.edges) == sorted(set(mostly_zero.edges))


def test_same_distribution_scores_low_and_a_shift_scores_high() -> None:
    rng = np.random.default_rng(1)
    reference = binned(rng.normal(size=5000))
    same = reference.counts(rng.normal(size=1000))
    shifted = reference.counts(rng.normal(loc=1.0, size=1000))
    assert psi(reference.shares, (same + 0.5) / (same + 0.5).sum()) < 0.05
    assert psi(reference.shares, (shifted + 0.5) / (shifted + 0.5).sum()) > 0.25


def test_text_stats_count_tokens_and_unseen_share() -> None:
    seen = SeenTokens.from_texts(["good film", "bad film"], n_buckets=2**12)
    stats = text_stats(["Good FILM", "good zyxwv qwert film", "", "<br />"], seen)
    assert stats.lengths.tolist() == [2, 4, 0, 0]
    assert stats.unseen_shares.tolist() == [0.0, 0.5, 0.0, 0.0]


def test_reference_round_trips_through_json() -> None:
    proba = np.linspace(0.01, 0.99, len(TRAIN))
    reference = build_reference(TRAIN, TRAIN, proba)
    again = DriftReference.from_dict(json.loads(json.dumps(reference.to_dict())))
    assert again.n_samples == len(TRAIN)
    assert set(again.signals) == set(SIGNALS)
    assert again.signals == reference.signals
    assert np.array_equal(again.seen.bits, reference.seen.bits)
    assert again.signals["positive_rate"].edges == (0.5,)


def test_reference_scores_its_own_sample_near_zero_and_shifted_traffic_high() -> None:
    rng = np.random.default_rng(2)
    proba = rng.uniform(0, 1, len(TRAIN))
    reference = build_reference(TRAIN, TRAIN, proba)
    own = reference.score(sample_from_scores(TRAIN, proba, reference.seen))
    assert all(score.score < 0.05 for score in own.values())

    foreign = ["Der Server antwortet nicht, bitte später erneut versuchen."] * 20
    flood = reference.score(sample_from_scores(foreign, np.full(len(foreign), 0.98), reference.seen))
    assert flood["positive_rate"].score > 0.25
    assert flood["unseen_tokens"].score > 0.25
    assert flood["unseen_tokens"].live_mean > 0.9
    short = reference.score(sample_from_scores(["great"] * 20, np.full(20, 0.6), reference.seen))
    assert short["text_length"].score > 0.25
    assert short["text_length"].live_mean == 1.0


def test_scoring_an_empty_window_is_refused() -> None:
    reference = build_reference(TRAIN, TRAIN, np.full(len(TRAIN), 0.7))
    empty = sample_from_scores([], np.zeros(0), reference.seen)
    with pytest.raises(ValueError, match="empty window"):
        reference.score(empty)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw.update(schema_version=99), "schema_version"),
        (lambda raw: raw["signals"].pop("confidence"), "malformed"),
        (lambda raw: raw["seen_tokens"].update(bitmap_zlib_b64="not base64!"), "base64"),
        (lambda raw: raw["seen_tokens"].update(n_buckets=2**13), "bits, expected"),
        (lambda raw: raw["signals"]["text_length"].update(shares=[0.5, 0.5]), "shares"),
    ],
)
def test_a_malformed_reference_is_a_clear_error(mutate: object, message: str) -> None:
    raw = build_reference(TRAIN, TRAIN, np.full(len(TRAIN), 0.7)).to_dict()
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(DriftReferenceError, match=message):
        DriftReference.from_dict(raw)


def test_binned_validates_its_shape() -> None:
    with pytest.raises(DriftReferenceError, match="edges need"):
        Binned(edges=(1.0,), shares=(1.0,), mean=0.0)
    with pytest.raises(DriftReferenceError, match="increasing"):
        Binned(edges=(2.0, 1.0), shares=(0.3, 0.3, 0.4), mean=0.0)
