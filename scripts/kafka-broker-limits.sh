#!/usr/bin/env bash
# Raises the Knative Kafka broker's producer max.request.size (1 MiB in the
# release's config-kafka-broker-data-plane) to the event size clima takes, so
# that a 10,000-report event (~1 MB) and its validated reply (~1.6 MB) reach
# the Broker's topic; Strimzi's message.max.bytes in kafka-source/kafka.yaml
# is raised to the same bound. Only that key changes; the rest of the
# release's properties stay. Idempotent; it reads the value back and fails
# when it is not set.
#   scripts/kafka-broker-limits.sh          patch the cluster (kubectl's current context)
#   scripts/kafka-broker-limits.sh --size   print the bound
#   scripts/kafka-broker-limits.sh --patch  read producer properties on stdin, print the merge patch
set -euo pipefail
KUBECTL=${KUBECTL:-kubectl}
namespace=knative-eventing
configmap=config-kafka-broker-data-plane
key=config-kafka-broker-producer.properties
size=16777216 # 16 MiB: events.MaxEventBytes, the local Broker's bound, and Strimzi's message.max.bytes

# patch turns producer properties (stdin) into a JSON merge patch of the
# ConfigMap that sets max.request.size and keeps every other line.
patch() {
  awk -v key="$key" -v size="$size" '
    function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); gsub(/\r/, "", s); return s }
    /^[ \t]*max\.request\.size[ \t]*[=:]/ { next }
    { body = body esc($0) "\\n" }
    END { printf "{\"data\":{\"%s\":\"%smax.request.size=%s\\n\"}}\n", key, body, size }'
}

case "${1:-}" in
  --size) echo "$size"; exit 0 ;;
  --patch) patch; exit 0 ;;
esac

current() { $KUBECTL get configmap -n "$namespace" "$configmap" -o "jsonpath={.data.${key//./\\.}}"; }

if current | grep -qx "max.request.size=$size"; then
  echo "configmap $namespace/$configmap: max.request.size=$size already"
else
  $KUBECTL patch configmap -n "$namespace" "$configmap" --type merge -p "$(current | patch)" >/dev/null
  if ! current | grep -qx "max.request.size=$size"; then
    echo "configmap $namespace/$configmap: max.request.size is not $size after the patch" >&2
    exit 1
  fi
  echo "configmap $namespace/$configmap: max.request.size=$size"
fi

# The receiver and the dispatcher (which produces the Triggers' replies,
# ingest's validated events, to the Broker's topic) read their producer
# properties once, when they start. Each pod template carries a checksum of
# the properties it must run with: a change of it rolls the pods, a run
# that finds it in place changes nothing, and a run after one that stopped
# half-way finishes the job. The dispatcher is a StatefulSet the Kafka
# controller scales, from zero until a Trigger exists.
checksum=$(current | sha256sum | cut -c1-16)
annotation=clima.dev/producer-properties
for workload in deployment/kafka-broker-receiver statefulset/kafka-broker-dispatcher; do
  stamped=$($KUBECTL get "$workload" -n "$namespace" -o "jsonpath={.spec.template.metadata.annotations.${annotation//./\\.}}")
  if [ "$stamped" != "$checksum" ]; then
    $KUBECTL patch "$workload" -n "$namespace" --type merge \
      -p "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"$annotation\":\"$checksum\"}}}}}" >/dev/null
    $KUBECTL rollout status "$workload" -n "$namespace" --timeout="${WAIT:-600s}"
  fi
done
