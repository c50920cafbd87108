#!/usr/bin/env bash
# The kind developer loop behind the Makefile's "Kubernetes (kind + Helm)" targets. Each step is idempotent.
#   kind-loop.sh up | images | load | deploy | upload-data FILE | port-forward | down | tag
# Overrides (environment): KIND_CLUSTER (sentiment), K8S_NAMESPACE (mlops), HELM_RELEASE (sentiment),
# IMAGE_TAG (default: the git sha, plus a content hash when the tree has uncommitted changes),
# DEPLOY_VALUES (extra values files, space-separated, after the kind profile; `make cluster-up` sets it for the
# local test cluster), HELM_ARGS (extra `helm upgrade` arguments, e.g. "--set inference.replicaCount=2").
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster="${KIND_CLUSTER:-sentiment}"
namespace="${K8S_NAMESPACE:-mlops}"
release="${HELM_RELEASE:-sentiment}"
chart="$root/charts/sentiment-platform"
kind_config="$root/k8s-dev/kind-config.yaml"
kind_values="$root/k8s-dev/values-kind.yaml"
# image name -> Dockerfile folder under services/
images=(sentiment-trainer:trainer sentiment-inference:inference sentiment-mlflow:mlflow)

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "'$tool' is not installed or not on PATH (see k8s-dev/README.md, prerequisites)"
  done
}

# Same tag for `images`, `load` and `deploy`: the commit, and for a dirty tree a hash of the changes, so a
# rebuilt image gets a new tag and `deploy` rolls the pods.
image_tag() {
  if [[ -n "${IMAGE_TAG:-}" ]]; then
    printf '%s\n' "$IMAGE_TAG"
    return
  fi
  local sha changes
  sha="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo nogit)"
  changes="$(git -C "$root" status --porcelain --untracked-files=normal 2>/dev/null || true)"
  if [[ -n "$changes" ]]; then
    sha="$sha-dirty-$({ git -C "$root" diff HEAD 2>/dev/null; printf '%s' "$changes"; } | sha256sum | cut -c1-8)"
  fi
  printf '%s\n' "$sha"
}

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx "$cluster"
}

cmd_up() {
  need kind kubectl docker
  if cluster_exists; then
    log "kind cluster '$cluster' already exists"
  else
    log "creating kind cluster '$cluster' ($kind_config)"
    kind create cluster --name "$cluster" --config "$kind_config" --wait 180s
  fi
  kubectl config use-context "kind-$cluster" >/dev/null
  kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
  log "cluster ready: kubectl context kind-$cluster, namespace $namespace"
}

cmd_images() {
  need docker
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    die "no Docker engine answers${DOCKER_HOST:+ at $DOCKER_HOST}: start Docker (tests: make engine-up; eval \"\$(harness/container-engine/engine.sh env)\")"
  local tag entry name dir
  tag="$(image_tag)"
  for entry in "${images[@]}"; do
    name="${entry%%:*}"
    dir="${entry##*:}"
    log "docker build $name:$tag (services/$dir/Dockerfile)"
    # BuildKit (RUN --mount): the default on Engine >= 23; older engines (the test harness's 20.10) need it asked.
    DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-1}" docker build --file "$root/services/$dir/Dockerfile" \
      --build-arg "GIT_COMMIT=$(git -C "$root" rev-parse HEAD)" --tag "$name:$tag" "$root"
  done
}

cmd_load() {
  need docker kind
  cluster_exists || die "kind cluster '$cluster' does not exist: run 'make kind-up'"
  local tag entry name archive
  tag="$(image_tag)"
  archive="$(mktemp "${TMPDIR:-/tmp}/sentiment-image.XXXXXX.tar")"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "rm -f '$archive'" EXIT
  for entry in "${images[@]}"; do
    name="${entry%%:*}"
    docker image inspect "$name:$tag" >/dev/null 2>&1 || die "image $name:$tag not found: run 'make images' first"
    # `docker save` + image-archive works with Docker's containerd image store, where
    # `kind load docker-image` fails on multi-platform image indexes.
    log "loading $name:$tag into kind cluster '$cluster'"
    docker save --output "$archive" "$name:$tag"
    kind load image-archive "$archive" --name "$cluster"
  done
}

cmd_deploy() {
  need helm kubectl
  local tag
  tag="$(image_tag)"
  local extra=() file
  for file in ${DEPLOY_VALUES:-}; do
    [[ -f "$file" ]] || die "values file '$file' (DEPLOY_VALUES) does not exist"
    extra+=(--values "$file")
  done
  # shellcheck disable=SC2206  # HELM_ARGS is a list of words on purpose
  extra+=(${HELM_ARGS:-})
  log "helm upgrade --install $release (images tagged $tag) in namespace $namespace"
  helm upgrade --install "$release" "$chart" \
    --namespace "$namespace" --create-namespace \
    --values "$kind_values" \
    "${extra[@]}" \
    --set-string "images.tag=$tag" \
    --wait --timeout 15m
  log "deployed; 'make port-forward' opens the UIs, 'make train' trains, 'make smoke' predicts"
}

# Offline clusters (training.data.prepare.mode=upload): copy a prepared dataset into the PVC through the pod of
# the prepare Job, which waits for it. Copied under a temporary name, then renamed: the Job never sees half a file.
cmd_upload_data() {
  need kubectl
  local file="${1:-}" pod target partial
  [[ -n "$file" ]] || die "usage: make upload-data DATA=<dataset file, e.g. data/reviews.csv.gz>"
  [[ -s "$file" ]] || die "dataset file '$file' does not exist or is empty"
  pod="$(kubectl -n "$namespace" get pods \
    -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=prepare-data" \
    --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)"
  if [[ -z "$pod" ]]; then
    # No waiting pod: the current revision's prepare Job may have found the dataset already (it keeps a file).
    local succeeded
    succeeded="$(kubectl -n "$namespace" get jobs -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=prepare-data" \
      -o jsonpath='{range .items[*]}{.status.succeeded}{"\n"}{end}' 2>/dev/null || true)"
    if grep -qx 1 <<<"$succeeded"; then
      log "the dataset PVC already holds a dataset (the prepare Job completed): nothing to upload"
      return
    fi
    die "no running prepare-data pod in '$namespace': deploy with training.data.prepare.mode=upload first"
  fi
  target="$(kubectl -n "$namespace" get pod "$pod" -o jsonpath='{.spec.containers[0].env[?(@.name=="DATA_FILE")].value}')"
  partial="$(dirname "$target")/.upload-$(basename "$target")"
  log "copying $file to $pod:$target"
  kubectl -n "$namespace" cp "$file" "$pod:$partial"
  kubectl -n "$namespace" exec "$pod" -- mv "$partial" "$target"
  log "uploaded; the prepare Job completes by itself"
}

cmd_port_forward() {
  need kubectl
  local pids=() spec svc ports label url
  # Service | local:remote port | what | URL (host ports from docs/architecture.md: MLflow on 5001)
  local forwards=(
    "$release-mlflow|5001:5000|MLflow|http://localhost:5001"
    "$release-prefect-server|4200:4200|Prefect UI|http://localhost:4200"
    "$release-minio|9001:9001|MinIO console|http://localhost:9001"
    "$release-inference|8000:8000|Inference API|http://localhost:8000/docs"
    "$release-prometheus|9090:9090|Prometheus|http://localhost:9090"
  )
  trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
  printf '\nPort-forwards (Ctrl-C stops them):\n'
  for spec in "${forwards[@]}"; do
    IFS='|' read -r svc ports label url <<<"$spec"
    if ! kubectl -n "$namespace" get service "$svc" >/dev/null 2>&1; then
      printf '  %-14s skipped: no Service %s in %s\n' "$label" "$svc" "$namespace"
      continue
    fi
    kubectl -n "$namespace" port-forward "service/$svc" "$ports" >/dev/null &
    pids+=("$!")
    printf '  %-14s %s\n' "$label" "$url"
  done
  [[ ${#pids[@]} -gt 0 ]] || die "no Service of release '$release' in namespace '$namespace': run 'make deploy'"
  printf '\nMinIO console login (user, then password):\n'
  printf '  kubectl -n %s get secret %s-minio -o jsonpath={.data.AWS_ACCESS_KEY_ID} | base64 -d\n' "$namespace" "$release"
  printf '  kubectl -n %s get secret %s-minio -o jsonpath={.data.AWS_SECRET_ACCESS_KEY} | base64 -d\n' "$namespace" "$release"
  wait
}

cmd_down() {
  need kind
  if cluster_exists; then
    log "deleting kind cluster '$cluster'"
    kind delete cluster --name "$cluster"
  else
    log "kind cluster '$cluster' does not exist"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  images) cmd_images ;;
  load) cmd_load ;;
  deploy) cmd_deploy ;;
  upload-data) cmd_upload_data "${2:-}" ;;
  port-forward) cmd_port_forward ;;
  down) cmd_down ;;
  tag) image_tag ;;
  *) die "usage: $0 up|images|load|deploy|upload-data FILE|port-forward|down|tag" ;;
esac
