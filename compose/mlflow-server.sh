#!/bin/sh
# Compose command of the `mlflow` service (sentiment-mlflow image): migrate the backend store, then serve.
# Artifacts are proxied (--serve-artifacts) to s3://mlflow on MinIO: clients need only MLFLOW_TRACKING_URI.
set -eu

: "${MLFLOW_BACKEND_STORE_URI:?MLFLOW_BACKEND_STORE_URI is not set}"
: "${MLFLOW_SERVER_ALLOWED_HOSTS:?MLFLOW_SERVER_ALLOWED_HOSTS is not set}"

echo "mlflow: upgrading the backend store schema"
mlflow db upgrade "$MLFLOW_BACKEND_STORE_URI"

echo "mlflow: serving on 0.0.0.0:5000, artifacts in ${MLFLOW_ARTIFACTS_DESTINATION:-s3://mlflow}"
exec mlflow server \
  --host 0.0.0.0 \
  --port 5000 \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-s3://mlflow}" \
  --serve-artifacts \
  --allowed-hosts "$MLFLOW_SERVER_ALLOWED_HOSTS" \
  -w "${MLFLOW_WORKERS:-1}"
