"""Undo a failed run's registry changes: snapshot what a run may change, then give back exactly what it took.

Why: a run that fails after registering must not leave a version (or an alias on it) that looks like a result.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sentiment_core import registry
from sentiment_trainer.steps import versions_of_run


@dataclass(frozen=True)
class RegistrySnapshot:
    """The registry state a run may change, taken before it registers anything."""

    model_existed: bool
    aliases: dict[str, str]


def snapshot_registry(client: MlflowClient, model_name: str) -> RegistrySnapshot:
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as error:
        if registry.is_not_found(error):
            return RegistrySnapshot(model_existed=False, aliases={})
        raise
    return RegistrySnapshot(
        model_existed=True, aliases={alias: str(version) for alias, version in (model.aliases or {}).items()}
    )


def undo_registration(client: MlflowClient, model_name: str, run_id: str, snapshot: RegistrySnapshot) -> list[str]:
    """Delete the versions `run_id` registered and give back the aliases they took. Returns the deleted versions.

    Only our own changes are undone: an alias pointing at another version is left alone, even if it moved since the
    snapshot (another run may have moved it).
    """
    ours = versions_of_run(client, model_name, run_id)
    if not ours:
        return []
    model = client.get_registered_model(model_name)
    for alias, version in (model.aliases or {}).items():
        if str(version) not in ours:
            continue
        previous = snapshot.aliases.get(alias)
        if previous is not None and previous not in ours:
            client.set_registered_model_alias(model_name, alias, previous)
        else:
            client.delete_registered_model_alias(model_name, alias)
    history = registry.champion_history(client, model_name)
    kept = [version for version in history if version not in ours]
    if kept != history:
        if kept:
            client.set_registered_model_tag(model_name, registry.TAG_CHAMPION_HISTORY, ",".join(kept))
        else:
            client.delete_registered_model_tag(model_name, registry.TAG_CHAMPION_HISTORY)
    for version in ours:
        client.delete_model_version(model_name, version)
    if not snapshot.model_existed and not client.search_model_versions(f"name='{model_name}'"):
        client.delete_registered_model(model_name)
    return ours
