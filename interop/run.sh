#!/usr/bin/env bash
# The interop suites: real RabbitMQ clients in several languages, each running the same
# scenarios against one broker.
#
#   bash interop/run.sh [--oracle] [LANG...]
#
# LANG is a folder of interop/ with a run.sh (python, node, go, java, c, rabbitmqadmin, ui,
# docker); all of them when none is named. ui (the management web page in headless
# Chromium) and docker (the compose example run through the image's entrypoint) start a
# warren of their own, and have nothing to check on --oracle.
# The broker is warren (WARREN_BIN, default target/release/warren, which must be built) on a
# free port with a fresh data directory, or with --oracle a real RabbitMQ
# (Debian's rabbitmq-server, installed if missing) on a free port. Each LANG/run.sh installs
# what its client needs and gets:
#   AMQP_URL        amqp://guest:guest@127.0.0.1:PORT/%2f
#   AMQP_HOST, AMQP_PORT
#   MGMT_PORT       the management HTTP API's port (RabbitMQ's management plugin for the oracle)
#   BROKER_KIND     warren or oracle
#   BROKER_RESTART  a shell command that restarts the broker on the same port and data
# Exit status: 0 only if every suite passed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kind=warren
langs=()
for arg in "$@"; do
  case $arg in
    --oracle) kind=oracle ;;
    -*) echo "usage: interop/run.sh [--oracle] [LANG...]" >&2; exit 64 ;;
    *) langs+=("$arg") ;;
  esac
done
if [ ${#langs[@]} -eq 0 ]; then
  for d in "$here"/*/; do
    [ -f "$d/run.sh" ] && langs+=("$(basename "$d")")
  done
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
mgmt_port=$(free_port)
state=$(mktemp -d "${TMPDIR:-/tmp}/warren-interop-$kind-XXXXXX")
chmod 755 "$state"
trap 'bash "$here/broker.sh" stop "$state"; rm -rf "$state"' EXIT
MGMT_PORT=$mgmt_port bash "$here/broker.sh" start "$kind" "$state" "$port" || exit 1

export AMQP_HOST=127.0.0.1 AMQP_PORT=$port BROKER_KIND=$kind MGMT_PORT=$mgmt_port
export AMQP_URL="amqp://guest:guest@127.0.0.1:$port/%2f"
export BROKER_RESTART="bash '$here/broker.sh' restart '$state'"

declare -A result
status=0
for lang in "${langs[@]}"; do
  [ -f "$here/$lang/run.sh" ] || { echo "interop: no suite $lang" >&2; result[$lang]=missing; status=1; continue; }
  echo "=== $lang against $kind on port $port"
  if bash "$here/$lang/run.sh"; then result[$lang]=passed; else result[$lang]=FAILED; status=1; fi
done
echo "=== interop against $kind"
for lang in "${langs[@]}"; do printf '  %-8s %s\n' "$lang" "${result[$lang]}"; done
exit $status
