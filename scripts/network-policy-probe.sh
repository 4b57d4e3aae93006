#!/usr/bin/env bash
# Tells whether the cluster enforces clima's NetworkPolicies: a pod that no
# policy admits tries to open Redis's port. A cluster whose network plugin
# ignores NetworkPolicies (GKE Standard without network policy enforcement
# or Dataplane V2, kind before v0.24) lets it in, and the isolation of
# docs/security.md is absent. Only prints: it changes nothing and never fails
# the deploy.
#   scripts/network-policy-probe.sh
set -uo pipefail
KUBECTL=${KUBECTL:-kubectl}
namespace=${NAMESPACE:-clima}
target=${TARGET:-redis:6379}
image=${PROBE_IMAGE:-busybox:1.37}

# Restricted Pod Security; the label no policy names.
overrides=$(cat <<JSON
{"apiVersion": "v1", "metadata": {"labels": {"app.kubernetes.io/name": "clima-network-policy-probe"}},
 "spec": {"automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "probe", "image": "$image", "command": ["nc", "-z", "-w", "5", "${target%%:*}", "${target##*:}"],
   "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}}]}}
JSON
)
pod=clima-network-policy-probe
echo "checking that NetworkPolicies are enforced: a pod no policy admits opens $target …"
$KUBECTL delete pod -n "$namespace" "$pod" --ignore-not-found --wait >/dev/null
$KUBECTL run "$pod" -n "$namespace" --restart=Never --image="$image" --overrides="$overrides" >/dev/null
# nc exits 0 once connected, 1 when refused or after its 5 s time-out.
$KUBECTL wait pod/"$pod" -n "$namespace" --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s >/dev/null 2>&1 ||
  $KUBECTL wait pod/"$pod" -n "$namespace" --for=jsonpath='{.status.phase}'=Failed --timeout=10s >/dev/null 2>&1
phase=$($KUBECTL get pod/"$pod" -n "$namespace" -o jsonpath='{.status.phase}')
$KUBECTL delete pod -n "$namespace" "$pod" --ignore-not-found --wait=false >/dev/null
case "$phase" in
  Succeeded)
    cat >&2 <<MSG
WARNING: a pod that no NetworkPolicy admits reached $target in namespace $namespace:
this cluster does not enforce NetworkPolicies, so clima's pods are not isolated.
Create the cluster with enforcement (GKE: --enable-dataplane-v2; kind: v0.24 or later),
see docs/deployment.md#first-deploy.
MSG
    ;;
  Failed) echo "NetworkPolicies are enforced: $target refused a pod no policy admits" ;;
  *) echo "WARNING: could not tell whether NetworkPolicies are enforced: the probe pod ($image) did not finish (phase: ${phase:-none})" >&2 ;;
esac
