"""Settings every component shares: where MLflow is and which model to use."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL_NAME = "sentiment-classifier"
DEFAULT_EXPERIMENT_NAME = "sentiment-classifier"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"


class MlflowSettings(BaseSettings):
    """MLflow connection and model naming; services subclass this to add their own settings."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    tracking_uri: str = Field(default="http://127.0.0.1:5000", validation_alias="MLFLOW_TRACKING_URI")
    model_name: str = Field(default=DEFAULT_MODEL_NAME, validation_alias="MODEL_NAME", min_length=1)
    experiment_name: str = Field(
        default=DEFAULT_EXPERIMENT_NAME, validation_alias="MLFLOW_EXPERIMENT_NAME", min_length=1
    )
