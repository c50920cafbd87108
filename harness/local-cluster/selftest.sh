#!/usr/bin/env bash
# Checks a running local cluster does what the chart's e2e test relies on: Pod Security
# `restricted` in mlops, DNS and Services across namespaces, port-forward, logs, exec, a
# WaitForFirstConsumer volume, and pods + data surviving `cluster.sh restart-node`.
# Leaves nothing behind (namespace selftest-lc and its objects are deleted at the end).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export KUBECONFIG="${KUBECONFIG:-$here/../../.tools/cluster/kubeconfig}"
PATH="$here/../../.tools/bin:$PATH"
ns=mlops
client_ns=selftest-lc
image=localhost/harness/busybox:debian12
pf_port=18480

ok() { printf '[selftest] ok: %s\n' "$*"; }
fail() {
  printf '[selftest] FAILED: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  kubectl delete namespace "$client_ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl -n "$ns" delete deployment/selftest-web service/selftest-web configmap/selftest-web pod/selftest-data \
    pod/selftest-priv --ignore-not-found --wait=true >/dev/null 2>&1 || true
  kubectl -n "$ns" delete pvc/selftest-data --ignore-not-found --wait=true >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Restricted-compliant: non-root, read-only root filesystem, no privilege escalation, no capabilities.
restricted_pod_spec() {
  cat <<EOF
      securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: main
          image: $image
          command: [sh, -c, '$1']
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
EOF
}

kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: selftest-web, namespace: $ns}
data: {index.html: "hello from selftest"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: selftest-web, namespace: $ns}
spec:
  selector: {matchLabels: {app: selftest-web}}
  template:
    metadata: {labels: {app: selftest-web}}
    spec:
$(restricted_pod_spec 'exec httpd -f -v -p 8080 -h /www')
          ports: [{containerPort: 8080}]
          readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 2}
          volumeMounts: [{name: www, mountPath: /www}]
      volumes: [{name: www, configMap: {name: selftest-web}}]
---
apiVersion: v1
kind: Service
metadata: {name: selftest-web, namespace: $ns}
spec:
  selector: {app: selftest-web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Namespace
metadata: {name: $client_ns}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $client_ns}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: $image, command: [sleep, "3600"]}]
EOF
kubectl -n "$ns" rollout status deployment/selftest-web --timeout=120s >/dev/null
ok "restricted pod (non-root, read-only root) Ready in $ns"

if out="$(kubectl -n "$ns" run selftest-priv --image="$image" --restart=Never \
  --overrides='{"spec":{"containers":[{"name":"selftest-priv","image":"'"$image"'","command":["sleep","1"],"securityContext":{"privileged":true}}]}}' 2>&1)"; then
  fail "a privileged pod was admitted in $ns"
fi
grep -q 'violates PodSecurity "restricted' <<<"$out" || fail "unexpected error for the privileged pod: $out"
ok "privileged pod rejected in $ns (PodSecurity restricted)"

kubectl -n "$client_ns" wait pod/client --for=condition=Ready --timeout=120s >/dev/null
kubectl -n "$client_ns" exec client -- nslookup kubernetes.default.svc.cluster.local | grep -q 'Address: 10.96.0.1' ||
  fail "kubernetes.default.svc.cluster.local does not resolve"
ok "DNS: kubernetes.default.svc.cluster.local -> 10.96.0.1"
[[ "$(kubectl -n "$client_ns" exec client -- wget -qO- "http://selftest-web.$ns/index.html")" == "hello from selftest" ]] ||
  fail "Service selftest-web.$ns not reachable by name from $client_ns"
ok "Service selftest-web.$ns reached by name from namespace $client_ns"

pod="$(kubectl -n "$ns" get pod -l app=selftest-web -o jsonpath='{.items[0].metadata.name}')"
kubectl -n "$ns" port-forward "pod/$pod" "$pf_port:8080" >/dev/null 2>&1 &
pf=$!
for _ in $(seq 40); do
  if curl -fsS "http://127.0.0.1:$pf_port/index.html" >/dev/null 2>&1; then break; fi
  sleep 0.25
done
body="$(curl -fsS "http://127.0.0.1:$pf_port/index.html" || true)"
kill "$pf"
wait "$pf" 2>/dev/null || true
[[ "$body" == "hello from selftest" ]] || fail "port-forward to $pod: got '$body'"
ok "kubectl port-forward + curl 127.0.0.1:$pf_port"
kubectl -n "$ns" logs "$pod" | grep -q 'response:200' || fail "kubectl logs shows no request"
ok "kubectl logs"
[[ "$(kubectl -n "$ns" exec "$pod" -- id -u)" == 10001 ]] || fail "kubectl exec"
ok "kubectl exec (uid 10001)"

kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: selftest-data, namespace: $ns}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOF
sleep 3
[[ "$(kubectl -n "$ns" get pvc selftest-data -o jsonpath='{.status.phase}')" == Pending ]] || fail "PVC bound before a consumer"
ok "PVC Pending without a consumer (WaitForFirstConsumer, default class)"

# shellcheck disable=SC2016 # $RANDOM is for the pod's shell
writer_cmd='test -f /data/token || echo $RANDOM$RANDOM >/data/token; exec sleep 3600'
data_pod() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: selftest-data, namespace: $ns}
spec:
  terminationGracePeriodSeconds: 1
$(restricted_pod_spec "$writer_cmd" | sed 's/^    //')
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: selftest-data}}]
EOF
  kubectl -n "$ns" wait pod/selftest-data --for=condition=Ready --timeout=120s >/dev/null
}
data_pod
[[ "$(kubectl -n "$ns" get pvc selftest-data -o jsonpath='{.status.phase}')" == Bound ]] || fail "PVC not bound"
token="$(kubectl -n "$ns" exec selftest-data -- cat /data/token)"
kubectl -n "$ns" delete pod selftest-data --wait=true >/dev/null
data_pod
[[ "$(kubectl -n "$ns" exec selftest-data -- cat /data/token)" == "$token" ]] || fail "volume data lost with the pod"
ok "PVC bound on first consumer; data survives pod deletion"

uid="$(kubectl -n "$ns" get pod selftest-data -o jsonpath='{.metadata.uid}')"
"$here/cluster.sh" restart-node
[[ "$(kubectl -n "$ns" get pod selftest-data -o jsonpath='{.metadata.uid}')" == "$uid" ]] || fail "pod replaced by restart-node"
[[ "$(kubectl -n "$ns" exec selftest-data -- cat /data/token)" == "$token" ]] || fail "volume data lost in restart-node"
[[ "$(kubectl -n "$client_ns" exec client -- wget -qO- "http://selftest-web.$ns/index.html")" == "hello from selftest" ]] ||
  fail "Service not reachable after restart-node"
ok "restart-node: same pods, same data, Service answers"
echo "[selftest] all checks passed"
