#!/usr/bin/env bash
# docker/docker-compose.yml, without a container engine: warren is started through
# docker/docker-entrypoint.sh with the compose file's environment, the image's conf.d and the
# example's rabbitmq.conf, the compose healthcheck is run, then the example order service
# (docker/example-app/app.py, pika) runs against it unchanged until every order it published
# has been consumed. Starts its own warren (WARREN_BIN, default target/release/warren, else
# target/debug/warren); nothing to run against the RabbitMQ oracle (BROKER_KIND=oracle).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$here/.venv

if [ "${BROKER_KIND:-warren}" = oracle ]; then
  echo "docker/run.sh: the image is warren's; nothing to run against RabbitMQ"
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } \
    >/dev/null || { echo "docker/run.sh: apt-get install python3-venv failed" >&2; exit 1; }
fi
source "$here/../venv.sh"
requirements_venv "$here"
root=$(cd "$here/../.." && pwd)
bin=${WARREN_BIN:-$root/target/release/warren}
[ -x "$bin" ] || bin=$root/target/debug/warren
exec "$venv/bin/python" "$here/compose_check.py" "$bin" "$root"
