#!/usr/bin/env bash
# rabbitmqadmin interop suite: the two management CLIs operators use, run against the broker's
# management HTTP API, every command of the sessions recorded against RabbitMQ 3.10.8.
#
#   bash interop/rabbitmqadmin/run.sh [v1|v2]...
#
# v1 is the Python script RabbitMQ's management plugin ships (Debian's rabbitmq-server package
# has it; when it is not installed, the package is downloaded with apt-get and only the script
# is taken out of it). v2 is the Rust rewrite, `cargo install rabbitmqadmin` (pinned version,
# installed under interop/rabbitmqadmin/.tools). Normally started by interop/run.sh, which
# provides AMQP_URL, AMQP_PORT and MGMT_PORT. Prints PASS/FAIL per command; exits 1 if any
# failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${MGMT_PORT:?run through interop/run.sh (MGMT_PORT is not set)}"
: "${AMQP_PORT:?}"
V2_VERSION=2.35.0
which=("$@")
[ ${#which[@]} -eq 0 ] && which=(v1 v2)

work=$(mktemp -d "${TMPDIR:-/tmp}/warren-rabbitmqadmin-XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0 failed=0

# check NAME EXPECTED_EXIT CMD...: run CMD, keep its output in $out; passes when the exit
# status is the expected one (and what `expect` then asks is in the output).
check() {
  name=$1
  local want=$2
  shift 2
  out=$("$@" 2>&1)
  local rc=$?
  if [ "$rc" = "$want" ]; then
    ok=1
    echo "PASS $name"
    passed=$((passed + 1))
  else
    ok=0
    echo "FAIL $name: exit $rc, expected $want"
    sed 's/^/    /' <<<"$out" | head -20
    failed=$((failed + 1))
  fi
}

# expect PATTERN...: each fixed string must be in the last command's output, or the check
# that ran it fails after all.
expect() {
  [ "$ok" = 1 ] || return
  for p in "$@"; do
    if ! grep -qF -- "$p" <<<"$out"; then
      echo "FAIL $name: output lacks '$p'"
      sed 's/^/    /' <<<"$out" | head -20
      passed=$((passed - 1))
      failed=$((failed + 1))
      return
    fi
  done
}

# ------------------------------------------------------------------ v1

v1_script() {
  for f in /usr/bin/rabbitmqadmin /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/rabbitmq_management-*/priv/www/cli/rabbitmqadmin; do
    [ -f "$f" ] && { echo "$f"; return; }
  done
  (cd "$work" && apt-get download -qq rabbitmq-server >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get download -qq rabbitmq-server >/dev/null 2>&1; }) \
    || return 1
  dpkg-deb -x "$work"/rabbitmq-server_*.deb "$work/pkg" || return 1
  find "$work/pkg" -path '*priv/www/cli/rabbitmqadmin' | head -1
}

run_v1() {
  local script
  script=$(v1_script) && [ -n "$script" ] || { echo "FAIL v1: cannot get rabbitmqadmin v1"; failed=$((failed + 1)); return; }
  v1() { python3 "$script" -H 127.0.0.1 -P "$MGMT_PORT" -u guest -p guest "$@"; }
  check "v1 declare exchange" 0 v1 declare exchange name=orders type=topic durable=true
  expect "exchange declared"
  check "v1 declare queue" 0 v1 declare queue name=orders.created durable=true
  expect "queue declared"
  check "v1 declare queue with arguments" 0 v1 declare queue name=q.ttl durable=true \
    arguments='{"x-message-ttl":60000,"x-max-length":1000}'
  expect "queue declared"
  check "v1 declare quorum queue" 0 v1 declare queue name=q.quorum durable=true arguments='{"x-queue-type":"quorum"}'
  expect "queue declared"
  check "v1 declare queue refused" 1 v1 declare queue name=bad durable=true \
    arguments='{"x-queue-type":"quorum","x-max-priority":5}'
  expect "invalid arg 'x-max-priority' for queue 'bad'"
  check "v1 declare binding" 0 v1 declare binding source=orders destination=orders.created \
    routing_key='order.created.#'
  expect "binding declared"
  check "v1 declare e2e binding" 0 v1 declare binding source=orders destination=amq.fanout \
    destination_type=exchange routing_key=x
  expect "binding declared"
  check "v1 publish with properties" 0 v1 publish exchange=orders routing_key=order.created.eu \
    payload='{"id":1}' properties='{"content_type":"application/json","delivery_mode":2,"headers":{"h":"v"}}'
  expect "Message published"
  check "v1 publish" 0 v1 publish routing_key=orders.created payload=hello
  expect "Message published"
  check "v1 publish unroutable" 0 v1 publish routing_key=nowhere payload=lost
  expect "Message published but NOT routed"
  check "v1 get requeue" 0 v1 get queue=orders.created ackmode=ack_requeue_true
  expect '{"id":1}' "order.created.eu"
  check "v1 get" 0 v1 get queue=orders.created ackmode=ack_requeue_false
  expect '{"id":1}'
  check "v1 list queues" 0 v1 list queues name messages
  expect "orders.created" "q.ttl" "q.quorum"
  check "v1 list exchanges" 0 v1 list exchanges name type
  expect "orders" "topic" "amq.fanout"
  check "v1 list bindings" 0 v1 list bindings source destination routing_key
  expect "order.created.#"
  # RabbitMQ lists a new connection only after its next statistics emission (5 s).
  for _ in $(seq 10); do v1 list connections name user channels 2>/dev/null | grep -q guest && break; sleep 1; done
  check "v1 list connections" 0 v1 list connections name user channels
  expect "guest"
  check "v1 list channels" 0 v1 list channels name user
  expect "(1)"
  check "v1 list consumers" 0 v1 list consumers
  expect "amq.ctag-"
  check "v1 list users" 0 v1 list users
  expect "guest" "administrator"
  check "v1 declare vhost" 0 v1 declare vhost name=app
  expect "vhost declared"
  check "v1 declare user" 0 v1 declare user name=alice password=s3cret tags=monitoring
  expect "user declared"
  check "v1 declare permission" 0 v1 declare permission vhost=app user=alice configure='.*' write='.*' read='.*'
  expect "permission declared"
  check "v1 list permissions" 0 v1 list permissions
  expect "alice" "app"
  check "v1 list vhosts" 0 v1 list vhosts name messages
  expect "app"
  check "v1 declare exchange in vhost" 0 v1 -V app declare exchange name=events type=fanout
  expect "exchange declared"
  check "v1 list queues in vhost" 0 v1 -V app list queues name messages
  check "v1 declare policy" 0 v1 declare policy name=ttl-pol pattern='^q\.' definition='{"max-length":500}' apply-to=queues
  expect "policy declared"
  check "v1 list policies" 0 v1 list policies
  expect "ttl-pol"
  check "v1 list nodes" 0 v1 list nodes name type mem_used
  expect "disc"
  check "v1 show overview" 0 v1 show overview rabbitmq_version cluster_name queue_totals.messages object_totals.queues
  expect "rabbitmq_version"
  check "v1 export" 0 v1 export "$work/v1defs.json"
  expect "Exported definitions"
  check "v1 export content" 0 python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sorted(q["name"] for q in d["queues"]))' "$work/v1defs.json"
  expect "orders.created"
  check "v1 purge" 0 v1 purge queue name=orders.created
  expect "queue purged"
  check "v1 delete binding" 0 v1 delete binding source=orders destination=amq.fanout destination_type=exchange properties_key=x
  expect "binding deleted"
  check "v1 declare tmp" 0 v1 declare queue name=tmp.del durable=true
  expect "queue declared"
  check "v1 delete queue" 0 v1 delete queue name=tmp.del
  expect "queue deleted"
  check "v1 bad password" 1 python3 "$script" -H 127.0.0.1 -P "$MGMT_PORT" -u guest -p wrong list queues name messages
  expect "Access refused"
  # Leave the broker as the v2 session expects it.
  for q in orders.created q.ttl q.quorum; do v1 delete queue name=$q >/dev/null 2>&1; done
  v1 delete exchange name=orders >/dev/null 2>&1
  v1 delete vhost name=app >/dev/null 2>&1
  v1 delete user name=alice >/dev/null 2>&1
  v1 delete policy name=ttl-pol >/dev/null 2>&1
}

# ------------------------------------------------------------------ v2

run_v2() {
  local bin=$here/.tools/bin/rabbitmqadmin
  if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -qF "$V2_VERSION"; then
    echo "rabbitmqadmin/run.sh: cargo install rabbitmqadmin $V2_VERSION" >&2
    cargo install -q rabbitmqadmin --version "$V2_VERSION" --locked --root "$here/.tools" >/dev/null 2>&1 \
      || { echo "FAIL v2: cargo install rabbitmqadmin failed"; failed=$((failed + 1)); return; }
  fi
  v2() { "$bin" --host 127.0.0.1 --port "$MGMT_PORT" --username guest --password guest "$@"; }
  check "v2 --version" 0 "$bin" --version
  expect "$V2_VERSION"
  check "v2 show overview" 0 v2 show overview
  expect "RabbitMQ"
  check "v2 declare queue" 0 v2 declare queue --name v2.q --type classic --durable true
  check "v2 declare exchange" 0 v2 declare exchange --name v2.x --type direct
  check "v2 declare binding" 0 v2 declare binding --source v2.x --destination-type queue --destination v2.q --routing-key rk
  check "v2 publish" 0 v2 publish message --exchange v2.x --routing-key rk --payload hello
  check "v2 list queues" 0 v2 list queues
  expect "v2.q"
  check "v2 list exchanges" 0 v2 list exchanges
  expect "v2.x"
  check "v2 list bindings" 0 v2 list bindings
  expect "rk"
  check "v2 list users" 0 v2 list users
  expect "guest"
  check "v2 list vhosts" 0 v2 list vhosts
  check "v2 list permissions" 0 v2 list permissions
  expect "guest"
  check "v2 list connections" 0 v2 list connections
  expect "AMQP 0-9-1"
  check "v2 list channels" 0 v2 list channels
  expect "(1)"
  check "v2 list consumers" 0 v2 list consumers
  expect "perf-test"
  check "v2 list nodes" 0 v2 list nodes
  expect "@"
  check "v2 get" 0 v2 get messages --queue v2.q --count 1
  expect "hello"
  check "v2 purge" 0 v2 purge queue --name v2.q
  check "v2 delete binding" 0 v2 delete binding --source v2.x --destination-type queue --destination v2.q --routing-key rk
  check "v2 delete queue" 0 v2 delete queue --name v2.q
  check "v2 delete exchange" 0 v2 delete exchange --name v2.x
  check "v2 declare vhost" 0 v2 declare vhost --name v2vh
  check "v2 declare user" 0 v2 declare user --name v2user --password pw --tags monitoring
  check "v2 declare permissions" 0 v2 declare permissions --user v2user --configure '.*' --read '.*' --write '.*'
  check "v2 delete user" 0 v2 delete user --name v2user
  check "v2 delete vhost" 0 v2 delete vhost --name v2vh
  check "v2 definitions export" 0 v2 definitions export --file "$work/v2defs.json"
  check "v2 export content" 0 python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([u["name"] for u in d["users"]])' "$work/v2defs.json"
  expect "guest"
  check "v2 local alarms" 0 v2 health_check local_alarms
  check "v2 cluster alarms" 0 v2 health_check cluster_wide_alarms
  check "v2 quorum critical" 0 v2 health_check node_is_quorum_critical
  check "v2 port listener" 0 v2 health_check port_listener --port "$AMQP_PORT"
  check "v2 protocol listener" 0 v2 health_check protocol_listener --protocol amqp
  check "v2 show churn" 0 v2 show churn
}

# A client that publishes and consumes throughout, so the connection, channel and consumer
# listings have something in them: warren-perf, the load generator built with warren.
perf=${WARREN_BIN:-$here/../../target/release/warren}
perf=${perf%/*}/warren-perf
if [ -x "$perf" ]; then
  "$perf" --uri "${AMQP_URL:?}" -x 1 -y 1 -r 5 -q 10 -a 1 -z 600 >"$work/perf.log" 2>&1 &
  perf_pid=$!
  trap 'kill $perf_pid 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 50); do grep -q . "$work/perf.log" && break; sleep 0.1; done
else
  echo "rabbitmqadmin/run.sh: no warren-perf next to warren; connection listings will be empty" >&2
fi

for w in "${which[@]}"; do
  case $w in
    v1) run_v1 ;;
    v2) run_v2 ;;
    *) echo "usage: rabbitmqadmin/run.sh [v1|v2]..." >&2; exit 64 ;;
  esac
done
echo "rabbitmqadmin: $passed passed, $failed failed"
[ "$failed" = 0 ]
