#!/usr/bin/env bash
# Creates clima's Secrets in the cluster with random passwords, idempotently:
# a key that exists already is left as it is, so a re-run never changes a
# password under a running deployment; a key a Secret lacks (one a newer
# clima added) is added to it.
#   scripts/secrets.sh          create what is missing (kubectl's current context)
#   scripts/secrets.sh --list   print "secret key" for every key it creates
set -euo pipefail
namespace=${NAMESPACE:-clima}

# secret, then its keys; key=value is a fixed value, a bare key a random one.
secrets=(
  # password: the administrator's; then one per store user (store.Roles)
  "clima-redis password consumer-password dead-letter-password reader-password"
  "clima-valkey password consumer-password reader-password"
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
  existing=$(kubectl get secret -n "$namespace" "$name" -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}' 2>/dev/null) || existing=
  args=() patch=
  for key in $keys; do
    [[ " $existing " == *" ${key%%=*} "* ]] && continue
    if [[ $key == *=* ]]; then value=${key#*=}; else value=$(random); fi
    args+=(--from-literal="${key%%=*}=$value")
    patch+="${patch:+,}\"${key%%=*}\":\"$value\""
  done
  if [ ${#args[@]} = 0 ]; then
    echo "secret $namespace/$name exists, kept"
  elif [ -z "$existing" ] && ! kubectl get secret -n "$namespace" "$name" >/dev/null 2>&1; then
    kubectl create secret generic -n "$namespace" "$name" "${args[@]}" >/dev/null
    echo "secret $namespace/$name created"
  else
    # Only the keys it lacks are added; the keys it has are not touched.
    kubectl patch secret -n "$namespace" "$name" --type merge -p "{\"stringData\":{$patch}}" >/dev/null
    echo "secret $namespace/$name: added ${#args[@]} key(s), kept the others"
  fi
done
