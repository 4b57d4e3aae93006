#!/usr/bin/env bash
# Creates clima's Secrets in the cluster with random passwords, idempotently:
# a Secret that exists already is left as it is, so a re-run never changes a
# password under a running deployment.
#   scripts/secrets.sh          create what is missing (kubectl's current context)
#   scripts/secrets.sh --list   print "secret key" for every key it creates
set -euo pipefail
namespace=${NAMESPACE:-clima}

# secret, then its keys; key=value is a fixed value, a bare key a random one.
secrets=(
  "clima-redis password"
  "clima-valkey password"
  "clima-rabbitmq username=clima-writer password"
  "clima-grafana admin-user=admin admin-password"
)

if [ "${1:-}" = --list ]; then
  for entry in "${secrets[@]}"; do
    read -r name keys <<<"$entry"
    for key in $keys; do echo "$name ${key%%=*}"; done
  done
  exit 0
fi

random() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32; }

kubectl get namespace "$namespace" >/dev/null 2>&1 || kubectl create namespace "$namespace"
for entry in "${secrets[@]}"; do
  read -r name keys <<<"$entry"
  if kubectl get secret -n "$namespace" "$name" >/dev/null 2>&1; then
    echo "secret $namespace/$name exists, kept"
    continue
  fi
  args=()
  for key in $keys; do
    if [[ $key == *=* ]]; then args+=(--from-literal="$key"); else args+=(--from-literal="$key=$(random)"); fi
  done
  kubectl create secret generic -n "$namespace" "$name" "${args[@]}" >/dev/null
  echo "secret $namespace/$name created"
done
