#!/usr/bin/env bash
# Runs the official-SDK compatibility suite against a freshly built sandboxd.
#
#   tests/compat/run.sh [pytest args...]
#
# Env: SANDBOXD_BIN (default target/debug/sandboxd, built here if missing),
#      SANDBOXD_TEMPLATES_DIR (shared template cache; default sandboxd's own,
#      ${XDG_DATA_HOME:-~/.local/share}/sandboxd/templates),
#      COMPAT_VENV (default tests/compat/.venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${COMPAT_VENV:-$here/.venv}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import e2b, e2b_code_interpreter, pytest, schemathesis' 2>/dev/null \
    || [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("e2b"))')" != "2.63.0" ]; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi

export SANDBOXD_BIN="${SANDBOXD_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/sandboxd}"
if [ ! -x "$SANDBOXD_BIN" ]; then
    (cd "$root" && cargo build -p sandboxd)
fi
export SANDBOXD_TEMPLATES_DIR="${SANDBOXD_TEMPLATES_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/sandboxd/templates}"

cd "$here"
exec "$venv/bin/python" -m pytest -ra "$@"
