"""tests/compose_e2e runs only under `make compose-e2e` (tests/compose_e2e/run.sh): it needs the harness's own
Docker engine and the stand-in base images, which that target starts and builds. Elsewhere it is skipped."""

from __future__ import annotations

import os

import pytest

REASON = "needs the harness Docker engine: run `make compose-e2e`"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SENTIMENT_COMPOSE_E2E") == "1":
        return
    for item in items:
        if "compose_e2e" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason=REASON))
