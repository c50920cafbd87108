#!/usr/bin/env bash
# Builds the stand-in base images (test fixtures, see README.md) into the engine DOCKER_HOST points at, each
# only when it is missing or out of date (a stamp label records the inputs it was built from).
#
#   eval "$(harness/container-engine/engine.sh env)"; harness/stand-in-images/build.sh
#   harness/stand-in-images/build.sh prefetch   # only what needs no engine (rootfs, Go binaries), in parallel
#
# Never pushed, never used by a user: a laptop pulls the real images.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$ROOT/.tools/stand-in-images"
DOCKER="${DOCKER:-docker}"
LABEL=org.sentiment.stand-in.stamp

# The exact names our Dockerfiles, docker-compose.yml and the chart use.
PYTHON_IMAGE="python:3.11.14-slim-bookworm"
UV_VERSION="0.13.9"
UV_IMAGE="ghcr.io/astral-sh/uv:$UV_VERSION"
POSTGRES_IMAGE="postgres:17.6-bookworm"
MINIO_IMAGE="quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
PROMETHEUS_IMAGE="quay.io/prometheus/prometheus:v3.5.0"
# MinIO publishes no semver tags: the module proxy serves pseudo-versions. The server is the one
# scripts/install-tools.sh pins; mc is the newest the proxy lists (RELEASE.* tags are not module versions).
MINIO_MODULE="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
MC_MODULE="github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBOOTSTRAP_SPEC="bookworm minbase python3,python3-venv,python-is-python3,ca-certificates $DEBIAN_MIRROR"
# The proxy CA this machine's TLS goes through: builder stages reach PyPI through it (a test-only difference).
HOST_CAS=(/usr/local/share/ca-certificates/*.crt)

log() { printf '[stand-ins] %s\n' "$*" >&2; }
die() {
  printf 'stand-ins: %s\n' "$*" >&2
  exit 1
}

mkdir -p "$CACHE"

stamp_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

current() {
  local image="$1" stamp="$2"
  [[ "$("$DOCKER" image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$image" 2>/dev/null)" == "$stamp" ]]
}

# ---- python:3.11.x-slim-bookworm: debootstrap rootfs, cached as a tarball -----------------------------------
ROOTFS_TAR="$CACHE/bookworm-python-rootfs.tar"
ROOTFS_STAMP="$(printf '%s\n' "$DEBOOTSTRAP_SPEC" | cat - "${HOST_CAS[@]}" | sha256sum | cut -c1-16)"

make_rootfs() {
  local tarball="$ROOTFS_TAR" stamp_file="$CACHE/bookworm-python-rootfs.stamp" spec_stamp="$ROOTFS_STAMP"
  if [[ ! -f "$tarball" || "$(cat "$stamp_file" 2>/dev/null)" != "$spec_stamp" ]]; then
    command -v debootstrap >/dev/null || {
      log "apt-get install debootstrap"
      flock -w 900 /run/sentiment-apt.lock apt-get update -qq && DEBIAN_FRONTEND=noninteractive flock -w 900 /run/sentiment-apt.lock apt-get install -y -qq debootstrap >/dev/null
    }
    local dir="$CACHE/rootfs.tmp"
    rm -rf "$dir"
    log "debootstrap $DEBOOTSTRAP_SPEC (about 4 minutes)"
    read -r suite variant include mirror <<<"$DEBOOTSTRAP_SPEC"
    nice -n 10 debootstrap --variant="$variant" --include="$include" "$suite" "$dir" "$mirror" \
      >"$CACHE/debootstrap.log" 2>&1 || die "debootstrap failed (see $CACHE/debootstrap.log)"
    cp "${HOST_CAS[@]}" "$dir/usr/local/share/ca-certificates/"
    chroot "$dir" update-ca-certificates >/dev/null
    # What the slim image also leaves out: package caches and lists, logs.
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log
    tar -C "$dir" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    echo "$spec_stamp" >"$stamp_file"
    rm -rf "$dir"
  fi
}

build_python() {
  local spec_stamp="$ROOTFS_STAMP" tarball="$ROOTFS_TAR"
  if current "$PYTHON_IMAGE" "$spec_stamp"; then
    log "$PYTHON_IMAGE: up to date"
    return
  fi
  make_rootfs
  log "docker import $PYTHON_IMAGE"
  # SSL_CERT_FILE / UV_NATIVE_TLS: uv in the builder stages trusts the proxy CA (the real image needs neither).
  "$DOCKER" import \
    --change "LABEL $LABEL=$spec_stamp" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV UV_NATIVE_TLS=1' \
    --change 'CMD ["python3"]' \
    "$tarball" "$PYTHON_IMAGE" >/dev/null
}

# ---- ghcr.io/astral-sh/uv: the static binaries from the PyPI wheel ------------------------------------------
build_uv() {
  local stamp ctx="$CACHE/uv-context"
  stamp="$(printf 'uv==%s\n' "$UV_VERSION" | cat - "$HERE/uv/Dockerfile" | sha256sum | cut -c1-16)"
  if current "$UV_IMAGE" "$stamp"; then
    log "$UV_IMAGE: up to date"
    return
  fi
  rm -rf "$ctx" && mkdir -p "$ctx/wheel"
  log "uv $UV_VERSION from PyPI (musllinux wheel: static, like upstream's image)"
  local pip=(python3 -m pip)
  [[ -x "$ROOT/.tools/uv-venv/bin/pip" ]] && pip=("$ROOT/.tools/uv-venv/bin/pip")
  "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform musllinux_1_1_x86_64 --dest "$ctx/wheel" "uv==$UV_VERSION" ||
    die "cannot download uv==$UV_VERSION from PyPI"
  python3 - "$ctx" <<'PY'
import sys, zipfile, pathlib
ctx = pathlib.Path(sys.argv[1])
wheel = next((ctx / "wheel").glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.endswith(("/scripts/uv", "/scripts/uvx")):
            target = ctx / pathlib.Path(name).name
            target.write_bytes(archive.read(name))
            target.chmod(0o755)
PY
  [[ -x "$ctx/uv" && -x "$ctx/uvx" ]] || die "the uv wheel has no uv/uvx binaries"
  cp "$HERE/uv/Dockerfile" "$ctx/Dockerfile"
  "$DOCKER" build --quiet --label "$LABEL=$stamp" -t "$UV_IMAGE" "$ctx" >/dev/null
}

# ---- postgres: Debian's PostgreSQL 15 + an upstream-compatible entrypoint -----------------------------------
build_postgres() {
  local stamp
  stamp="$(stamp_of "$HERE/postgres/Dockerfile" "$HERE/postgres/docker-entrypoint.sh")-$("$DOCKER" image inspect --format '{{.Id}}' "$PYTHON_IMAGE" | cut -c8-19)"
  if current "$POSTGRES_IMAGE" "$stamp"; then
    log "$POSTGRES_IMAGE: up to date"
    return
  fi
  log "docker build $POSTGRES_IMAGE (apt: postgresql-15)"
  nice -n 10 "$DOCKER" build --quiet --label "$LABEL=$stamp" --build-arg "BASE=$PYTHON_IMAGE" \
    -t "$POSTGRES_IMAGE" "$HERE/postgres" >/dev/null
}

# ---- minio: minio + mc from the Go module proxy -------------------------------------------------------------
go_binary() {
  local name="$1" module="$2" bin="$CACHE/gobin"
  if [[ -x "$bin/$name" && "$(cat "$bin/$name.stamp" 2>/dev/null)" == "$module" ]]; then return; fi
  mkdir -p "$bin"
  # `make install` already built this exact minio for the tests (scripts/install-tools.sh): reuse it.
  if [[ -x "$ROOT/.tools/bin/$name" && "$(cat "$ROOT/.tools/stamps/$name" 2>/dev/null)" == "$module" ]]; then
    cp "$ROOT/.tools/bin/$name" "$bin/$name"
  else
    command -v go >/dev/null || die "Go is needed to build $name (the toolchain scripts/install-tools.sh uses)"
    log "go install $module (minutes on 2 cores)"
    GOBIN="$bin" GOFLAGS=-trimpath nice -n 10 go install "$module" || die "go install $module failed"
  fi
  echo "$module" >"$bin/$name.stamp"
}

build_minio() {
  local stamp ctx="$CACHE/minio-context"
  stamp="$(printf '%s\n%s\n' "$MINIO_MODULE" "$MC_MODULE" | cat - "$HERE/minio/Dockerfile" "$HERE/minio/docker-entrypoint.sh" | sha256sum | cut -c1-16)-$("$DOCKER" image inspect --format '{{.Id}}' "$PYTHON_IMAGE" | cut -c8-19)"
  if current "$MINIO_IMAGE" "$stamp"; then
    log "$MINIO_IMAGE: up to date"
    return
  fi
  go_binary minio "$MINIO_MODULE"
  go_binary mc "$MC_MODULE"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$CACHE/gobin/minio" "$CACHE/gobin/mc" "$HERE/minio/Dockerfile" "$HERE/minio/docker-entrypoint.sh" "$ctx/"
  log "docker build $MINIO_IMAGE"
  "$DOCKER" build --quiet --label "$LABEL=$stamp" --build-arg "BASE=$PYTHON_IMAGE" -t "$MINIO_IMAGE" "$ctx" >/dev/null
}

build_prometheus() {
  local stamp
  stamp="$(stamp_of "$HERE/prometheus/Dockerfile")-$("$DOCKER" image inspect --format '{{.Id}}' "$PYTHON_IMAGE" | cut -c8-19)"
  if current "$PROMETHEUS_IMAGE" "$stamp"; then
    log "$PROMETHEUS_IMAGE: up to date"
    return
  fi
  log "docker build $PROMETHEUS_IMAGE (apt: prometheus)"
  nice -n 10 "$DOCKER" build --quiet --label "$LABEL=$stamp" --build-arg "BASE=$PYTHON_IMAGE" \
    -t "$PROMETHEUS_IMAGE" "$HERE/prometheus" >/dev/null
}

# Everything that needs no engine, in parallel: debootstrap waits on the network and dpkg, the Go builds on CPU.
prefetch() {
  local pids=() pid failed=0
  make_rootfs &
  pids+=("$!")
  go_binary minio "$MINIO_MODULE" &
  pids+=("$!")
  go_binary mc "$MC_MODULE" &
  pids+=("$!")
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [[ "$failed" == 0 ]] || die "prefetch failed"
}

if [[ "${1:-}" == "prefetch" ]]; then
  prefetch
  log "prefetched: rootfs, minio, mc"
  exit 0
fi
"$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "no Docker engine at ${DOCKER_HOST:-the default socket}: run 'make engine-up' and eval \"\$(harness/container-engine/engine.sh env)\""
prefetch
build_python
build_uv
build_postgres
build_minio
build_prometheus
log "ready: $PYTHON_IMAGE $UV_IMAGE $POSTGRES_IMAGE $MINIO_IMAGE $PROMETHEUS_IMAGE"
