#!/usr/bin/env bash
# `make cluster-e2e`: the Kubernetes path for real on this machine. Starts the harness Docker engine, builds the
# stand-in base images and the project images (`make images`, the user's command), starts the local cluster
# (`make cluster-up`), loads the images into its node, stops the engine (the node has them now; it frees memory),
# runs tests/cluster_e2e (`make deploy`, `make train`, ... as k8s-dev/README.md tells), and always stops the
# cluster and the engine at the end, checking they left nothing behind.
# KEEP_CLUSTER=1 leaves the cluster running afterwards (iterating on the tests).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
engine="$root/harness/container-engine/engine.sh"
results="$root/bench/results/cluster_e2e.json"
cd "$root"

say() { printf '[cluster-e2e] %s\n' "$*"; }

# Peak memory of the whole machine while the test runs (MemTotal - MemAvailable), sampled every 2 s.
peak_file="$(mktemp)"
sample_memory() {
  local peak=0 used
  while sleep 2; do
    used=$(awk '/^MemTotal/ {t=$2} /^MemAvailable/ {a=$2} END {print int((t-a)/1024)}' /proc/meminfo)
    if ((used > peak)); then
      peak=$used
      echo "$peak" >"$peak_file"
    fi
  done
}

finish() {
  local status=$?
  kill "$sampler" 2>/dev/null || true
  if [[ "${KEEP_CLUSTER:-0}" != "1" ]]; then
    make --no-print-directory cluster-down || status=1
  fi
  bash "$engine" down || status=1
  rm -f "$peak_file"
  exit "$status"
}

sample_memory &
sampler=$!
trap finish EXIT

started=$(date +%s)
bash "$engine" up
eval "$(bash "$engine" env)"
bash "$root/harness/stand-in-images/build.sh"
# One tag for the whole run (an edit to the tree while it runs would change the computed one).
IMAGE_TAG="$(bash scripts/charts/kind-loop.sh tag)"
export IMAGE_TAG
tag="$IMAGE_TAG"
make --no-print-directory images
built=$(date +%s)
say "engine, stand-ins and images (tag $tag) ready in $((built - started)) s"

make --no-print-directory cluster-up
up=$(date +%s)
say "cluster up in $((up - built)) s"
make --no-print-directory cluster-load
bash "$engine" down
loaded=$(date +%s)
say "images loaded in $((loaded - up)) s"

# What `make cluster-up` leaves for make (KUBECONFIG, the values overlay) is what the test's make calls read.
KUBECONFIG="$(bash "$root/harness/local-cluster/cluster.sh" kubeconfig)"
export KUBECONFIG
SENTIMENT_CLUSTER_E2E=1 "$root/.venv/bin/pytest" tests/cluster_e2e -p no:cacheprovider -v -s "$@"
done_at=$(date +%s)

mkdir -p "$(dirname "$results")"
"$root/.venv/bin/python" - "$results" <<EOF
import json, sys
from pathlib import Path
path = Path(sys.argv[1])
data = json.loads(path.read_text()) if path.is_file() else {}
data.update({
    "builds_seconds": $((built - started)),
    "cluster_up_seconds": $((up - built)),
    "load_images_seconds": $((loaded - up)),
    "tests_seconds": $((done_at - loaded)),
    "total_seconds": $((done_at - started)),
    "peak_memory_used_mb": int(Path("$peak_file").read_text() or 0),
})
path.write_text(json.dumps(data, indent=2) + "\n")
print(json.dumps(data, indent=2))
EOF
say "total $((done_at - started)) s"
