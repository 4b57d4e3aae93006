#!/usr/bin/env bash
# Tells whether the cluster enforces clima's NetworkPolicies. Two pods open
# Redis's port: one labelled as Grafana, which Redis's policy admits (the
# control: it must connect, or the probe cannot tell), and one no policy
# admits. A cluster whose network plugin ignores NetworkPolicies (GKE
# Standard without network policy enforcement or Dataplane V2, kind before
# v0.24) lets the second in, and the isolation of docs/security.md is
# absent. Only prints: it changes nothing and never fails the deploy.
#   scripts/network-policy-probe.sh
set -uo pipefail
KUBECTL=${KUBECTL:-kubectl}
namespace=clima
target=${TARGET:-redis:6379}
image=${PROBE_IMAGE:-busybox:1.37}
pod=clima-network-policy-probe
timeout=120

# probe NAME LABEL_VALUE: runs a pod labelled app.kubernetes.io/name=LABEL_VALUE
# (restricted Pod Security) that exits 0 once it connected to target, 1 when
# refused or after nc's 5 s time-out; prints its phase when it ends.
probe() {
  local name=$1 label=$2 phase="" deadline=$((SECONDS + timeout))
  $KUBECTL delete pod -n "$namespace" "$name" --ignore-not-found --wait >/dev/null
  $KUBECTL run "$name" -n "$namespace" --restart=Never --image="$image" --overrides="$(cat <<JSON
{"apiVersion": "v1", "metadata": {"labels": {"app.kubernetes.io/name": "$label"}},
 "spec": {"automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "probe", "image": "$image", "command": ["nc", "-z", "-w", "5", "${target%%:*}", "${target##*:}"],
   "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}}]}}
JSON
)" >/dev/null || return
  while [ $SECONDS -lt $deadline ]; do
    phase=$($KUBECTL get pod "$name" -n "$namespace" -o jsonpath='{.status.phase}' 2>/dev/null)
    case "$phase" in Succeeded | Failed) break ;; esac
    sleep 2
  done
  $KUBECTL delete pod -n "$namespace" "$name" --ignore-not-found --wait=false >/dev/null
  echo "$phase"
}

echo "checking that NetworkPolicies are enforced: a pod no policy admits opens $target …"
control=$(probe "$pod-control" grafana)
if [ "$control" != Succeeded ]; then
  echo "WARNING: could not tell whether NetworkPolicies are enforced: a pod Redis admits could not reach $target either (its phase: ${control:-none}; the image $image, DNS and Redis must work)" >&2
  exit 0
fi
case "$(probe "$pod" "$pod")" in
  Succeeded)
    cat >&2 <<MSG
WARNING: a pod that no NetworkPolicy admits reached $target in namespace $namespace:
this cluster does not enforce NetworkPolicies, so clima's pods are not isolated.
Create the cluster with enforcement (GKE: --enable-dataplane-v2; kind: v0.24 or later),
see docs/deployment.md#first-deploy.
MSG
    ;;
  Failed) echo "NetworkPolicies are enforced: $target refused a pod no policy admits, and took one its policy admits" ;;
  *) echo "WARNING: could not tell whether NetworkPolicies are enforced: the probe pod did not finish in ${timeout}s" >&2 ;;
esac
