#!/usr/bin/env bash
# `make compose-e2e`: start the harness engine, build the stand-in base images, run tests/compose_e2e (which
# runs `make compose-up` as a user would), and stop the engine again, also when a step fails.
# KEEP_ENGINE=1 leaves the engine running afterwards (iterating on the tests); the image cache always stays.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
engine="$root/harness/container-engine/engine.sh"
cd "$root"

# After `down`, nothing of the engine may be left: processes, bridges and veths, mounts, iptables rules.
leftovers() {
  pgrep -a -f "/run/sentiment-engine/" || true
  # dockerd names its veths veth + 7 hex digits (a CNI plugin next door uses 8): only those are ours.
  ip -o link show | awk -F': ' '$2 ~ /^(docker0|br-[0-9a-f]{12}|veth[0-9a-f]{7}(@|$))/ {print "link " $2}'
  awk '$2 ~ "^/run/sentiment-engine" || $2 ~ "/container-engine/data-root" {print "mount " $2}' /proc/mounts
  iptables-save | grep -E 'DOCKER|docker0|10\.20[12]\.' || true
  [[ "$(iptables -S FORWARD | head -n 1)" == "$forward_policy" ]] || echo "FORWARD policy changed: $forward_policy"
}

stop_engine() {
  local status=$? left
  if [[ "${KEEP_ENGINE:-0}" != "1" ]]; then
    bash "$engine" down || status=1
    left="$(leftovers)"
    if [[ -n "$left" ]]; then
      echo "[compose-e2e] the engine left this behind:" >&2
      echo "$left" >&2
      status=1
    fi
  fi
  exit "$status"
}
# A brand-new machine may have no iptables yet (engine.sh up installs it): the kernel's default policy then.
if command -v iptables >/dev/null; then
  forward_policy="$(iptables -S FORWARD | head -n 1)"
else
  forward_policy="-P FORWARD ACCEPT"
fi
trap stop_engine EXIT

started="$(date +%s)"
# Cold machine: the engine's buildx plugin (go install) and the stand-ins' rootfs and Go binaries build at once.
bash "$root/harness/stand-in-images/build.sh" prefetch &
prefetch_pid=$!
bash "$engine" up
wait "$prefetch_pid"
eval "$(bash "$engine" env)"
bash "$root/harness/stand-in-images/build.sh"
echo "[compose-e2e] engine and stand-ins ready in $(($(date +%s) - started)) s"
# Fast stand-in checks first, then the lifecycle (it builds the images), then the built images themselves.
tests=(tests/compose_e2e/test_stand_ins.py tests/compose_e2e/test_compose_lifecycle.py tests/compose_e2e/test_images.py)
SENTIMENT_COMPOSE_E2E=1 "$root/.venv/bin/pytest" "${tests[@]}" -p no:cacheprovider -v "$@"
echo "[compose-e2e] total $(($(date +%s) - started)) s"
