#!/usr/bin/env bash
# A private Docker engine for the tests: its own containerd, dockerd, socket, data root, exec root and address
# pools. Test tooling only (harness/README.md): never used by a user or by product code.
#
#   engine.sh up       start it (idempotent; apt-installs docker.io the first time)
#   engine.sh down     stop it and remove every process, bridge, veth, mount and iptables rule it made
#                      (unless another live caller of `up` still uses it; `down --force` stops it anyway)
#   engine.sh env      print the exports that point `docker` / `docker compose` at it: eval "$(engine.sh env)"
#   engine.sh status   exit 0 when it answers, else 1
#
# The data root (image and build cache) stays under .tools/ across down/up, so a second run is fast.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Short paths: unix socket paths are limited to 108 bytes and containerd nests its shim sockets under them.
RUN_DIR="${SENTIMENT_ENGINE_RUN_DIR:-/run/sentiment-engine}"
STATE_DIR="${SENTIMENT_ENGINE_STATE_DIR:-$ROOT/.tools/container-engine}"
SOCK="$RUN_DIR/docker.sock"
CTRD_SOCK="$RUN_DIR/containerd.sock"
DATA_ROOT="$STATE_DIR/data-root"
CTRD_ROOT="$STATE_DIR/containerd-root"
CLIENT_BIN="$STATE_DIR/bin"
LOG_DIR="$STATE_DIR/logs"
# Address ranges that overlap neither this machine (192.0.2.0/24, resolver 10.255.255.53) nor the local
# Kubernetes cluster (10.244.0.0/16 pods, 10.96.0.0/16 services).
BIP="10.201.0.1/24"
POOL="base=10.202.0.0/16,size=24"
DOCKER=/usr/bin/docker # Debian's 20.10 client: `docker build` has BuildKit built in (DOCKER_BUILDKIT=1)
# Compose (v5) builds through the buildx CLI plugin and falls back to the classic builder without it, which
# cannot run RUN --mount. Debian 12 does not package buildx; the Go module proxy has it (no replace directives).
BUILDX_VERSION="v0.38.2"
BUILDX_MODULE="github.com/docker/buildx/cmd/buildx@$BUILDX_VERSION"
PLUGINS="$STATE_DIR/plugins"

log() { printf '[engine] %s\n' "$*" >&2; }
die() {
  printf 'engine: %s\n' "$*" >&2
  exit 1
}

dockerc() { DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$STATE_DIR/client-config" "$DOCKER" "$@"; }

answers() { [[ -S "$SOCK" ]] && dockerc version --format '{{.Server.Version}}' >/dev/null 2>&1; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  if [[ -x /usr/sbin/dockerd && -x "$DOCKER" && -x /usr/bin/containerd ]] && command -v iptables >/dev/null; then
    return
  fi
  [[ "$(id -u)" -eq 0 ]] || die "docker.io is not installed and installing it needs root: apt-get install docker.io"
  log "apt-get install docker.io containerd runc iptables"
  # One apt at a time (flock): the stand-ins' prefetch and the cluster harness install packages in parallel.
  flock -w 900 /run/sentiment-apt.lock apt-get update -qq
  # policy-rc.d keeps the package from starting the system's own docker service.
  DEBIAN_FRONTEND=noninteractive flock -w 900 /run/sentiment-apt.lock apt-get install -y -qq --no-install-recommends \
    docker.io containerd runc iptables >/dev/null
}

write_containerd_config() {
  mkdir -p "$RUN_DIR" "$CTRD_ROOT"
  cat >"$RUN_DIR/containerd.toml" <<EOF
version = 2
root = "$CTRD_ROOT"
state = "$RUN_DIR/containerd"
# dockerd needs no CRI; leaving it off keeps this containerd away from any kubelet.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = "$RUN_DIR/containerd-debug.sock"
EOF
}

wait_for() {
  local what="$1" seconds="$2" check="$3"
  local i
  for ((i = 0; i < seconds * 5; i++)); do
    if "$check"; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up in ${seconds}s (logs: $LOG_DIR)"
}

containerd_answers() { [[ -S "$CTRD_SOCK" ]] && ctr --address "$CTRD_SOCK" version >/dev/null 2>&1; }

# Leases: several test runs (the compose e2e, the Kubernetes image build) share one engine. `up` records the
# calling process; `down` stops the engine only when no other recorded caller is still alive.
take_lease() {
  mkdir -p "$RUN_DIR/leases"
  : >"$RUN_DIR/leases/$PPID"
}

other_live_leases() {
  local lease pid
  for lease in "$RUN_DIR"/leases/*; do
    [[ -e "$lease" ]] || continue
    pid="${lease##*/}"
    if [[ "$pid" != "$PPID" ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
  done
}

cmd_up() {
  if answers; then
    take_lease
    log "already running ($SOCK)"
    return
  fi
  [[ "$(id -u)" -eq 0 ]] || die "needs root (it creates bridges and iptables rules)"
  install_packages
  mkdir -p "$RUN_DIR" "$DATA_ROOT" "$LOG_DIR"
  install_buildx &
  local buildx_pid=$!
  record_host_state
  # With ip_forward already 1, dockerd leaves the FORWARD policy alone (it sets DROP when it turns forwarding
  # on itself, which would cut a neighbouring Kubernetes cluster's pod traffic).
  echo 1 >/proc/sys/net/ipv4/ip_forward

  if ! pid_alive "$RUN_DIR/containerd.pid"; then
    write_containerd_config
    log "containerd ($CTRD_SOCK)"
    setsid containerd --config "$RUN_DIR/containerd.toml" >>"$LOG_DIR/containerd.log" 2>&1 </dev/null &
    echo "$!" >"$RUN_DIR/containerd.pid"
    wait_for containerd 30 containerd_answers
  fi
  log "dockerd ($SOCK, data root $DATA_ROOT)"
  # Own containerd (else dockerd 20.10 would share a system containerd at /run/containerd); cgroupfs (no
  # systemd here); oom-score-adjust 0 (lowering it needs CAP_SYS_RESOURCE, which this machine lacks).
  setsid dockerd \
    --host "unix://$SOCK" \
    --containerd "$CTRD_SOCK" \
    --data-root "$DATA_ROOT" \
    --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" \
    --bip "$BIP" \
    --default-address-pool "$POOL" \
    --storage-driver overlay2 \
    --exec-opt native.cgroupdriver=cgroupfs \
    --oom-score-adjust 0 \
    --userland-proxy=true \
    --log-level warn \
    >>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
  wait_for dockerd 60 answers
  restore_forward_policy
  wait "$buildx_pid" || die "the buildx plugin is missing (see $LOG_DIR/buildx-install.log)"
  client_setup
  take_lease
  log "up: $(dockerc version --format 'dockerd {{.Server.Version}}')"
}

# What the host looked like before the engine: the FORWARD policy to restore on down.
record_host_state() {
  [[ -f "$RUN_DIR/host-state" ]] && return
  local policy
  policy="$(iptables -S FORWARD | awk '$1 == "-P" {print $3}')"
  printf 'FORWARD_POLICY=%s\n' "${policy:-ACCEPT}" >"$RUN_DIR/host-state"
}

restore_forward_policy() {
  local FORWARD_POLICY=ACCEPT
  # shellcheck disable=SC1091
  [[ -f "$RUN_DIR/host-state" ]] && source "$RUN_DIR/host-state"
  iptables -P FORWARD "$FORWARD_POLICY"
}

# Bridges of the networks this engine knows (docker0 plus br-<id>), read while dockerd still answers.
engine_bridges() {
  echo docker0
  dockerc network ls --quiet --no-trunc --filter driver=bridge 2>/dev/null | while read -r id; do
    [[ -n "$id" ]] && echo "br-${id:0:12}"
  done
}

stop_pidfile() {
  local file="$1" name="$2" pid i
  pid_alive "$file" || {
    rm -f "$file"
    return 0
  }
  pid="$(cat "$file")"
  log "stopping $name ($pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 30 s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$file"
}

# Delete the iptables rules dockerd added: jumps into DOCKER* chains and rules on our bridges or ranges, then
# the DOCKER* chains themselves. Rules of anything else (a kubelet, kube-proxy) are left alone.
clean_iptables() {
  local table line chain
  for table in filter nat; do
    # awk, not a grep chain: under pipefail a grep that matches nothing (a second `down`) would fail the script.
    iptables-save -t "$table" | awk '/^-A / && /DOCKER|docker0|br-[0-9a-f]{12}|10\.20[12]\./ && !/^-A DOCKER/' |
      while read -r line; do
      # shellcheck disable=SC2086 # the saved rule is re-split into its arguments on purpose
      eval "iptables -t $table ${line/#-A/-D}" 2>/dev/null || true
    done
    for chain in $(iptables-save -t "$table" | awk -F'[: ]' '/^:DOCKER/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(iptables-save -t "$table" | awk -F'[: ]' '/^:DOCKER/ {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

cmd_down() {
  local bridges=() bridge pid others
  rm -f "$RUN_DIR/leases/$PPID"
  others="$(other_live_leases | tr '\n' ' ')"
  if [[ -n "$others" && "${1:-}" != "--force" ]]; then
    log "still used by pid(s) ${others% }: left running (engine.sh down --force stops it anyway)"
    return
  fi
  if answers; then
    mapfile -t bridges < <(engine_bridges)
    local running
    running="$(dockerc ps --quiet)"
    if [[ -n "$running" ]]; then
      log "stopping containers"
      # shellcheck disable=SC2086
      dockerc stop --time 10 $running >/dev/null || true
    fi
  else
    bridges=(docker0)
  fi
  stop_pidfile "$RUN_DIR/dockerd.pid" dockerd
  # Shims outlive containerd on purpose; ours name our socket on their command line.
  for pid in $(pgrep -f -- "-address $CTRD_SOCK" || true); do
    log "stopping containerd-shim $pid"
    kill -TERM "$pid" 2>/dev/null || true
  done
  stop_pidfile "$RUN_DIR/containerd.pid" containerd
  # Plus any bridge left with an address in our ranges (a dockerd that died before it could be asked).
  for bridge in "${bridges[@]}" $(ip -o -4 addr show | awk '$4 ~ /^10\.20[12]\./ {print $2}'); do
    if ip link show "$bridge" >/dev/null 2>&1; then
      log "deleting bridge $bridge"
      ip link delete "$bridge" || true
    fi
  done
  # Leftover mounts under our directories (a killed dockerd leaves overlay and netns mounts), deepest first.
  awk -v a="$RUN_DIR" -v b="$DATA_ROOT" 'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/mounts |
    sort -r | while read -r mnt; do
    log "unmounting $mnt"
    umount -l "$mnt" 2>/dev/null || true
  done
  clean_iptables
  restore_forward_policy
  rm -rf "$RUN_DIR"
  log "down (data root kept: $DATA_ROOT)"
}

# `docker` means Debian's 20.10 client (the newer one on this machine needs a missing buildx plugin), and
# `docker compose` the standalone compose binary `make install` puts in .venv, as a CLI plugin: the README's
# commands then work unchanged against this engine.
client_setup() {
  mkdir -p "$CLIENT_BIN" "$STATE_DIR/client-config/cli-plugins"
  ln -sf "$DOCKER" "$CLIENT_BIN/docker"
  if [[ -x "$ROOT/.venv/bin/docker-compose" ]]; then
    ln -sf "$ROOT/.venv/bin/docker-compose" "$STATE_DIR/client-config/cli-plugins/docker-compose"
  fi
  if [[ -x "$PLUGINS/buildx" ]]; then
    ln -sf "$PLUGINS/buildx" "$STATE_DIR/client-config/cli-plugins/docker-buildx"
  fi
}

install_buildx() {
  if [[ -x "$PLUGINS/buildx" && "$(cat "$PLUGINS/buildx.stamp" 2>/dev/null)" == "$BUILDX_MODULE" ]]; then
    return
  fi
  command -v go >/dev/null || die "Go is needed to build the buildx plugin (scripts/install-tools.sh uses the same toolchain)"
  log "go install $BUILDX_MODULE (a few minutes, once)"
  mkdir -p "$PLUGINS"
  # go install leaves the version at v0.0.0+unknown; stamp the real one (Compose reads the plugin's version).
  GOBIN="$PLUGINS" GOFLAGS=-trimpath nice -n 10 go install \
    -ldflags "-X github.com/docker/buildx/version.Version=$BUILDX_VERSION" "$BUILDX_MODULE" \
    >>"$LOG_DIR/buildx-install.log" 2>&1 ||
    die "go install $BUILDX_MODULE failed (see $LOG_DIR/buildx-install.log)"
  echo "$BUILDX_MODULE" >"$PLUGINS/buildx.stamp"
}

cmd_env() {
  client_setup
  cat <<EOF
export DOCKER_HOST=unix://$SOCK
export DOCKER_CONFIG=$STATE_DIR/client-config
export PATH=$CLIENT_BIN:\$PATH
export DOCKER_BUILDKIT=1
export COMPOSE_BAKE=false
EOF
}

cmd_status() {
  if answers; then
    echo "running: unix://$SOCK ($(dockerc version --format 'dockerd {{.Server.Version}}'))"
  else
    echo "not running (start it with: make engine-up)"
    return 1
  fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down "${2:-}" ;;
env) cmd_env ;;
status) cmd_status ;;
*)
  echo "usage: $0 up|down|env|status" >&2
  exit 2
  ;;
esac
