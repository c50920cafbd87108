"""The trainer's settings: the library's MLflow settings plus what only the trainer reads, all from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from sentiment_core.settings import MlflowSettings


class TrainerSettings(MlflowSettings):
    """`MLFLOW_TRACKING_URI`, `MODEL_NAME`, `MLFLOW_EXPERIMENT_NAME` (inherited) and the trainer's own variables."""

    # params.yaml to read when none is given on the command line; unset = look for params.yaml upwards from the cwd.
    params_file: Path | None = Field(default=None, validation_alias="PARAMS_FILE")
    # `prepare --source` default: a local dataset file instead of downloading the official archive.
    data_source: Path | None = Field(default=None, validation_alias="DATA_SOURCE")
    # The dataset file training reads and `prepare` writes, instead of params.yaml `data.path` (a container
    # keeps it on a writable volume, apart from the read-only params.yaml).
    data_path: Path | None = Field(default=None, validation_alias="DATA_PATH")
    # `prepare` downloads the official archive from here when set: a mirror with the same bytes (checked against the
    # publisher's MD5 unless DATA_ARCHIVE_MD5 names the mirror's own).
    data_archive_url: str | None = Field(default=None, validation_alias="DATA_ARCHIVE_URL")
    data_archive_md5: str | None = Field(default=None, validation_alias="DATA_ARCHIVE_MD5", pattern=r"^[0-9a-f]{32}$")
    # `prepare --test-source` default: a local independent test file (official test split) for offline machines.
    data_test_source: Path | None = Field(default=None, validation_alias="DATA_TEST_SOURCE")
    # The independent test file training reads; unset = params.yaml `data.test_path`'s file name beside the dataset.
    data_test_path: Path | None = Field(default=None, validation_alias="DATA_TEST_PATH")
    # Directory holding prefect.yaml; the `local` deployment's working directory.
    trainer_dir: Path | None = Field(default=None, validation_alias="TRAINER_DIR")
    prefect_api_url: str | None = Field(default=None, validation_alias="PREFECT_API_URL")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", validation_alias="LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="LOG_FORMAT")

    @field_validator(
        "params_file", "data_source", "data_path", "data_test_source", "data_test_path", "trainer_dir", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose passes `DATA_SOURCE=` for "not set": an empty path would otherwise mean the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    def from_environment(self, field: str) -> bool:
        """True when `field` was set by an environment variable rather than left at its default.

        Precedence needs it: an explicit MODEL_NAME beats params.yaml, the library default does not.
        """
        return field in self.model_fields_set
