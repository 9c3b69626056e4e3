#!/usr/bin/env bash
# The web page on the management port, driven in headless Chromium with selenium.
#
#   bash interop/ui/run.sh [pytest args...]
#
# Starts its own warren (WARREN_BIN, default target/release/warren, else target/debug/warren)
# on free AMQP and management ports with a fresh data directory, so the numbers the page
# shows are exact; the broker interop/run.sh started is not used, and against the RabbitMQ
# oracle (BROKER_KIND=oracle) there is nothing to test: the page is warren's. Installs
# Debian's chromium and chromium-driver with apt-get when missing; the pinned packages of
# requirements.txt go into .venv. selenium uses /usr/bin/chromedriver and never downloads a
# driver. Screenshots go to UI_ARTIFACTS (default: a new directory under TMPDIR, printed).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$here/.venv

if [ "${BROKER_KIND:-warren}" = oracle ]; then
  echo "ui/run.sh: the web page is warren's; nothing to run against RabbitMQ"
  exit 0
fi

need=()
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "ui/run.sh: installing ${need[*]}" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } \
    >/dev/null || { echo "ui/run.sh: apt-get install ${need[*]} failed" >&2; exit 1; }
fi

source "$here/../venv.sh"
requirements_venv "$here"

export UI_ARTIFACTS=${UI_ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/warren-ui-artifacts-XXXXXX")}
# selenium must not look for (or fetch) a driver of its own.
export SE_OFFLINE=true
echo "ui/run.sh: screenshots in $UI_ARTIFACTS"
if [ -n "${WARREN_BIN:-}" ] && [[ $WARREN_BIN != /* ]]; then export WARREN_BIN=$PWD/$WARREN_BIN; fi
cd "$here"
"$venv/bin/python" -m pytest "$@"
