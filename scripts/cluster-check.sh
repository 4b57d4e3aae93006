#!/usr/bin/env bash
# Fails, before anything is installed, when the cluster's API server is
# older than the Kubernetes version Knative's components need (they exit
# at start otherwise: knative.dev/pkg version.CheckMinimumVersion).
#   scripts/cluster-check.sh 1.32.0
set -euo pipefail
KUBECTL=${KUBECTL:-kubectl}
min=${1:?usage: $0 MIN_VERSION}

# kubectl version fails when it reaches no API server: the message below says so.
server=$($KUBECTL version -o json 2>/dev/null | sed -n '/"serverVersion"/,/}/s/.*"gitVersion": *"v\{0,1\}\([0-9.]*\).*/\1/p' || true)
if [ -z "$server" ]; then
  echo "cannot read the API server's version from kubectl version: is kubectl pointed at a cluster?" >&2
  exit 1
fi
if [ "$(printf '%s\n%s\n' "$min" "$server" | sort -V | head -n 1)" != "$min" ]; then
  echo "this cluster runs Kubernetes $server; Knative 1.20 needs $min or later (README: Deploying to a cluster)" >&2
  exit 1
fi
echo "Kubernetes $server (Knative needs $min or later)"
