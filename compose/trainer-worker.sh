#!/bin/sh
# Compose command of the `trainer` service (sentiment-trainer image, WORKDIR with prefect.yaml):
# register the `local` deployment of prefect.yaml (idempotent; creates its pool if missing; the `k8s` one would
# stay Scheduled forever here: no Kubernetes worker), then run the
# process worker that executes `sentiment-training/local` runs, from the CLI or the Prefect UI's "Run".
set -eu

: "${PREFECT_API_URL:?PREFECT_API_URL is not set}"
pool="${PREFECT_WORK_POOL:-sentiment-local}"
attempts="${DEPLOY_ATTEMPTS:-5}"

n=1
until sentiment-trainer deploy --only local; do
  if [ "$n" -ge "$attempts" ]; then
    echo "trainer: 'sentiment-trainer deploy' failed $n times against $PREFECT_API_URL" >&2
    exit 1
  fi
  echo "trainer: deploy attempt $n failed, retrying in 5 s" >&2
  n=$((n + 1))
  sleep 5
done

echo "trainer: starting a process worker on pool '$pool'"
exec prefect worker start --pool "$pool" --type process --with-healthcheck
