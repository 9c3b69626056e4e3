#!/usr/bin/env bash
# C interop suite for warren: rabbitmq-c's command-line tools (Debian's amqp-tools:
# amqp-declare-queue, amqp-delete-queue, amqp-publish, amqp-get, amqp-consume) and, for what
# they cannot express, a small rabbitmq-c program (amqpcheck.c, built into build/).
#
#   bash interop/c/run.sh [TEST...]
#
# Normally started by interop/run.sh, which provides AMQP_URL, AMQP_HOST, AMQP_PORT,
# BROKER_KIND and BROKER_RESTART. Installs amqp-tools, librabbitmq-dev and gcc with apt-get
# when they are missing. Prints PASS/FAIL per test; exits 1 if any test failed. With TEST
# names only those run (see the list at the bottom; the restart tests restart the broker).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$here/build

: "${AMQP_URL:?run through interop/run.sh (AMQP_URL is not set)}"
: "${AMQP_HOST:?}" "${AMQP_PORT:?}"
BROKER_RESTART=${BROKER_RESTART:-}

# ------------------------------------------------------------------ install and build

need=()
command -v amqp-publish >/dev/null || need+=(amqp-tools)
[ -f /usr/include/amqp.h ] || need+=(librabbitmq-dev)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v timeout >/dev/null && command -v sha256sum >/dev/null || need+=(coreutils)
if [ ${#need[@]} -gt 0 ]; then
  echo "c/run.sh: installing ${need[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } \
    >/dev/null || { echo "c/run.sh: apt-get install ${need[*]} failed" >&2; exit 1; }
fi
mkdir -p "$build"
if [ ! -x "$build/amqpcheck" ] || [ "$here/amqpcheck.c" -nt "$build/amqpcheck" ]; then
  gcc -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -Wno-missing-field-initializers \
    -o "$build/amqpcheck" "$here/amqpcheck.c" -lrabbitmq \
    || { echo "c/run.sh: building amqpcheck failed" >&2; exit 1; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/warren-interop-c-XXXXXX")
trap 'rm -rf "$work"' EXIT
T=20 # seconds any single tool invocation may take

# ------------------------------------------------------------------ helpers
# Tests run one at a time, each in a subshell with its own directory $W; fail() ends it.

fail() {
  echo "    $*" >&2
  exit 1
}

# expect_eq WHAT GOT WANT
expect_eq() {
  [ "$2" == "$3" ] || fail "$1: got [$2], expected [$3]"
}

# capture CMD...: runs CMD with a timeout; sets rc, out and err
capture() {
  timeout "$T" "$@" >"$W/out" 2>"$W/err"
  rc=$?
  out=$(cat "$W/out")
  err=$(cat "$W/err")
}

# expect_error WANT_RC WANT_STDERR CMD...
expect_error() {
  local want_rc=$1 want_err=$2
  shift 2
  capture "$@"
  expect_eq "exit status of $1" "$rc" "$want_rc"
  expect_eq "stderr of $1" "$err" "$want_err"
}

# A queue/key name unique to this run and test.
uname_() { echo "c-$TEST-$1-$$"; }

declare_q() { # QUEUE [-d]
  capture amqp-declare-queue -u "$AMQP_URL" -q "$@"
  [ "$rc" = 0 ] || fail "amqp-declare-queue $*: rc $rc: $err"
  expect_eq "amqp-declare-queue output" "$out" "$1"
}

pub() { # QUEUE BODY [amqp-publish args] (through the default exchange)
  local q=$1 body=$2
  shift 2
  capture amqp-publish -u "$AMQP_URL" -r "$q" -b "$body" "$@"
  [ "$rc" = 0 ] || fail "amqp-publish to $q: rc $rc: $err"
}

pubx() { # EXCHANGE KEY BODY [amqp-publish args]
  local x=$1 key=$2 body=$3
  shift 3
  capture amqp-publish -u "$AMQP_URL" -e "$x" -r "$key" -b "$body" "$@"
  [ "$rc" = 0 ] || fail "amqp-publish to $x/$key: rc $rc: $err"
}

# get_all QUEUE: prints the bodies amqp-get takes from QUEUE, each followed by '|', until
# amqp-get reports an empty queue (exit 2); an error is printed as ERROR(...).
get_all() {
  local i r
  for i in $(seq 500); do
    timeout "$T" amqp-get -u "$AMQP_URL" -q "$1" >"$W/get" 2>"$W/get.err"
    r=$?
    case $r in
      0) printf '%s|' "$(cat "$W/get")" ;;
      2) [ -s "$W/get" ] && printf 'OUTPUT-ON-EMPTY(%s)' "$(cat "$W/get")"; return 0 ;;
      *) printf 'ERROR(rc %s: %s)' "$r" "$(cat "$W/get.err")"; return 1 ;;
    esac
  done
}

# wait_until SECONDS CMD...: polls CMD every 50 ms
wait_until() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -ge $end ] && return 1
    sleep 0.05
  done
}

# Consumers: amqp-consume in the background, running sink.sh for every message.
# consumer_start NAME amqp-consume-args... ; the consumer's files are in $W/NAME.
consumer_start() {
  local dir=$W/$1
  shift
  mkdir -p "$dir"
  timeout 120 amqp-consume -u "$AMQP_URL" "$@" bash "$here/sink.sh" "$dir" \
    >"$dir.out" 2>"$dir.err" &
  echo $! >"$dir.pid"
  echo $! >>"$W/pids"
}

consumer_stop() { # NAME: kill it (its connection closes) and wait for it
  local pid
  pid=$(cat "$W/$1.pid")
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

msg_count() { find "$W/$1" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]' | wc -l; }
count_is() { [ "$(msg_count "$1")" = "$2" ]; }
has_body() { # NAME BODY
  local f
  for f in "$W/$1"/[0-9][0-9][0-9][0-9]; do
    [ -e "$f" ] && [ "$(cat "$f")" == "$2" ] && return 0
  done
  return 1
}
# bodies NAME: the bodies the consumer got, in order, each followed by '|' (probes and the
# END marker left out)
bodies() {
  local f b
  for f in "$W/$1"/[0-9][0-9][0-9][0-9]; do
    [ -e "$f" ] || continue
    b=$(cat "$f")
    case $b in probe-* | END) ;; *) printf '%s|' "$b" ;; esac
  done
}

# consumer_ready NAME QUEUE: the consumer has declared and bound QUEUE and is consuming once
# a probe published to QUEUE through the default exchange arrives (probes published before
# the queue exists are dropped as unroutable, so publish until one arrives).
consumer_ready() {
  local i
  for i in $(seq 60); do
    kill -0 "$(cat "$W/$1.pid")" 2>/dev/null || fail "consumer $1 exited: $(cat "$W/$1.err")"
    pub "$2" "probe-$i"
    wait_until 1 has_body "$1" "probe-$i" && return 0
  done
  fail "consumer $1 on $2 never got a probe: $(cat "$W/$1.err")"
}

# consumer_end NAME QUEUE: publish END to QUEUE through the default exchange (it queues up
# behind everything routed there before), wait for it, stop the consumer.
consumer_end() {
  pub "$2" END
  wait_until 15 has_body "$1" END || fail "consumer $1 did not get END; it got [$(bodies "$1")]"
  consumer_stop "$1"
}

cleanup_test() {
  local pid
  if [ -f "$W/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null; done <"$W/pids"
  fi
  wait 2>/dev/null
}

login_error_530() {
  echo "logging in to AMQP server: server connection error 530, message: NOT_ALLOWED - vhost $1 not found"
}
LOGIN_ERROR_403="logging in to AMQP server: server connection error 403, message: ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."

# ------------------------------------------------------------------ scenario 1: connecting

test_connect_url() {
  local q
  q=$(uname_ q)
  declare_q "$q"
  pub "$q" hello
  expect_eq "amqp-get" "$(get_all "$q")" "hello|"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
  expect_eq "amqp-delete-queue rc" "$rc" 0
  expect_eq "amqp-delete-queue output (messages deleted)" "$out" 0
  # the vhost spelled %2F and with --url's long form
  capture amqp-declare-queue --url "amqp://guest:guest@$AMQP_HOST:$AMQP_PORT/%2F" -q "$q"
  expect_eq "declare via %2F rc ($err)" "$rc" 0
  capture amqp-delete-queue --url "amqp://guest:guest@$AMQP_HOST:$AMQP_PORT/%2F" -q "$q"
  expect_eq "delete via %2F rc ($err)" "$rc" 0
}

test_connect_options() {
  local q c
  q=$(uname_ q)
  c=(--server "$AMQP_HOST" --port "$AMQP_PORT" --vhost / --username guest --password guest)
  capture amqp-declare-queue "${c[@]}" -q "$q"
  expect_eq "declare rc ($err)" "$rc" 0
  expect_eq "declare output" "$out" "$q"
  capture amqp-publish "${c[@]}" --heartbeat 30 -r "$q" -b "with options"
  expect_eq "publish rc ($err)" "$rc" 0
  capture amqp-get "${c[@]}" --heartbeat 5 -q "$q"
  expect_eq "get rc ($err)" "$rc" 0
  expect_eq "get output" "$out" "with options"
  # credentials from --authfile (Debian's amqp-tools: "username:U" and "password:P" lines)
  printf 'username:guest\npassword:guest\n' >"$W/auth"
  capture amqp-get --server "$AMQP_HOST" --port "$AMQP_PORT" --vhost / --authfile "$W/auth" -q "$q"
  expect_eq "get with --authfile on the now empty queue: rc ($err)" "$rc" 2
  printf 'username:guest\npassword:not-the-password\n' >"$W/auth"
  expect_error 1 "$LOGIN_ERROR_403" \
    amqp-get --server "$AMQP_HOST" --port "$AMQP_PORT" --authfile "$W/auth" -q "$q"
  capture amqp-delete-queue "${c[@]}" -q "$q"
  expect_eq "delete rc ($err)" "$rc" 0
}

test_bad_vhost() {
  local v="c-no-such-vhost-$$"
  expect_error 1 "$(login_error_530 "$v")" \
    amqp-get -u "amqp://guest:guest@$AMQP_HOST:$AMQP_PORT/$v" -q any
  expect_error 1 "$(login_error_530 "$v")" \
    amqp-declare-queue --server "$AMQP_HOST" --port "$AMQP_PORT" --vhost "$v" -q any
}

test_bad_password() {
  expect_error 1 "$LOGIN_ERROR_403" \
    amqp-get -u "amqp://guest:wrong@$AMQP_HOST:$AMQP_PORT/%2f" -q any
  expect_error 1 "$LOGIN_ERROR_403" \
    amqp-publish --server "$AMQP_HOST" --port "$AMQP_PORT" --username "c-nobody-$$" \
    --password guest -r any -b x
}

test_server_named_queue() {
  local q
  capture amqp-declare-queue -u "$AMQP_URL" -q ""
  expect_eq "declare rc ($err)" "$rc" 0
  q=$out
  [[ $q =~ ^amq\.gen-[A-Za-z0-9_-]{22}$ ]] || fail "server-named queue '$q' is not amq.gen- and 22 base64url characters"
  pub "$q" "to a server-named queue"
  expect_eq "amqp-get" "$(get_all "$q")" "to a server-named queue|"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
  expect_eq "delete rc ($err)" "$rc" 0
}

# ------------------------------------------------------------------ scenario 2: exchanges

test_default_exchange() {
  local q
  q=$(uname_ q)
  declare_q "$q"
  pub "$q" one
  pubx "" "$q" two
  pub "$q" three -p
  expect_eq "queue contents" "$(get_all "$q")" "one|two|three|"
  capture amqp-get -u "$AMQP_URL" -q "$q"
  expect_eq "amqp-get on an empty queue: rc" "$rc" 2
  expect_eq "amqp-get on an empty queue: output" "$out$err" ""
  # a key that names no queue is dropped silently (not mandatory)
  pub "$(uname_ nowhere)" lost
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
  expect_eq "delete output" "$out" 0
}

test_direct() {
  local qa qb ka kb
  qa=$(uname_ a) qb=$(uname_ b) ka=$(uname_ key1) kb=$(uname_ key2)
  consumer_start a -q "$qa" -e amq.direct -r "$ka"
  consumer_start b -q "$qb" -e amq.direct -r "$ka,$kb" # two bindings
  consumer_ready a "$qa"
  consumer_ready b "$qb"
  pubx amq.direct "$ka" m1
  pubx amq.direct "$kb" m2
  pubx amq.direct "$(uname_ key3)" m3
  pubx amq.direct "$ka" m4 -p
  consumer_end a "$qa"
  consumer_end b "$qb"
  expect_eq "queue a (bound to key1)" "$(bodies a)" "m1|m4|"
  expect_eq "queue b (bound to key1 and key2)" "$(bodies b)" "m1|m2|m4|"
  # amqp-consume declared them auto-delete: gone with their consumer
  expect_error 1 "basic.get: server channel error 404, message: NOT_FOUND - no queue '$qa' in vhost '/'" \
    amqp-get -u "$AMQP_URL" -q "$qa"
}

test_fanout() {
  local qa qb
  qa=$(uname_ a) qb=$(uname_ b)
  consumer_start a -q "$qa" -e amq.fanout -r x
  consumer_start b -q "$qb" -e amq.fanout -r "y"
  consumer_ready a "$qa"
  consumer_ready b "$qb"
  pubx amq.fanout "" f1
  pubx amq.fanout "any.key" f2
  capture amqp-publish -u "$AMQP_URL" -e amq.fanout -b f3 # no routing key at all
  expect_eq "publish without a key rc ($err)" "$rc" 0
  consumer_end a "$qa"
  consumer_end b "$qb"
  expect_eq "queue a" "$(bodies a)" "f1|f2|f3|"
  expect_eq "queue b" "$(bodies b)" "f1|f2|f3|"
}

test_topic() {
  local qa qb qc p k
  qa=$(uname_ a) qb=$(uname_ b) qc=$(uname_ c)
  p="c$$topic" # a first word no other test uses
  consumer_start a -q "$qa" -e amq.topic -r "$p.*.c"
  consumer_start b -q "$qb" -e amq.topic -r "$p.#"
  consumer_start c -q "$qc" -e amq.topic -r "#.$p,*.$p.*"
  consumer_ready a "$qa"
  consumer_ready b "$qb"
  consumer_ready c "$qc"
  for k in "$p.b.c" "$p" "$p.b" "$p.b.c.d" "x.$p" "x.$p.y" "x.y.$p.c" "other.b.c" "$p.b.c.c"; do
    pubx amq.topic "$k" "t:$k"
  done
  consumer_end a "$qa"
  consumer_end b "$qb"
  consumer_end c "$qc"
  expect_eq "queue a ($p.*.c)" "$(bodies a)" "t:$p.b.c|"
  expect_eq "queue b ($p.#)" "$(bodies b)" "t:$p.b.c|t:$p|t:$p.b|t:$p.b.c.d|t:$p.b.c.c|"
  expect_eq "queue c (#.$p and *.$p.*)" "$(bodies c)" "t:$p|t:x.$p|t:x.$p.y|"
}

test_headers_exchange() {
  # amqp-consume binds with an empty argument table: x-match defaults to all, and no
  # headers to match means every message matches. (x-match all/any bindings with headers
  # cannot be made with amqp-tools; amqpcheck's exchanges test covers them.)
  local qa
  qa=$(uname_ a)
  consumer_start a -q "$qa" -e amq.headers -r ignored
  consumer_ready a "$qa"
  pubx amq.headers "" h1 -H "color: red"
  pubx amq.headers "" h2
  pubx amq.headers "any-key" h3 -H "x-match: any" -H "a: b"
  consumer_end a "$qa"
  expect_eq "queue bound with no arguments" "$(bodies a)" "h1|h2|h3|"
}

# ------------------------------------------------------------------ scenario 3: prefetch and acks

test_prefetch_limit() {
  local q i
  q=$(uname_ q)
  declare_q "$q"
  for i in 1 2 3 4 5; do pub "$q" "m$i"; done
  mkdir -p "$W/a" && touch "$W/a/.noack" # the sink fails: amqp-consume never acks
  consumer_start a -q "$q" --prefetch-count 2
  wait_until 10 count_is a 2 || fail "prefetch 2: got [$(bodies a)], expected 2 deliveries"
  sleep 1.5 # no third delivery may come while two are unacked
  expect_eq "deliveries with prefetch 2 and no acks" "$(bodies a)" "m1|m2|"
  # the other three are still ready: another client takes one
  expect_eq "amqp-get while m1 and m2 are unacked" "$(timeout $T amqp-get -u "$AMQP_URL" -q "$q")" m3
  consumer_stop a # closing the connection requeues m1 and m2 in their old places
  expect_eq "queue after the consumer went away" "$(get_all "$q")" "m1|m2|m4|m5|"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
}

test_prefetch_ack() {
  local q i
  q=$(uname_ q)
  declare_q "$q"
  for i in 1 2 3 4 5 6; do pub "$q" "m$i"; done
  mkdir -p "$W/a" && touch "$W/a/.noack" "$W/a/.ack-2" # only the 2nd delivery is acked
  consumer_start a -q "$q" --prefetch-count 2
  wait_until 10 count_is a 3 || fail "got [$(bodies a)], expected 3 deliveries"
  sleep 1.5 # m1 and m3 unacked: nothing more
  expect_eq "deliveries (prefetch 2, one ack)" "$(bodies a)" "m1|m2|m3|"
  consumer_stop a
  expect_eq "queue after the consumer went away" "$(get_all "$q")" "m1|m3|m4|m5|m6|"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
}

test_consume_count() {
  local q i
  q=$(uname_ q)
  declare_q "$q"
  for i in 1 2 3 4 5; do pub "$q" "m$i"; done
  # -c 2: stop after two messages (amqp-consume also sets prefetch 2); what it was sent
  # beyond them goes back to the queue when it closes the channel
  mkdir -p "$W/a"
  capture amqp-consume -u "$AMQP_URL" -q "$q" -c 2 bash "$here/sink.sh" "$W/a"
  expect_eq "amqp-consume -c 2 rc ($err)" "$rc" 0
  expect_eq "consumed" "$(bodies a)" "m1|m2|"
  expect_eq "left in the queue" "$(get_all "$q")" "m3|m4|m5|"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
}

test_no_ack() {
  local q i
  q=$(uname_ q)
  declare_q "$q"
  for i in 1 2 3; do pub "$q" "m$i"; done
  mkdir -p "$W/a" && touch "$W/a/.noack" # would never ack, but -A needs no acks
  capture amqp-consume -u "$AMQP_URL" -q "$q" -A -c 3 bash "$here/sink.sh" "$W/a"
  expect_eq "amqp-consume -A -c 3 rc ($err)" "$rc" 0
  expect_eq "consumed" "$(bodies a)" "m1|m2|m3|"
  expect_eq "left in the queue" "$(get_all "$q")" ""
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
}

test_exclusive() {
  local q locked
  q=$(uname_ q)
  consumer_start a -q "$q" -x
  consumer_ready a "$q"
  locked="RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '$q' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
  expect_error 1 "basic.get: server channel error 405, message: $locked" amqp-get -u "$AMQP_URL" -q "$q"
  expect_error 1 "queue.declare: server channel error 405, message: $locked" \
    amqp-declare-queue -u "$AMQP_URL" -q "$q"
  pub "$q" "to an exclusive queue" # publishing to it is allowed
  consumer_end a "$q"
  expect_eq "exclusive consumer got" "$(bodies a)" "to an exclusive queue|"
  expect_error 1 "basic.get: server channel error 404, message: NOT_FOUND - no queue '$q' in vhost '/'" \
    amqp-get -u "$AMQP_URL" -q "$q"
}

# ------------------------------------------------------------------ scenario 7: large messages

test_large() {
  local q size f
  q=$(uname_ q)
  declare_q "$q"
  for size in 1048576 5242880; do
    f=$W/body-$size
    head -c "$size" /dev/urandom >"$f"
    capture amqp-publish -u "$AMQP_URL" -r "$q" <"$f" # body from stdin
    expect_eq "publish of $size bytes rc ($err)" "$rc" 0
    timeout $T amqp-get -u "$AMQP_URL" -q "$q" >"$f.got"
    expect_eq "amqp-get rc" "$?" 0
    expect_eq "$size bytes via amqp-get: size" "$(stat -c %s "$f.got")" "$size"
    expect_eq "$size bytes via amqp-get: sha256" "$(sha256sum <"$f.got")" "$(sha256sum <"$f")"
  done
  # both again, through a consumer
  capture amqp-publish -u "$AMQP_URL" -r "$q" <"$W/body-5242880"
  capture amqp-publish -u "$AMQP_URL" -r "$q" -p <"$W/body-1048576"
  mkdir -p "$W/a"
  capture amqp-consume -u "$AMQP_URL" -q "$q" -c 2 bash "$here/sink.sh" "$W/a"
  expect_eq "amqp-consume rc ($err)" "$rc" 0
  expect_eq "5 MiB via amqp-consume: sha256" "$(sha256sum <"$W/a/0001")" "$(sha256sum <"$W/body-5242880")"
  expect_eq "1 MiB via amqp-consume: sha256" "$(sha256sum <"$W/a/0002")" "$(sha256sum <"$W/body-1048576")"
  # and a body of exactly one frame's payload and one byte more (frame_max 131072)
  for size in 131064 131065 0; do
    head -c "$size" /dev/urandom >"$W/edge"
    capture amqp-publish -u "$AMQP_URL" -r "$q" <"$W/edge"
    timeout $T amqp-get -u "$AMQP_URL" -q "$q" >"$W/edge.got"
    expect_eq "amqp-get rc for $size bytes" "$?" 0
    expect_eq "$size bytes: sha256" "$(sha256sum <"$W/edge.got")" "$(sha256sum <"$W/edge")"
  done
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
  expect_eq "queue empty at the end" "$out" 0
}

test_line_buffered() {
  local q
  q=$(uname_ q)
  declare_q "$q"
  printf 'first line\nsecond line\n\nlast, no newline' |
    timeout $T amqp-publish -u "$AMQP_URL" -r "$q" -l || fail "amqp-publish -l failed"
  local i want=("first line\n" "second line\n" "\n" "last, no newline")
  for i in 0 1 2 3; do
    timeout $T amqp-get -u "$AMQP_URL" -q "$q" >"$W/line"
    expect_eq "amqp-get rc" "$?" 0
    expect_eq "message $i (od)" "$(od -c <"$W/line")" "$(printf "${want[$i]}" | od -c)"
  done
  expect_eq "nothing more" "$(get_all "$q")" ""
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
}

# ------------------------------------------------------------------ scenario 8: properties

test_properties() {
  local q
  q=$(uname_ q)
  declare_q "$q"
  pub "$q" "all the flags" -p -C application/json -E gzip -t "reply-$q" \
    -H "x-string: some value" -H "x-number: 42" -H "x-empty:" -H "x-colon: a: b"
  pub "$q" "no flags"
  expect_eq "properties sent by amqp-publish" "$("$build/amqpcheck" dump "$q")" "exchange=
routing_key=$q
redelivered=0
content_type=application/json
content_encoding=gzip
header x-string=S \"some value\"
header x-number=S \"42\"
header x-empty=S \"\"
header x-colon=S \"a: b\"
delivery_mode=2
reply_to=reply-$q
body=all the flags"
  expect_eq "amqp-publish defaults" "$("$build/amqpcheck" dump "$q")" "exchange=
routing_key=$q
redelivered=0
delivery_mode=1
body=no flags"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
}

# ------------------------------------------------------------------ scenario 10: errors

test_error_get_missing_queue() {
  local q
  q=$(uname_ missing)
  expect_error 1 "basic.get: server channel error 404, message: NOT_FOUND - no queue '$q' in vhost '/'" \
    amqp-get -u "$AMQP_URL" -q "$q"
  expect_error 1 "basic.consume: server channel error 404, message: NOT_FOUND - no queue '$q' in vhost '/'" \
    amqp-consume -u "$AMQP_URL" -q "$q" cat
}

test_error_redeclare_durable() {
  local q
  q=$(uname_ q)
  declare_q "$q"
  expect_error 1 "queue.declare: server channel error 406, message: PRECONDITION_FAILED - inequivalent arg 'durable' for queue '$q' in vhost '/': received 'true' but current is 'false'" \
    amqp-declare-queue -u "$AMQP_URL" -q "$q" -d
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
  declare_q "$q" -d
  expect_error 1 "queue.declare: server channel error 406, message: PRECONDITION_FAILED - inequivalent arg 'durable' for queue '$q' in vhost '/': received 'false' but current is 'true'" \
    amqp-declare-queue -u "$AMQP_URL" -q "$q"
  # amqp-declare-queue declares non-exclusive, non-auto-delete: amqp-consume's auto-delete
  # declaration of the same queue is inequivalent too
  expect_error 1 "queue.declare: server channel error 406, message: PRECONDITION_FAILED - inequivalent arg 'durable' for queue '$q' in vhost '/': received 'false' but current is 'true'" \
    amqp-consume -u "$AMQP_URL" -q "$q" -e amq.direct -r k cat
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
}

test_error_publish_missing_exchange() {
  local x
  x=$(uname_ missing)
  # basic.publish has no reply: the channel.close arrives when amqp-publish closes the channel
  expect_error 1 "closing channel: server channel error 404, message: NOT_FOUND - no exchange '$x' in vhost '/'" \
    amqp-publish -u "$AMQP_URL" -e "$x" -r k -b lost
  expect_error 1 "closing channel: server channel error 404, message: NOT_FOUND - no exchange 'amq.default' in vhost '/'" \
    amqp-publish -u "$AMQP_URL" -e amq.default -r k -b lost
  expect_error 1 "queue.bind: server channel error 404, message: NOT_FOUND - no exchange '$x' in vhost '/'" \
    amqp-consume -u "$AMQP_URL" -q "$(uname_ q)" -e "$x" -r k cat
}

test_error_reserved_name() {
  expect_error 1 "queue.declare: server channel error 403, message: ACCESS_REFUSED - queue name 'amq.c-$$' contains reserved prefix 'amq.*'" \
    amqp-declare-queue -u "$AMQP_URL" -q "amq.c-$$"
}

test_error_delete_conditions() {
  local q
  q=$(uname_ q)
  declare_q "$q"
  pub "$q" one
  pub "$q" two
  expect_error 1 "queue.delete: server channel error 406, message: PRECONDITION_FAILED - queue '$q' in vhost '/' not empty" \
    amqp-delete-queue -u "$AMQP_URL" -q "$q" --if-empty
  consumer_start a -q "$q"
  wait_until 10 count_is a 2 || fail "consumer got [$(bodies a)]"
  expect_error 1 "queue.delete: server channel error 406, message: PRECONDITION_FAILED - queue '$q' in vhost '/' in use" \
    amqp-delete-queue -u "$AMQP_URL" -q "$q" --if-unused
  consumer_stop a
  pub "$q" three
  pub "$q" four
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q" --if-unused
  expect_eq "delete --if-unused rc ($err)" "$rc" 0
  expect_eq "messages deleted" "$out" 2
  # deleting a queue that does not exist succeeds with 0 messages
  capture amqp-delete-queue -u "$AMQP_URL" -q "$q"
  expect_eq "delete of a missing queue rc ($err)" "$rc" 0
  expect_eq "delete of a missing queue output" "$out" 0
}

# ------------------------------------------------------------------ amqpcheck (rabbitmq-c API)

amqpcheck() { timeout 120 "$build/amqpcheck" "$@"; }
test_c_exchanges() { amqpcheck exchanges; }
test_c_prefetch() { amqpcheck prefetch; }
test_c_nack_reject() { amqpcheck nack-reject; }
test_c_confirms() { amqpcheck confirms; }
test_c_mandatory() { amqpcheck mandatory; }
test_c_headers() { amqpcheck headers; }
test_c_large() { amqpcheck large; }
test_c_errors() { amqpcheck errors; }

# ------------------------------------------------------------------ scenario 9: restart
# One broker restart serves both: test_restart prepares the CLI queues and amqpcheck's queue,
# restarts, checks the CLI side; test_c_restart checks amqpcheck's side afterwards.

test_restart() {
  [ -n "$BROKER_RESTART" ] || fail "BROKER_RESTART is not set"
  local qd qt qn qc big
  qd=$(uname_ durable) qt=$(uname_ transient) qn=$(uname_ nondurable)
  qc="c-restart-amqpcheck-$$"
  echo "$qc" >"$work/restart-c-queue"
  declare_q "$qd" -d
  declare_q "$qt" -d
  declare_q "$qn"
  big=$W/big
  head -c 2000000 /dev/urandom >"$big"
  pub "$qd" p1 -p -C text/plain -H "n: 1"
  pub "$qd" p2 -p
  capture amqp-publish -u "$AMQP_URL" -r "$qd" -p <"$big"
  expect_eq "publish of the big body rc ($err)" "$rc" 0
  pub "$qd" p4 -p
  pub "$qt" "not persistent" # delivery mode 1 in a durable queue: lost in a restart
  pub "$qn" "in a non-durable queue" -p
  amqpcheck restart-publish "$qc" || fail "amqpcheck restart-publish failed"
  timeout 300 sh -c "$BROKER_RESTART" >"$W/restart.log" 2>&1 ||
    fail "BROKER_RESTART failed: $(tail -5 "$W/restart.log")"
  # like any client, reconnect until the broker answers again (an AMQP-level 404 for a
  # queue that does not exist means it is up)
  wait_until 60 broker_answers || fail "the broker does not accept connections after the restart: $err"
  expect_eq "first after restart" "$("$build/amqpcheck" dump "$qd")" "exchange=
routing_key=$qd
redelivered=0
content_type=text/plain
header n=S \"1\"
delivery_mode=2
body=p1"
  expect_eq "second after restart" "$(timeout $T amqp-get -u "$AMQP_URL" -q "$qd")" p2
  timeout $T amqp-get -u "$AMQP_URL" -q "$qd" >"$W/big.got"
  expect_eq "big body after restart: sha256" "$(sha256sum <"$W/big.got")" "$(sha256sum <"$big")"
  expect_eq "rest of the durable queue" "$(get_all "$qd")" "p4|"
  expect_eq "durable queue, transient message" "$(get_all "$qt")" ""
  expect_error 1 "basic.get: server channel error 404, message: NOT_FOUND - no queue '$qn' in vhost '/'" \
    amqp-get -u "$AMQP_URL" -q "$qn"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$qd"
  capture amqp-delete-queue -u "$AMQP_URL" -q "$qt"
}

broker_answers() {
  capture amqp-get -u "$AMQP_URL" -q "c-restart-probe-$$"
  [[ $err == *"404, message: NOT_FOUND"* ]]
}

test_c_restart() {
  [ -f "$work/restart-c-queue" ] || fail "test_restart did not run"
  amqpcheck restart-check "$(cat "$work/restart-c-queue")"
}

# ------------------------------------------------------------------ runner

all_tests=(
  connect_url connect_options bad_vhost bad_password server_named_queue
  default_exchange direct fanout topic headers_exchange
  prefetch_limit prefetch_ack consume_count no_ack exclusive
  large line_buffered properties
  error_get_missing_queue error_redeclare_durable error_publish_missing_exchange
  error_reserved_name error_delete_conditions
  c_exchanges c_prefetch c_nack_reject c_confirms c_mandatory c_headers c_large c_errors
  restart c_restart
)
if [ $# -gt 0 ]; then tests=("$@"); else tests=("${all_tests[@]}"); fi

passed=0
failed=()
suite_start=$SECONDS
for TEST in "${tests[@]}"; do
  if ! declare -F "test_$TEST" >/dev/null; then
    echo "FAIL $TEST (no such test)"
    failed+=("$TEST")
    continue
  fi
  W=$work/$TEST
  mkdir -p "$W"
  start=$(date +%s%N)
  (
    trap cleanup_test EXIT
    "test_$TEST"
  ) 2>"$W.log"
  status=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  if [ $status = 0 ]; then
    echo "PASS $TEST (${ms} ms)"
    passed=$((passed + 1))
  else
    echo "FAIL $TEST (${ms} ms)"
    sed 's/^/  /' "$W.log"
    failed+=("$TEST")
  fi
done
echo "c: ${passed} passed, ${#failed[@]} failed against ${BROKER_KIND:-?} in $((SECONDS - suite_start)) s${failed:+: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
