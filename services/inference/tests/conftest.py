"""Fixtures of the inference tests: tiny real models, models logged on the shared MLflow, the service process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sentiment_local.servers import HttpServer, start_inference
from services.inference.tests.inference_helpers import (
    BASE_ENV,
    ModelRegistry,
    SharedLogged,
    TinyModels,
    make_tiny_models,
    sha256,
    skops_bytes,
)


@pytest.fixture(scope="session")
def tiny_models(imdb_path: Path) -> TinyModels:
    return make_tiny_models(imdb_path)


@pytest.fixture(scope="session")
def shared_registry(mlflow_server: HttpServer, tiny_models: TinyModels) -> ModelRegistry:
    return ModelRegistry(mlflow_server.url, tiny_models)


@pytest.fixture(scope="session")
def shared_logged(shared_registry: ModelRegistry, tiny_models: TinyModels) -> SharedLogged:
    """Logged once per session on the shared server; each test registers them under its own model name."""
    reg = shared_registry
    garbage = b"PK\x03\x04 this is not a skops archive"
    return SharedLogged(
        good_a=reg.log(tiny_models.good_a),
        good_b=reg.log(tiny_models.good_b),
        single_class=reg.log(tiny_models.single_class),
        # A valid skops file, but not the one whose hash the registry recorded.
        hash_mismatch=reg.log_with_artifact(tiny_models.good_a, skops_bytes(tiny_models.good_b), None),
        # The registry's hash matches, but the bytes are not a loadable model.
        unloadable=reg.log_with_artifact(tiny_models.good_a, garbage, sha256(garbage)),
    )


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., HttpServer]]:
    """Start `sentiment-inference` (the console script, under uvicorn); every one is stopped after the test."""
    started: list[HttpServer] = []

    def start(tracking_uri: str, model_name: str, **env: str) -> HttpServer:
        server = start_inference(
            tmp_path / f"inference-{len(started)}",
            tracking_uri,
            env={**BASE_ENV, "MODEL_NAME": model_name, **env},
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.process.stop()
