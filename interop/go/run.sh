#!/usr/bin/env bash
# Go (amqp091-go) interop suite for warren.
#
#   bash interop/go/run.sh [go test args...]
#
# Runs `go test -count=1 -v ./...` in this folder against the broker at AMQP_URL (default
# amqp://guest:guest@127.0.0.1:5672/%2f). BROKER_RESTART (a shell command that restarts the
# broker on the same port with the same data) is needed by the restart test, which is
# skipped without it. interop/run.sh sets both.
#
# The Go toolchain and amqp091-go come from Debian's packages (golang-go,
# golang-github-rabbitmq-amqp091-go-dev), installed with apt-get when missing; the build
# runs in GOPATH mode against /usr/share/gocode with no network. Caches go to .cache/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gocode=/usr/share/gocode
lib=$gocode/src/github.com/rabbitmq/amqp091-go

if ! command -v go >/dev/null 2>&1 || [ ! -f "$lib/channel.go" ]; then
  echo "go/run.sh: installing golang-go and golang-github-rabbitmq-amqp091-go-dev" >&2
  export DEBIAN_FRONTEND=noninteractive
  # another installer may hold the dpkg lock for a while: wait for it
  apt_opts=(-y -qq -o DPkg::Lock::Timeout=600)
  if ! apt-get install "${apt_opts[@]}" golang-go golang-github-rabbitmq-amqp091-go-dev \
      >/dev/null 2>&1; then
    apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null
    apt-get install "${apt_opts[@]}" golang-go golang-github-rabbitmq-amqp091-go-dev >/dev/null
  fi
fi

export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export GO111MODULE=off GOPATH=$gocode GOFLAGS= GOPROXY=off GOTOOLCHAIN=local
export GOCACHE=$here/.cache/go-build GOTMPDIR=
mkdir -p "$GOCACHE"
cd "$here"
exec go test -count=1 -v -timeout 15m "$@" ./...
