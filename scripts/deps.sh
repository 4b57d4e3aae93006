#!/usr/bin/env bash
# Installs and starts what clima's tests and local runtime need, idempotently:
# redis-server, rabbitmq-server, prometheus, python3-locust and chromium from Debian's packages (as
# root or through sudo), then RabbitMQ started when nothing answers on its
# port. Tests start their own redis-server processes; Kafka is embedded.
set -euo pipefail

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || missing+=(rabbitmq-server)
# Locust for make load and its test; Debian's runs with Debian's python3.
[ -x /usr/bin/locust ] || missing+=(python3-locust)
# Prometheus, which clima dev starts on a free port to scrape every replica.
command -v prometheus >/dev/null || missing+=(prometheus)
# Chromium for the dashboard's browser tests and make screenshot.
# (the names internal/browser looks for)
[ -n "${CHROMIUM:-}" ] || command -v chromium chromium-browser google-chrome google-chrome-stable >/dev/null || missing+=(chromium)
"$(dirname "$0")/apt-install.sh" "${missing[@]}"

# RABBITMQ_URL naming another server means that one is used as it is.
if [ -n "${RABBITMQ_URL:-}" ] && ! [[ "$RABBITMQ_URL" =~ @(127\.0\.0\.1|localhost)(:5672)?(/|$) ]]; then
  exit 0
fi
port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
if ! port_open; then
  echo "deps: starting RabbitMQ"
  # Loopback only: AMQP, the Erlang distribution port and epmd (the same as
  # rabbitLoopbackEnv in internal/local/infra/rabbitmq.go).
  as_root env PATH="/usr/sbin:$PATH" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" rabbitmq-server -detached
  for _ in $(seq 1 120); do port_open && break; sleep 0.5; done
  port_open || { echo "deps: RabbitMQ did not open 127.0.0.1:5672 within 60s; see /var/log/rabbitmq" >&2; exit 1; }
fi
# The port opens before the broker takes connections.
as_root env PATH="/usr/sbin:$PATH" rabbitmqctl -q await_startup --timeout 60 >/dev/null 2>&1 || true
