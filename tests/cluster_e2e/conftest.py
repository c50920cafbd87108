"""tests/cluster_e2e runs only under `make cluster-e2e` (tests/cluster_e2e/run.sh): it needs the local test cluster
(harness/local-cluster) with the project images loaded, which that target starts and loads. Elsewhere it is skipped."""

from __future__ import annotations

import os

import pytest

REASON = "needs the local test cluster: run `make cluster-e2e`"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SENTIMENT_CLUSTER_E2E") == "1":
        return
    for item in items:
        if "cluster_e2e" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason=REASON))
