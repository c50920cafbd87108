"""The poller's only view of MLflow: which version holds the alias, and that pinned version's pipeline.

Blocking calls (the MLflow client is synchronous): the poller runs them in a worker thread. MLflow is
imported on first use, so the server listens before `import mlflow` (seconds on a small machine) is paid.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sentiment_core.drift import DriftReference
from sentiment_core.tags import TAG_MODEL_SHA256
from sentiment_inference.model_store import ModelRejectedError


class FetchFailedError(Exception):
    """The registry or the artifact store could not be reached or read: transient, retried with backoff."""


@dataclass(frozen=True)
class ChampionRef:
    """The version an alias points at, with the tags the registry recorded for it."""

    version: str
    run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class RegistryGateway(Protocol):
    def champion(self) -> ChampionRef | None:
        """The version holding the alias now; None when there is no such alias (or model) yet."""
        ...

    def fetch(self, ref: ChampionRef) -> Any:
        """Download the pinned version, verify it against the recorded hash, load it safely."""
        ...

    def champion_history(self) -> list[ChampionRef]:
        """The versions that held the alias before, newest first, that still exist (for the start-up fallback)."""
        ...


class MlflowGateway:
    """RegistryGateway over `sentiment_core.registry` (download pinned version, skops allow-list, sha256 tag)."""

    def __init__(self, tracking_uri: str, model_name: str, alias: str) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.alias = alias
        self._client: Any = None

    def _mlflow_client(self) -> Any:
        if self._client is None:
            from sentiment_core import registry

            self._client = registry.client(self.tracking_uri)
        return self._client

    def champion(self) -> ChampionRef | None:
        from sentiment_core import registry

        found = registry.alias_version(self._mlflow_client(), self.model_name, self.alias)
        if found is None:
            return None
        return ChampionRef(version=str(found.version), run_id=found.run_id, tags=dict(found.tags or {}))

    def drift_reference(self, ref: ChampionRef) -> DriftReference | None:
        """The version's drift reference profile (a run artifact); None when its run logged none."""
        from sentiment_core import registry

        return registry.load_drift_reference(self._mlflow_client(), ref.run_id) if ref.run_id else None

    def champion_history(self) -> list[ChampionRef]:
        from sentiment_core import registry

        client = self._mlflow_client()
        refs: list[ChampionRef] = []
        seen: set[str] = set()
        for version in reversed(registry.champion_history(client, self.model_name)):
            if version in seen:
                continue
            seen.add(version)
            try:
                found = registry.get_version(client, self.model_name, version)
            except registry.RegistryError:
                continue  # deleted since it was champion
            refs.append(ChampionRef(version=version, run_id=found.run_id, tags=dict(found.tags or {})))
        return refs

    def fetch(self, ref: ChampionRef) -> Any:
        from sentiment_core import registry
        from sentiment_core.model import load_pipeline

        client = self._mlflow_client()
        with tempfile.TemporaryDirectory(prefix="sentiment-model-") as scratch:
            try:
                # models:/<name>/<version>, never the alias: what was checked is what gets loaded.
                model_file = registry.download_version(client, self.model_name, ref.version, Path(scratch))
            except registry.RegistryError as error:
                raise ModelRejectedError(str(error)) from error
            except Exception as error:
                raise FetchFailedError(f"downloading version {ref.version} failed: {error}") from error
            try:
                registry.verify_artifact(model_file, ref.tags.get(TAG_MODEL_SHA256), f"version {ref.version}")
            except registry.RegistryError as error:
                raise ModelRejectedError(str(error)) from error
            try:
                # skops with the explicit allow-list of our pipeline's types; no arbitrary pickle.
                return load_pipeline(model_file)
            except Exception as error:
                raise ModelRejectedError(f"version {ref.version} cannot be loaded safely: {error}") from error
