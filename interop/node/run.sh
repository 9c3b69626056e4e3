#!/usr/bin/env bash
# Node.js (amqplib) interop suite for warren.
#
#   bash interop/node/run.sh [TEST_FILE...]
#
# Normally started by interop/run.sh, which provides AMQP_URL (and AMQP_HOST, AMQP_PORT,
# BROKER_KIND, BROKER_RESTART). Installs node and npm with apt-get if they are missing, and
# the pinned amqplib (package-lock.json) with `npm ci` when node_modules is missing or older
# than the lock file. Then runs, with node's built-in test runner:
#   1. test/promise/*.test.js and test/callback/*.test.js
#   2. test/restart/*.test.js on its own, since it restarts the broker ($BROKER_RESTART)
# With TEST_FILE arguments (paths relative to this folder) only those run, in one go.
# Exit status: 0 only if every test passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

: "${AMQP_URL:?AMQP_URL is not set (run through interop/run.sh)}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node/run.sh: installing nodejs and npm" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "node/run.sh: node $(node --version) is too old, amqplib needs 18 or later" >&2
  exit 1
fi

stamp=node_modules/.interop-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp" || [ ! -d node_modules/amqplib ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json "$stamp"
fi

run() {
  node --test --test-reporter=spec "$@"
}

if [ $# -gt 0 ]; then
  run "$@"
  exit $?
fi

status=0
run test/promise/*.test.js test/callback/*.test.js || status=1
run test/restart/*.test.js || status=1
exit $status
