#!/bin/sh
# `make compose-up` runs this on the host before anything starts: each problem a new user hits first gets one
# line saying what to do, instead of a half-started stack. POSIX sh (macOS and Linux); bash only for the port
# probe (/dev/tcp). Usage: COMPOSE="docker compose" sh compose/preflight.sh [ENV_FILE]
set -eu

env_file="${1:-.env}"
compose="${COMPOSE:-docker compose}"

fail() {
  echo "error: $*" >&2
  exit 1
}

# The value compose will use: the shell environment wins over .env, as in compose itself.
setting() {
  eval "from_shell=\${$1-__unset__}"
  # shellcheck disable=SC2154 # assigned by the eval above
  if [ "$from_shell" != "__unset__" ]; then
    printf '%s' "$from_shell"
    return
  fi
  sed -n "s/^$1=//p" "$env_file" | tail -n 1
}

[ -f "$env_file" ] || fail "no $env_file here: run 'cp .env.example .env', change its two passwords, then 'make compose-up' again"

for name in POSTGRES_PASSWORD MINIO_ROOT_PASSWORD MINIO_ROOT_USER; do
  [ -n "$(setting "$name")" ] || fail "$name is empty in $env_file: set it (see .env.example), then retry"
done
minio_password="$(setting MINIO_ROOT_PASSWORD)"
[ "${#minio_password}" -ge 8 ] || fail "MINIO_ROOT_PASSWORD in $env_file is shorter than 8 characters: MinIO refuses it"

command -v docker >/dev/null 2>&1 || fail "docker is not installed: install Docker Desktop or Docker Engine >= 23 (with BuildKit)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  fail "no Docker engine answers${DOCKER_HOST:+ at $DOCKER_HOST}: start Docker Desktop or the docker service, then retry"

# Ports: skipped when this project already runs (its own containers hold them; `up` is then a no-op update).
# shellcheck disable=SC2086 # $compose is a command line ("docker compose" or a path)
if [ -z "$($compose ps --quiet 2>/dev/null)" ]; then
  bind="$(setting BIND_ADDRESS)"
  case "${bind:-127.0.0.1}" in 0.0.0.0 | "") host=127.0.0.1 ;; *) host="$bind" ;; esac
  for entry in 5001:MLflow 4200:Prefect 9000:MinIO-S3 9001:MinIO-console 8000:inference-API 9090:Prometheus; do
    port="${entry%%:*}"
    if bash -c ": </dev/tcp/$host/$port" 2>/dev/null; then
      fail "port $host:$port ($(echo "${entry#*:}" | tr - ' ')) is already in use: stop what listens there (lsof -i :$port), then retry"
    fi
  done
fi
