#!/usr/bin/env bash
# pika's own acceptance tests (tests/acceptance of the pika source tree) against warren
# and/or the RabbitMQ oracle. Results are written up in OWN-SUITE.md.
#
#   bash interop/python/own-suite.sh PIKA_SOURCE_DIR [warren] [oracle]
#
# PIKA_SOURCE_DIR is a checkout of github.com/pika/pika (the PyPI sdist has no tests). The
# acceptance tests hard-code 127.0.0.1/localhost:5672, so each run works on a copy under
# /tmp whose port is rewritten to the side port the broker gets here; nothing else changes.
# The broker is started and stopped with interop/broker.sh (WARREN_BIN as usual). A venv with
# pytest and the optional io loops the tests use (tornado, twisted, gevent) is kept in
# $OWN_VENV (default /tmp/pika-own-venv). JUnit XML and the output go to $OUT (default
# /tmp/pika-own-results).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${1:?usage: own-suite.sh PIKA_SOURCE_DIR [warren] [oracle]}
shift
kinds=("$@")
[ ${#kinds[@]} -eq 0 ] && kinds=(warren oracle)
venv=${OWN_VENV:-/tmp/pika-own-venv}
out=${OUT:-/tmp/pika-own-results}
mkdir -p "$out"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  pytest==9.2.0 pytest-timeout==2.4.0 tornado==6.6.1 twisted==26.10.0 gevent==26.9.0 || exit 1

status=0
for kind in "${kinds[@]}"; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  state=$(mktemp -d /tmp/pika-own-broker-XXXXXX)
  chmod 755 "$state"
  tree=$(mktemp -d /tmp/pika-own-src-XXXXXX)
  cp -a "$src/." "$tree/"
  grep -rlE "5672" "$tree/tests/acceptance" "$tree/tests/base" | xargs sed -i -E \
    "s/'port': 5672\}/'port': $port}/; s/port=5672([,)])/port=$port\1/"
  bash "$here/../broker.sh" start "$kind" "$state" "$port" || { status=1; continue; }
  echo "=== pika acceptance tests against $kind on port $port"
  (cd "$tree" && "$venv/bin/python" -m pytest tests/acceptance -p no:cacheprovider \
    --timeout=120 -q -rfEs --junitxml="$out/$kind.xml") >"$out/$kind.out" 2>&1
  tail -1 "$out/$kind.out"
  bash "$here/../broker.sh" stop "$state"
  rm -rf "$state" "$tree"
done
exit $status
