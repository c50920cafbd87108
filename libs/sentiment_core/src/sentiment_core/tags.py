"""Names of the tags on MLflow runs, model versions and the registered model.

The trainer writes them and the API and CLI read them; they live here, free of MLflow imports, so the lean
inference process can share them. Keep them stable: registered versions carry them for good.
"""

LINEAGE_TAG_PREFIX = "lineage."
TAG_GIT_COMMIT = "lineage.git_commit"
TAG_DATASET_FINGERPRINT = "lineage.dataset_fingerprint"
TAG_DVC_DATA_HASH = "lineage.dvc_data_hash"
TAG_PARAMS_HASH = "lineage.params_hash"
TAG_FLOW_RUN_ID = "lineage.prefect_flow_run_id"
# sha256 of the stored model.skops: checked before a version may serve.
TAG_MODEL_SHA256 = "model.sha256"
PROMOTION_TAG_PREFIX = "promotion."
TAG_PROMOTION_DECISION = "promotion.decision"
TAG_PROMOTION_REASON = "promotion.reason"
TAG_PROMOTION_CANDIDATE_SCORE = "promotion.candidate_f1"
TAG_PROMOTION_CHAMPION_SCORE = "promotion.champion_f1"
TAG_PROMOTION_CHAMPION_VERSION = "promotion.champion_version"
# On the registered model: the versions that held `champion`, oldest first, so rollback knows where to go.
TAG_CHAMPION_HISTORY = "champion.history"
# `metric.f1` etc. on a version: its held-out metrics, readable without fetching the run.
METRIC_TAG_PREFIX = "metric."
# The quality gate's held-out evidence on a version (sentiment_core.quality_gate): how many reviews its metrics
# were measured on and how many it predicted of each class there.
QUALITY_TAG_PREFIX = "quality."
TAG_HELD_OUT_SIZE = "quality.held_out_size"
TAG_PREDICTED_NEGATIVE = "quality.predicted_negative"
TAG_PREDICTED_POSITIVE = "quality.predicted_positive"
