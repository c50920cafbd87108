#!/usr/bin/env bash
# Local cluster harness (test tooling, never used by the product): one Kubernetes v1.34.4 node made
# of upstream components built from source, standing in for kind where Docker Hub is out of reach.
# README.md next to this file describes the components, addresses and paths.
#
#   cluster.sh up                     build what is missing, start everything, wait until it is usable
#   cluster.sh down [--keep-state]    stop everything and remove what it made (state too, unless kept)
#   cluster.sh status                 what runs, and the node
#   cluster.sh kubeconfig             print the kubeconfig path
#   cluster.sh load-images IMG|TAR... copy images into the node (docker save from $DOCKER_HOST, or archives)
#   cluster.sh restart-node           restart containerd and the kubelet; pods and volumes stay
# shellcheck disable=SC2329 # fill_* and node_ready are called through build_image and wait_for
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tools="$root/.tools"
bin="$tools/bin"
cache="$tools/cluster" # binaries, image archives, stamps, logs, the kubeconfig; survives `down`
cbin="$cache/bin"
stamps="$cache/stamps"
logs="$cache/logs"
kubeconfig="$cache/kubeconfig"

# Runtime paths sit outside the clone: unix sockets must stay short (kubelet puts some under its
# root dir) wherever the repository is checked out.
run=/run/sentiment-lc           # sockets, pid files, containerd state, network namespaces
state=/var/lib/sentiment-lc     # PKI, etcd, containerd images, kubelet, PVC data
pki="$state/pki"
conf="$state/conf"
sock="$run/containerd.sock"

K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.4
COREDNS_VERSION=v1.12.1
LOCAL_PATH_VERSION=v0.0.30
PAUSE_VERSION=3.10
PAUSE_IMAGE="localhost/harness/pause:$PAUSE_VERSION"
COREDNS_IMAGE="localhost/harness/coredns:$COREDNS_VERSION"
LOCAL_PATH_IMAGE="localhost/harness/local-path-provisioner:$LOCAL_PATH_VERSION"
BUSYBOX_IMAGE="localhost/harness/busybox:debian12"

# Addresses: none overlaps this machine's network (192.0.2.0/24, resolver 10.255.255.53) or the
# other Docker engine's pools (10.201.0.0/16, 10.202.0.0/16). The node address is added to `lo`:
# pods reach the API server there, and nothing listens on the machine's own interfaces.
NODE_NAME=sentiment-node
NODE_IP=10.243.0.1
CLUSTER_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
BRIDGE=sentinel0
CNI_NET=sentiment-lc
API_PORT=6443
ETCD_PORT=12379
ETCD_PEER_PORT=12380
FW_COMMENT=sentiment-lc

KCTL=("$cbin/kubectl" --kubeconfig "$kubeconfig")
CTR=(ctr -n k8s.io -a "$sock")

log() { printf '[cluster] %s\n' "$*"; }
die() {
  printf '[cluster] error: %s\n' "$*" >&2
  exit 1
}

# --------------------------------------------------------------------------------------------
# Installing and building (cached under .tools/ with version stamps)

APT_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack busybox-static openssl gcc libc6-dev curl)

ensure_packages() {
  local pkg missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == "install ok installed" ]] || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  log "apt-get install ${missing[*]}"
  flock -w 900 /run/sentiment-apt.lock apt-get update -qq
  DEBIAN_FRONTEND=noninteractive flock -w 900 /run/sentiment-apt.lock apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# stamp_ok NAME CONTENT FILE...: the stamp matches and the files it vouches for exist.
stamp_ok() {
  local name="$1" content="$2" f
  shift 2
  [[ -f "$stamps/$name" && "$(cat "$stamps/$name")" == "$content" ]] || return 1
  for f in "$@"; do [[ -f "$f" ]] || return 1; done
}

# The stamp covers the versions, the module files and this script's build flags.
module_stamp() { cat "$here/src/$1/go.mod" "$here/src/$1/go.sum" <(printf '%s\n' "$2") | sha256sum | cut -c1-16; }

go_build() {
  local module="$1" cgo="$2" ldflags="$3"
  shift 3
  (cd "$here/src/$module" && CGO_ENABLED="$cgo" nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$cbin/" "$@")
}

build_binaries() {
  command -v go >/dev/null || die "Go is needed to build the cluster components"
  mkdir -p "$cbin" "$stamps"
  local v=k8s.io/component-base/version c=k8s.io/client-go/pkg/version ld key
  # Without gitVersion, /version says v0.0.0-master and helm/kubectl cannot parse it.
  ld="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=34 -X $v.gitTreeState=clean"
  ld+=" -X $c.gitVersion=$K8S_VERSION -X $c.gitMajor=1 -X $c.gitMinor=34"
  key="$K8S_VERSION etcd-$ETCD_VERSION $(module_stamp kube "$ld")"
  if ! stamp_ok kube "$key" "$cbin"/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl}; then
    log "building etcd $ETCD_VERSION and Kubernetes $K8S_VERSION (one go build; ~10 min cold on 2 cores)"
    # CGO stays on as upstream builds the kubelet; one invocation shares every package.
    go_build kube 1 "$ld" ./etcd k8s.io/kubernetes/cmd/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl}
    echo "$key" >"$stamps/kube"
  fi
  # The in-cluster binaries run in images without a libc: static.
  ld="-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  key="coredns-$COREDNS_VERSION $(module_stamp coredns "$ld")"
  if ! stamp_ok coredns "$key" "$cbin/coredns"; then
    log "building CoreDNS $COREDNS_VERSION"
    go_build coredns 0 "$ld" github.com/coredns/coredns
    echo "$key" >"$stamps/coredns"
  fi
  ld="-s -w -X main.VERSION=$LOCAL_PATH_VERSION"
  key="local-path-$LOCAL_PATH_VERSION $(module_stamp local-path "$ld")"
  if ! stamp_ok local-path "$key" "$cbin/local-path-provisioner"; then
    log "building local-path-provisioner $LOCAL_PATH_VERSION"
    go_build local-path 0 "$ld" github.com/rancher/local-path-provisioner
    echo "$key" >"$stamps/local-path"
  fi
  mkdir -p "$bin"
  ln -sf "$cbin/kubectl" "$bin/kubectl"
}

# One image: a rootfs folder packed by docker_archive.py. $1 name, $2 image, $3 stamp input, then
# a function that fills the rootfs, then the docker_archive.py options.
build_image() {
  local name="$1" image="$2" input="$3" fill="$4" key rootfs
  shift 4
  key="$image $( (echo "$input" && cat "$here/images/docker_archive.py") | sha256sum | cut -c1-16)"
  if stamp_ok "image-$name" "$key" "$cache/images/$name.tar"; then return; fi
  log "image $image"
  rootfs="$(mktemp -d)"
  "$fill" "$rootfs"
  mkdir -p "$cache/images"
  python3 "$here/images/docker_archive.py" "$rootfs" "$image" "$cache/images/$name.tar" "$@" >/dev/null
  rm -rf "$rootfs"
  echo "$key" >"$stamps/image-$name"
}

fill_pause() { gcc -static -O2 -s -o "$1/pause" "$here/images/pause.c"; }
fill_coredns() { install -m 0755 "$cbin/coredns" "$1/coredns"; }
fill_local_path() {
  mkdir -p "$1/usr/bin" "$1/tmp"
  chmod 1777 "$1/tmp"
  install -m 0755 "$cbin/local-path-provisioner" "$1/usr/bin/local-path-provisioner"
}
# Debian's static busybox stands in for docker.io/busybox (local-path's helper pods run /bin/sh).
fill_busybox() {
  local applet
  mkdir -p "$1/bin" "$1/tmp"
  chmod 1777 "$1/tmp"
  install -m 0755 /bin/busybox "$1/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ "$applet" == busybox ]] || ln -s busybox "$1/bin/$applet"
  done
}

build_images() {
  build_image pause "$PAUSE_IMAGE" "$(cat "$here/images/pause.c")" fill_pause --entrypoint /pause --user 65535:65535
  build_image coredns "$COREDNS_IMAGE" "$(sha256sum "$cbin/coredns")" fill_coredns \
    --entrypoint /coredns --user 65532:65532
  build_image local-path "$LOCAL_PATH_IMAGE" "$(sha256sum "$cbin/local-path-provisioner")" fill_local_path \
    --entrypoint local-path-provisioner --user 65532:65532
  build_image busybox "$BUSYBOX_IMAGE" "$(sha256sum /bin/busybox)" fill_busybox --entrypoint /bin/sh
}

# --------------------------------------------------------------------------------------------
# PKI: one CA signs every serving and client certificate (EC P-256); RSA key for service accounts.

cert() {
  local name="$1" subject="$2" eku="$3" sans="${4:-}" ext
  [[ -f "$pki/$name.crt" ]] && return
  ext="basicConstraints=critical,CA:FALSE"$'\n'"keyUsage=critical,digitalSignature,keyEncipherment"
  ext+=$'\n'"extendedKeyUsage=$eku"
  [[ -n "$sans" ]] && ext+=$'\n'"subjectAltName=$sans"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name.key" 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" |
    openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 3650 -extfile <(echo "$ext") -out "$pki/$name.crt" 2>/dev/null
}

make_pki() {
  mkdir -p "$pki"
  chmod 0700 "$pki"
  if [[ ! -f "$pki/ca.crt" ]]; then
    log "PKI in $pki"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=sentiment-lc-ca" -days 3650 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$pki/ca.crt"
  fi
  cert apiserver "/CN=kube-apiserver" serverAuth \
    "IP:$NODE_IP,IP:127.0.0.1,IP:${SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
  cert kubelet "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME,DNS:localhost"
  cert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
  cert controller-manager "/CN=system:kube-controller-manager" clientAuth
  cert scheduler "/CN=system:kube-scheduler" clientAuth
  cert kube-proxy "/CN=system:kube-proxy" clientAuth
  cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  if [[ ! -f "$pki/sa.key" ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
  fi
}

write_kubeconfig() {
  local out="$1" user="$2"
  umask 077
  put "$out" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: sentiment-local
    cluster:
      server: https://$NODE_IP:$API_PORT
      certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
  - name: $user
    user:
      client-certificate-data: $(base64 -w0 "$pki/$user.crt")
      client-key-data: $(base64 -w0 "$pki/$user.key")
contexts:
  - name: sentiment-local
    context:
      cluster: sentiment-local
      user: $user
current-context: sentiment-local
EOF
  umask 022
}

# --------------------------------------------------------------------------------------------
# Configuration files (they only depend on the constants above)

# put FILE: write stdin to FILE only when it differs. kube-proxy exits when its config file is
# written to, so `up` on a running cluster must leave unchanged files alone.
put() {
  local content
  content="$(cat)"
  [[ -f "$1" && "$(cat "$1")" == "$content" ]] && return
  printf '%s\n' "$content" >"$1"
}

write_configs() {
  mkdir -p "$conf" "$conf/cni" "$conf/registry" "$state/local-path"
  local u
  for u in admin controller-manager scheduler kube-proxy kubelet-client; do write_kubeconfig "$conf/$u.kubeconfig" "$u"; done
  put "$kubeconfig" <"$conf/admin.kubeconfig"
  chmod 0600 "$kubeconfig" # admin credentials

  put "$conf/containerd.toml" <<EOF
# The cluster's own containerd, next to any other (Docker's) on the machine.
version = 2
root = "$state/containerd"
state = "$run/containerd"
oom_score = 0
[grpc]
  address = "$sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$state/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE here: without this, runc cannot lower oom_score_adj and every sandbox fails.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # Pod network namespaces under our state dir, not /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$conf/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$conf/registry"
EOF

  put "$conf/cni/10-$CNI_NET.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$state/cni-ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF

  # Pods with dnsPolicy Default get this instead of the machine's resolver (no query leaves).
  echo "nameserver 127.0.0.1" | put "$conf/resolv.conf"

  put "$conf/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
failSwapOn: false
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $conf/resolv.conf
podLogsDir: $state/pod-logs
# A shared build machine fills its disk: never evict pods or delete loaded images for that.
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  imagefs.available: "1%"
  nodefs.inodesFree: "1%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF

  put "$conf/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $conf/kube-proxy.kubeconfig
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $CLUSTER_CIDR
# NodePorts on the node address only, never on the machine's own interfaces.
nodePortAddresses: [primary]
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF

  put "$conf/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $conf/scheduler.kubeconfig
leaderElection:
  leaderElect: false
EOF
}

# --------------------------------------------------------------------------------------------
# Processes: each component runs in its own session with a pid file; nothing is found by name.

pidfile() { echo "$run/pids/$1.pid"; }

running() {
  local f
  f="$(pidfile "$1")"
  [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start NAME CMD...: no-op when NAME already runs. The proxy variables point at a closed loopback
# port so that nothing (an image pull, a webhook call) can reach past this machine through them.
start() {
  local name="$1"
  shift
  running "$name" && return
  mkdir -p "$run/pids" "$logs"
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner bash, which writes its own pid
  setsid env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY="$NODE_IP,${SERVICE_CIDR},${CLUSTER_CIDR},localhost,127.0.0.1" \
    bash -c 'echo $$ >"$0"; exec "$@"' "$(pidfile "$name")" "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do
    [[ -s "$(pidfile "$name")" ]] && return
    sleep 0.1
  done
  die "$name did not start (see $logs/$name.log)"
}

stop() {
  local name="$1" pid i
  running "$name" || {
    rm -f "$(pidfile "$name")"
    return 0
  }
  pid="$(cat "$(pidfile "$name")")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$(pidfile "$name")"
}

# wait_for WHAT SECONDS CMD...
wait_for() {
  local what="$1" secs="$2" i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    "$@" >/dev/null 2>&1 && return
    sleep 0.5
  done
  die "timed out after ${secs}s waiting for $what (logs in $logs)"
}

# --------------------------------------------------------------------------------------------
# Host networking the node needs (undone by `down`)

# (Not `ip addr | grep -q`: with pipefail, grep quitting early fails the pipeline.)
node_ip_on_lo() { [[ -n "$(ip -4 -o addr show dev lo to "$NODE_IP/32")" ]]; }

setup_host_network() {
  node_ip_on_lo || ip addr add "$NODE_IP/32" dev lo
  # kube-proxy needs bridged traffic in iptables; bridged and DNAT'd pod traffic needs forwarding.
  # Both stay on afterwards: Docker on this machine relies on them as well.
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
  forward_rules_on_top
}

# Docker sets the FORWARD policy to DROP: let pods talk to each other (and to Services, DNAT'd to
# pods), and refuse anything from a pod that would be forwarded off the bridge (off this machine).
# At the top, so they come before whatever someone appended; Docker inserts its own jumps above
# them later, and those only match Docker's bridges.
forward_rules_on_top() {
  iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT -m comment --comment "$FW_COMMENT" 2>/dev/null || true
  iptables -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j REJECT -m comment --comment "$FW_COMMENT" 2>/dev/null || true
  iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT -m comment --comment "$FW_COMMENT"
  iptables -I FORWARD 2 -i "$BRIDGE" ! -o "$BRIDGE" -j REJECT -m comment --comment "$FW_COMMENT"
}

# --------------------------------------------------------------------------------------------
# Components

start_containerd() {
  mkdir -p "$run" "$state/containerd" "$conf/registry"
  start containerd containerd --config "$conf/containerd.toml"
  wait_for containerd 30 "${CTR[@]}" version
}

import_images() {
  local name image have
  have="$("${CTR[@]}" images ls -q)"
  for name in pause coredns local-path busybox; do
    image="$(python3 -c 'import json,sys,tarfile; print(json.load(tarfile.open(sys.argv[1]).extractfile("manifest.json"))[0]["RepoTags"][0])' "$cache/images/$name.tar")"
    # Re-import when the archive changed (a new build), skip otherwise.
    if grep -qx "$image" <<<"$have" && [[ -f "$state/imported-$name" ]] && cmp -s "$state/imported-$name" <(sha256sum "$cache/images/$name.tar"); then
      continue
    fi
    "${CTR[@]}" images import "$cache/images/$name.tar" >/dev/null
    sha256sum "$cache/images/$name.tar" >"$state/imported-$name"
  done
}

start_etcd() {
  mkdir -p "$state/etcd"
  chmod 0700 "$state/etcd"
  start etcd "$cbin/etcd" --name sentiment-lc --data-dir "$state/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "sentiment-lc=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}

start_apiserver() {
  start kube-apiserver "$cbin/kube-apiserver" \
    --bind-address="$NODE_IP" --secure-port="$API_PORT" --advertise-address="$NODE_IP" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$pki/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction,PodSecurity \
    --allow-privileged=true \
    --cert-dir="$state/apiserver-certs" \
    --profiling=false
  wait_for "the API server" 90 "${KCTL[@]}" get --raw /readyz
}

start_controllers() {
  start kube-controller-manager "$cbin/kube-controller-manager" \
    --kubeconfig="$conf/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$conf/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$conf/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --cert-dir="$state/controller-manager-certs" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
    --use-service-account-credentials=true \
    --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --leader-elect=false --profiling=false
  start kube-scheduler "$cbin/kube-scheduler" --config="$conf/kube-scheduler.yaml" \
    --authentication-kubeconfig="$conf/scheduler.kubeconfig" \
    --authorization-kubeconfig="$conf/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --profiling=false
}

start_kubelet() {
  mkdir -p "$state/kubelet" "$state/pod-logs"
  start kubelet "$cbin/kubelet" --config="$conf/kubelet.yaml" --kubeconfig="$conf/kubelet-client.kubeconfig" \
    --root-dir="$state/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"
}

start_kube_proxy() {
  start kube-proxy "$cbin/kube-proxy" --config="$conf/kube-proxy.yaml"
}

manifest() {
  sed -e "s|@COREDNS_VERSION@|$COREDNS_VERSION|g; s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g; s|@DNS_IP@|$DNS_IP|g" \
    -e "s|@LOCAL_PATH_VERSION@|$LOCAL_PATH_VERSION|g; s|@LOCAL_PATH_IMAGE@|$LOCAL_PATH_IMAGE|g" \
    -e "s|@LOCAL_PATH_DIR@|$state/local-path|g; s|@BUSYBOX_IMAGE@|$BUSYBOX_IMAGE|g" "$here/manifests/$1"
}

node_ready() {
  [[ "$("${KCTL[@]}" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# --------------------------------------------------------------------------------------------
# Commands

cmd_up() {
  [[ "$(id -u)" -eq 0 ]] || die "needs root (containerd, kubelet, iptables)"
  local t0=$SECONDS
  ensure_packages
  build_binaries
  build_images
  log "starting (logs in $logs)"
  mkdir -p "$run" "$state" "$logs"
  make_pki
  write_configs
  setup_host_network
  start_containerd
  import_images
  start_etcd
  start_apiserver
  "${KCTL[@]}" apply -f <(manifest bootstrap.yaml) >/dev/null
  start_controllers
  start_kubelet
  start_kube_proxy
  "${KCTL[@]}" apply -f <(manifest coredns.yaml) -f <(manifest local-path.yaml) >/dev/null
  wait_for "node $NODE_NAME Ready" 120 node_ready
  # Pods, not Deployment status: with kept state that status is stale from before `down`.
  wait_for CoreDNS 180 "${KCTL[@]}" -n kube-system wait pod -l k8s-app=kube-dns --for=condition=Ready --timeout=5s
  wait_for local-path-provisioner 180 "${KCTL[@]}" -n local-path-storage wait pod -l app=local-path-provisioner --for=condition=Ready --timeout=5s
  log "cluster ready in $((SECONDS - t0))s: node $NODE_NAME, namespace mlops (Pod Security: restricted)"
  [[ -x "$bin/helm" ]] || log "helm is not in $bin yet: run make tools"
  echo "export KUBECONFIG=$kubeconfig"
}

# Delete every pod through the API so the kubelet stops them properly (CNI teardown, unmounts).
drain_pods() {
  if ! running kube-apiserver || ! running kubelet || ! running containerd; then return 0; fi
  "${KCTL[@]}" get --raw /readyz >/dev/null 2>&1 || return 0
  log "deleting pods"
  # Controllers first, so nothing comes back.
  stop kube-controller-manager
  stop kube-scheduler
  "${KCTL[@]}" delete pods --all --all-namespaces --grace-period=5 --wait=true --timeout=90s >/dev/null 2>&1 || true
}

# What a crash or a failed drain can leave: tasks, shims, processes in the pods' cgroups.
kill_leftovers() {
  local id pid
  if running containerd; then
    for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
      "${CTR[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
      "${CTR[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  # Shims of our containerd (their command line names our socket), then anything left in the pods' cgroups.
  for pid in $(pgrep -f -- "-address $sock" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u |
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
}

unmount_all() {
  local m
  # Deepest first; mount points are octal-escaped in /proc/self/mounts.
  while read -r m; do
    m="$(printf '%b' "$m")"
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v a="$run" -v b="$state" 'index($2, a "/") == 1 || $2 == a || index($2, b "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
}

# Remove KUBE-* (kube-proxy, kubelet) and CNI-* (portmap) chains and every rule jumping to them,
# plus our FORWARD rules, in one iptables-restore per table. Docker's rules are not touched.
clean_iptables() {
  local cmd table rules
  # Both backends: kube-proxy picks legacy or nft by what it finds on the host. Legacy only when
  # its tables exist: merely listing them would create them.
  for cmd in iptables-nft ip6tables-nft iptables-legacy ip6tables-legacy; do
    command -v "$cmd-save" >/dev/null || continue
    [[ $cmd == iptables-legacy && -z "$(cat /proc/net/ip_tables_names 2>/dev/null)" ]] && continue
    [[ $cmd == ip6tables-legacy && -z "$(cat /proc/net/ip6_tables_names 2>/dev/null)" ]] && continue
    for table in filter nat mangle raw; do
      rules="$("$cmd-save" -t "$table" 2>/dev/null)" || continue
      awk -v comment="$FW_COMMENT" -v table="$table" '
        /^:(KUBE-|CNI-)/ { chains[++n] = substr($1, 2) }
        /^-A / && ($2 ~ /^(KUBE-|CNI-)/ || $0 ~ /-j (KUBE-|CNI-)/ || $0 ~ "--comment \"?" comment "\"? ") {
          if ($2 !~ /^(KUBE-|CNI-)/) { sub(/^-A /, "-D "); dels[++m] = $0 }
        }
        END {
          if (n == 0 && m == 0) exit
          print "*" table
          for (i = 1; i <= m; i++) print dels[i]
          for (i = 1; i <= n; i++) print "-F " chains[i]
          for (i = 1; i <= n; i++) print "-X " chains[i]
          print "COMMIT"
        }' <<<"$rules" | "$cmd-restore" --noflush 2>/dev/null || true
    done
  done
}

clean_links() {
  local link
  for link in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
    ip link delete "$link" 2>/dev/null || true
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
  if node_ip_on_lo; then ip addr delete "$NODE_IP/32" dev lo; fi
}

clean_cgroups() {
  # Pod cgroups the kubelet made (cgroupfs driver): remove leaf first.
  find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} + 2>/dev/null || true
}

cmd_down() {
  local keep=false
  [[ "${1:-}" == --keep-state ]] && keep=true
  log "stopping"
  drain_pods
  local c
  for c in kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c"; done
  kill_leftovers
  [[ -x "$cbin/kube-proxy" ]] && "$cbin/kube-proxy" --cleanup >/dev/null 2>&1 || true
  unmount_all
  clean_iptables
  clean_links
  clean_cgroups
  conntrack -D -s "$CLUSTER_CIDR" >/dev/null 2>&1 || true
  conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1 || true
  # Files other tools keep about our pods: libcni's result cache, the kubelet's log symlinks.
  rm -f /var/lib/cni/results/"$CNI_NET"-* 2>/dev/null || true
  find /var/log/containers -maxdepth 1 -type l -lname "$state/*" -delete 2>/dev/null || true
  rm -rf "$run"
  if $keep; then
    rm -rf "$state/cni-ipam" # every pod is gone: no address is in use
    log "down; state kept in $state"
  else
    rm -rf "$state"
    log "down; state removed"
  fi
}

# Exit status 0 only when every component runs.
cmd_status() {
  local c down=0
  for c in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if running "$c"; then
      printf '  %-24s running (pid %s)\n' "$c" "$(cat "$(pidfile "$c")")"
    else
      printf '  %-24s stopped\n' "$c"
      down=1
    fi
  done
  if running kube-apiserver; then
    "${KCTL[@]}" get nodes -o wide 2>/dev/null || true
    echo "export KUBECONFIG=$kubeconfig"
  fi
  return "$down"
}

cmd_load_images() {
  [[ $# -gt 0 ]] || die "usage: cluster.sh load-images IMAGE|ARCHIVE.tar..."
  running containerd || die "the cluster is not running (cluster.sh up)"
  local arg
  for arg in "$@"; do
    if [[ -f "$arg" ]]; then
      log "importing archive $arg"
      "${CTR[@]}" images import "$arg"
    else
      # Debian's docker client (the newer one on PATH wants a buildx plugin); DOCKER_HOST picks the engine.
      log "docker save $arg | ctr import"
      /usr/bin/docker save "$arg" | "${CTR[@]}" images import -
    fi
  done
}

ready_pods() {
  "${KCTL[@]}" get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}{" "}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk '$3 == "True" { print $1, $2 }'
}

cmd_restart_node() {
  running containerd || die "the cluster is not running (cluster.sh up)"
  local before ns name
  before="$(ready_pods)"
  log "restarting kubelet and containerd (containers keep running in their shims)"
  stop kubelet
  stop containerd
  start_containerd
  start_kubelet
  # The kubelet reports Ready again after its first sync with the runtime.
  sleep 2
  wait_for "node $NODE_NAME Ready" 120 node_ready
  # A restarted kubelet marks every pod unready until its readiness probe passes again (Service
  # endpoints, DNS included, drop meanwhile): wait for the pods that were Ready before.
  while read -r ns name; do
    [[ -n "$name" ]] && wait_for "pod $ns/$name Ready" 120 "${KCTL[@]}" -n "$ns" wait "pod/$name" --for=condition=Ready --timeout=5s
  done <<<"$before"
  log "node Ready, $(grep -c . <<<"$before") pods Ready again"
}

main() {
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down "${2:-}" ;;
    status) cmd_status ;;
    kubeconfig) echo "$kubeconfig" ;;
    load-images)
      shift
      cmd_load_images "$@"
      ;;
    restart-node) cmd_restart_node ;;
    *) die "usage: cluster.sh up | down [--keep-state] | status | kubeconfig | load-images IMG|TAR... | restart-node" ;;
  esac
}

# bash reads a script as it runs it: calling main and exiting on one line means the whole file is
# parsed first, so editing (or `git checkout`) this file under a running `up` cannot break it.
main "$@"; exit
