"""Two champion runs at once (the k8s deployment and a CLI run) on a real MLflow: promotions take turns.

Issue 15, item 2: the promote step reads the alias, compares, then writes; two overlapping runs could both read "no
champion yet" and both promote, or lose a `champion.history` entry. The register-and-promote section now holds the
registry's promotion lock.
"""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from sentiment_core import registry
from sentiment_core.settings import CHAMPION_ALIAS
from sentiment_trainer.flow import TrainingOutcome, training_flow
from services.trainer.tests.trainer_helpers import SMALL_MODEL

pytestmark = pytest.mark.slow

# Between reading the champion and moving the alias: long enough that, unserialised, both runs read it first.
WINDOW_SECONDS = 5.0


def test_two_overlapping_champion_runs_promote_one_after_the_other(
    trainer_data: Path, tracking_uri: str, prefect_api: str, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_promote = registry.promote
    inside = 0
    most_inside = 0
    guard = threading.Lock()

    def slow_promote(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside, most_inside
        with guard:
            inside += 1
            most_inside = max(most_inside, inside)
        try:
            time.sleep(WINDOW_SECONDS)
            return real_promote(*args, **kwargs)
        finally:
            with guard:
                inside -= 1

    monkeypatch.setattr(registry, "promote", slow_promote)

    def run(seed: int) -> TrainingOutcome:
        return training_flow(
            data_path=str(trainer_data),
            overrides={**SMALL_MODEL, "data.seed": seed},
            set_champion=True,
            experiment_name=model_name,
            model_name=model_name,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        # Each thread gets a copy of this context: Prefect's API URL is a context-scoped setting (prefect_api).
        futures = [pool.submit(contextvars.copy_context().run, run, seed) for seed in (1, 2)]
        outcomes = [future.result() for future in futures]

    client = MlflowClient(tracking_uri)
    assert most_inside == 1, "both runs were between reading and moving the champion at once"
    first_promotions = [o for o in outcomes if o.reason == "no champion yet"]
    assert len(first_promotions) == 1, [o.reason for o in outcomes]
    later = next(o for o in outcomes if o is not first_promotions[0])
    # The later run compared with the earlier run's champion, on its own split.
    assert later.champion_version == first_promotions[0].version
    promoted = sorted((o.version for o in outcomes if o.promoted), key=int)
    assert registry.champion_history(client, model_name) == promoted
    assert registry.alias_version(client, model_name, CHAMPION_ALIAS).version == promoted[-1]
    # The lock is released: no registered model of that name is left.
    assert client.search_registered_models(f"name='{model_name}{registry.PROMOTION_LOCK_SUFFIX}'") == []
