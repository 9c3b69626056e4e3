# Sourced by the suites that run Python tools: requirements_venv DIR makes DIR/.venv (with
# pip) and installs DIR/requirements.txt into it whenever that file has changed.
requirements_venv() {
  local dir=$1 venv=$1/.venv
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  local stamp=$venv/.requirements.installed
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/requirements.txt" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$dir/requirements.txt"
    cp "$dir/requirements.txt" "$stamp"
  fi
}
