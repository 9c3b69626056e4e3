#!/usr/bin/env bash
# Start, stop and restart the broker the interop suites run against.
#
#   interop/broker.sh start warren|oracle STATE_DIR PORT    (MGMT_PORT: the management port,
#                                                           default a free one for warren)
#   interop/broker.sh restart STATE_DIR     (same port, same data: durable state must survive)
#   interop/broker.sh stop STATE_DIR
#
# warren: the binary named by WARREN_BIN (default target/release/warren), data under
# STATE_DIR/data, log in STATE_DIR/log.
# oracle: a real RabbitMQ from Debian's rabbitmq-server package (installed with apt-get if it
# is missing), as its own node on PORT with its files under STATE_DIR, guest allowed from
# anywhere; the node the package starts by itself on 5672 is stopped once, at install.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

die() { echo "broker.sh: $*" >&2; exit 1; }

oracle_env() {
  local state=$1 port
  port=$(cat "$state/port")
  export RABBITMQ_NODENAME=interop$port@localhost RABBITMQ_NODE_PORT=$port
  export RABBITMQ_DIST_PORT=$(cat "$state/distport")
  export RABBITMQ_CONFIG_FILE=$state/rabbitmq.conf
  export RABBITMQ_ENABLED_PLUGINS_FILE=$state/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$state/mnesia RABBITMQ_LOG_BASE=$state/rlog
  export RABBITMQ_PID_FILE=$state/pid
}

oracle_install() {
  command -v rabbitmq-server >/dev/null && return
  echo "broker.sh: installing rabbitmq-server" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server) \
    >/dev/null
  rabbitmqctl -n rabbit@"$(hostname -s)" shutdown >/dev/null 2>&1 || true
}

start_warren() {
  local state=$1 port bin
  port=$(cat "$state/port")
  bin=${WARREN_BIN:-$root/target/release/warren}
  [ -x "$bin" ] || die "no warren binary at $bin (cargo build --release)"
  # Emptied here, not by the redirection of the background process, so that the wait below
  # cannot see the previous run's "listening" line.
  : >"$state/log"
  WARREN_LOG=${WARREN_LOG:-info} "$bin" --amqp-port "$port" --mgmt-port "$(cat "$state/mgmtport")" \
    --metrics-port "${WARREN_METRICS_PORT:-0}" --data-dir "$state/data" \
    >>"$state/log" 2>&1 &
  echo $! >"$state/pid"
  for _ in $(seq 300); do
    grep -q "listening on .*:$port" "$state/log" 2>/dev/null && return 0
    kill -0 "$(cat "$state/pid")" 2>/dev/null || die "warren exited: $(tail -5 "$state/log")"
    sleep 0.1
  done
  die "warren did not start within 30s"
}

stop_warren() {
  local state=$1 pid
  pid=$(cat "$state/pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

start_oracle() {
  local state=$1 port
  port=$(cat "$state/port")
  oracle_install
  cat >"$state/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$port
loopback_users = none
disk_free_limit.absolute = 50MB
CONF
  # The management plugin only when a port was asked for (benchmarks run RabbitMQ without).
  mport=$(cat "$state/mgmtport")
  if [ "$mport" != 0 ]; then
    printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "$mport" >>"$state/rabbitmq.conf"
    echo '[rabbitmq_management].' >"$state/enabled_plugins"
  else
    echo '[].' >"$state/enabled_plugins"
  fi
  if id rabbitmq >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then chown -R rabbitmq:rabbitmq "$state"; fi
  oracle_env "$state"
  if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    # Debian's wrapper switches user with su, whose PAM session resets the open-files limit
    # to 1024: fewer than 1,000 connections. Start it as the rabbitmq user directly, with a
    # limit like warren's, so that benchmarks with many connections compare like with like.
    ulimit -Hn 1048576 2>/dev/null || true
    (cd /var/lib/rabbitmq && setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
      env HOME=/var/lib/rabbitmq sh -c 'ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec /usr/lib/rabbitmq/bin/rabbitmq-server -detached') >/dev/null 2>&1
  else
    rabbitmq-server -detached >/dev/null 2>&1
  fi
  # -detached returns before the node can be reached; await_startup fails fast until then
  for _ in $(seq 90); do
    rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup --timeout 90 >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "rabbitmq did not start"
}

stop_oracle() {
  oracle_env "$1"
  rabbitmqctl -n "$RABBITMQ_NODENAME" shutdown >/dev/null 2>&1 || true
}

cmd=${1:-}
case $cmd in
  start)
    kind=${2:-}; state=${3:-}; port=${4:-}
    [[ $kind == warren || $kind == oracle ]] && [ -n "$state" ] && [[ $port =~ ^[0-9]+$ ]] \
      || die "usage: broker.sh start warren|oracle STATE_DIR PORT"
    mkdir -p "$state"
    echo "$kind" >"$state/kind"
    echo "$port" >"$state/port"
    echo "${MGMT_PORT:-${WARREN_MGMT_PORT:-0}}" >"$state/mgmtport"
    # Erlang distribution needs a port of its own (kept across restarts).
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' \
      >"$state/distport"
    "start_$kind" "$state"
    ;;
  stop|restart)
    state=${2:-}
    [ -f "$state/kind" ] || die "usage: broker.sh $cmd STATE_DIR (no broker there)"
    kind=$(cat "$state/kind")
    "stop_$kind" "$state"
    if [ "$cmd" = restart ]; then "start_$kind" "$state"; fi
    ;;
  *) die "usage: broker.sh start|stop|restart ..." ;;
esac
