#!/usr/bin/env bash
# Installs everything this project needs on a Debian machine (as root) and runs the main job:
# the seed document's Python and JavaScript samples, unchanged, against the embedded default
# (no E2B configuration: the SDK starts a local sandboxd, which runs each sandbox as a microVM).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The system packages (QEMU, a kernel, debootstrap, …: apt, mostly downloads and unpacking) are
# installed while the two SDKs compile, which needs none of them: only Python's venv module and
# a C compiler. Where those are missing, the packages come first.
deps_pid=""
deps_log="$(mktemp /tmp/sandboxd-install-deps.XXXXXX)"
if python3 -c 'import ensurepip, venv' 2>/dev/null && command -v cc >/dev/null; then
  say "installing system packages in the background (log: $deps_log)"
  "$ROOT/scripts/install-deps.sh" >"$deps_log" 2>&1 &
  deps_pid=$!
else
  "$ROOT/scripts/install-deps.sh"
fi

say "installing the Python SDK into $ROOT/.venv (pip install .; builds the Rust core, sandboxd and envd)"
python3 -m venv "$ROOT/.venv"
"$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check "$ROOT"
PKG_BIN=$("$ROOT/.venv/bin/python" -c 'import e2b, os; print(os.path.join(os.path.dirname(e2b.__file__), "bin"))')
# Also where any client's embedded default looks last (<data dir>/bin), e.g. the Rust example
# `cargo run --example snapshots -p e2b`.
DATA_DIR="${SANDBOXD_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/sandboxd}"
mkdir -p "$DATA_DIR/bin" && cp "$PKG_BIN/sandboxd" "$PKG_BIN/envd" "$DATA_DIR/bin/"

say "installing the JavaScript SDK (npm install; builds the native addon)"
(cd "$ROOT" && npm install --no-audit --no-fund)

if [ -n "$deps_pid" ]; then
  say "waiting for the system packages"
  if ! wait "$deps_pid"; then
    cat "$deps_log" >&2
    echo "setup: installing the system packages failed (log above: $deps_log)" >&2
    exit 1
  fi
  cat "$deps_log"
fi

say "building the base template (debootstrap + one boot; cached in ~/.local/share/sandboxd/templates)"
"$PKG_BIN/sandboxd" template build base

say "running the seed's samples against the embedded default"
"$ROOT/scripts/run-seed.sh" "$ROOT/.venv/bin/python"
