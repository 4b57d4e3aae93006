#!/usr/bin/env bash
# Installs Debian packages, as root or through sudo: apt-install.sh PKG...
set -euo pipefail
[ $# -gt 0 ] || exit 0
if ! command -v apt-get >/dev/null; then
  echo "install $* with your package manager (no apt-get here)" >&2
  exit 1
fi
run() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "need root or sudo to run: $*" >&2; exit 1
  fi
}
echo "installing $*"
run apt-get update -qq
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
