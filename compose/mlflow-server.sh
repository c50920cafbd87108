#!/bin/sh
# Compose command of the `mlflow` service (sentiment-mlflow image): migrate the backend store, then serve.
# Artifacts are proxied (--serve-artifacts) to s3://mlflow on MinIO: clients need only MLFLOW_TRACKING_URI.
# The database URI (with its password) stays in the environment: `mlflow server` reads MLFLOW_BACKEND_STORE_URI
# and the migration reads the same variable, so `ps` / `docker top` never show the password.
set -eu

: "${MLFLOW_BACKEND_STORE_URI:?MLFLOW_BACKEND_STORE_URI is not set}"
: "${MLFLOW_SERVER_ALLOWED_HOSTS:?MLFLOW_SERVER_ALLOWED_HOSTS is not set}"

echo "mlflow: upgrading the backend store schema"
python -m sentiment_mlflow_server.db_upgrade

echo "mlflow: serving on 0.0.0.0:5000, artifacts in ${MLFLOW_ARTIFACTS_DESTINATION:-s3://mlflow}"
exec mlflow server \
  --host 0.0.0.0 \
  --port 5000 \
  --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-s3://mlflow}" \
  --serve-artifacts \
  --allowed-hosts "$MLFLOW_SERVER_ALLOWED_HOSTS" \
  -w "${MLFLOW_WORKERS:-1}"
