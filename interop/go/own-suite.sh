#!/usr/bin/env bash
# amqp091-go's own integration tests (build tag `integration`, broker URL from AMQP_URL)
# against a fresh broker: warren (WARREN_BIN) or the oracle (Debian's RabbitMQ).
#
#   bash interop/go/own-suite.sh warren|oracle [go test args...]
#
# The library's source, tests included, comes from Debian's
# golang-github-rabbitmq-amqp091-go-dev (1.5.0 on Debian 12), copied into a scratch GOPATH
# under /tmp; SRC=DIR runs another checkout of the library instead. The tests import
# go.uber.org/goleak, which Debian 12 does not package: GOLEAK_DIR=DIR uses a goleak source
# tree (v1.1.12 for 1.5.0; the newest one that builds with Go 1.19 is v1.2.1), otherwise a
# stub whose VerifyTestMain runs the tests without the goroutine-leak check.
# With RABBITMQCTL=1 and the oracle, RABBITMQ_RABBITMQCTL_PATH points at a rabbitmqctl for
# the oracle's node (newer versions of the suite use it). Results: see OWN-SUITE.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kind=${1:-}
[[ $kind == warren || $kind == oracle ]] || { echo "usage: own-suite.sh warren|oracle [go test args...]" >&2; exit 64; }
shift

if ! command -v go >/dev/null 2>&1 || [ ! -f /usr/share/gocode/src/github.com/rabbitmq/amqp091-go/channel.go ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    golang-go golang-github-rabbitmq-amqp091-go-dev >/dev/null
fi
src=${SRC:-/usr/share/gocode/src/github.com/rabbitmq/amqp091-go}

work=$(mktemp -d /tmp/amqp091-own-XXXXXX)
state=$work/broker
mkdir -p "$state" && chmod 755 "$work" "$state"
trap 'bash "$here/../broker.sh" stop "$state" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

lib=$work/gopath/src/github.com/rabbitmq/amqp091-go
mkdir -p "$lib" "$work/gopath/src/go.uber.org"
cp -r "$src/." "$lib/"
if [ -n "${GOLEAK_DIR:-}" ]; then
  cp -r "$GOLEAK_DIR" "$work/gopath/src/go.uber.org/goleak"
else
  mkdir -p "$work/gopath/src/go.uber.org/goleak"
  cat >"$work/gopath/src/go.uber.org/goleak/goleak.go" <<'EOF'
// Package goleak is a stand-in for go.uber.org/goleak: it runs the tests without
// checking for leaked goroutines.
package goleak

import (
	"os"
	"testing"
)

type Option interface{}

func VerifyTestMain(m *testing.M, _ ...Option) { os.Exit(m.Run()) }

func VerifyNone(t testing.TB, _ ...Option) {}

func IgnoreTopFunction(string) Option { return nil }

func IgnoreCurrent() Option { return nil }
EOF
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bash "$here/../broker.sh" start "$kind" "$state" "$port"
if [ "$kind" = oracle ] && [ "${RABBITMQCTL:-}" = 1 ]; then
  printf '#!/bin/sh\nexec rabbitmqctl -n interop%s@localhost "$@"\n' "$port" >"$work/rabbitmqctl"
  chmod +x "$work/rabbitmqctl"
  export RABBITMQ_RABBITMQCTL_PATH=$work/rabbitmqctl
fi

export AMQP_URL="amqp://guest:guest@127.0.0.1:$port/%2f"
export GO111MODULE=off GOPATH=$work/gopath GOFLAGS= GOPROXY=off GOTOOLCHAIN=local
export GOCACHE=$here/.cache/go-build
cd "$lib"
echo "own-suite: amqp091-go from $src against $kind on port $port" >&2
set +e
go test -tags integration -count=1 -v -timeout 20m "$@" . | tee "$work/out.log"
status=${PIPESTATUS[0]}
set -e
pass=$(grep -cE '^--- PASS' "$work/out.log" || true)
fail=$(grep -cE '^--- FAIL' "$work/out.log" || true)
skip=$(grep -cE '^--- SKIP' "$work/out.log" || true)
echo "own-suite ($kind, top-level tests and examples): $pass passed, $fail failed, $skip skipped"
grep -E '^--- FAIL' "$work/out.log" | sed 's/^/  /' || true
exit "$status"
