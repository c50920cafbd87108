"""Session fixtures of the chart tests (helpers live in tests/charts/chartlib.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts.chartlib import build_kube_schemas


@pytest.fixture(scope="session")
def kube_schemas() -> Path:
    """Offline strict standalone Kubernetes schemas for kubeconform, built once per session."""
    return build_kube_schemas()
