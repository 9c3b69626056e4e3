#!/usr/bin/env bash
# Python interop suite for warren: pika (blocking and SelectConnection), aio-pika and Celery.
#
#   bash interop/python/run.sh [pytest args...]
#
# With AMQP_URL set (interop/run.sh sets it, with BROKER_RESTART and BROKER_KIND) or
# WARREN_TEST_URL (e.g. amqp://guest:guest@127.0.0.1:5673/%2f) the tests run against that
# broker; the restart tests need BROKER_RESTART there and are skipped without it. Otherwise
# conftest.py starts the warren binary named by WARREN_BIN (default target/release/warren,
# else target/debug/warren) on a free port with a fresh data directory, restarts it itself
# for the restart tests, and stops it with SIGTERM at the end. Nothing is built here; the
# pinned packages of requirements.txt go into .venv (python3-venv is installed with apt-get
# when missing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$here/.venv
py=${PYTHON:-python3}

make_venv() {
  rm -rf "$venv"
  if "$py" -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/pip" ]; then
    return 0
  fi
  rm -rf "$venv"
  if "$py" -m venv --without-pip "$venv" >/dev/null 2>&1; then
    if "$venv/bin/python" -m ensurepip --upgrade --default-pip >/dev/null 2>&1; then
      return 0
    fi
  fi
  rm -rf "$venv"
  # Debian/Ubuntu ship venv/ensurepip separately.
  if command -v apt-get >/dev/null 2>&1; then
    pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    echo "run.sh: installing python3-venv" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${pyver}-venv") >/dev/null
    "$py" -m venv "$venv"
    return 0
  fi
  echo "run.sh: cannot create a virtualenv with $py" >&2
  return 1
}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  make_venv
fi

stamp=$venv/.requirements.installed
if [ ! -f "$stamp" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

# Run from the repo root so a relative WARREN_BIN resolves; pytest's exit code is ours.
# Extra arguments go to pytest; the whole tests/ folder runs unless a test path is given.
cd "$here/../.."
targets=("$here/tests")
for arg in "$@"; do
  case $arg in
    -*) ;;
    *) if [ -e "${arg%%::*}" ]; then targets=(); break; fi ;;
  esac
done
set +e
"$venv/bin/python" -m pytest -c "$here/pytest.ini" --rootdir "$here" "${targets[@]}" "$@"
exit $?
