#!/usr/bin/env bash
# The packages as users install them: scripts/package.sh builds the wheel and the npm tarball,
# then the wheel goes into a new venv and the tarball into a new folder with no Rust toolchain on
# PATH (the check fails if cargo or rustc is reachable), and the seed samples run against the
# embedded default: the SDK starts the sandboxd the package carries, here on a free port with its
# own data directory (templates from SANDBOXD_TEMPLATES_DIR, as for every other stage).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$ROOT"

DIST="$CARGO_TARGET_DIR/dist"
"$ROOT/scripts/package.sh" "$DIST"
WORK="$(mktemp -d /tmp/e2b-package-test.XXXXXX)"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export SANDBOXD_URL="http://127.0.0.1:$PORT" SANDBOXD_DATA_DIR="$WORK/data"
export SANDBOXD_TEMPLATES_DIR="${SANDBOXD_TEMPLATES_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/sandboxd/templates}"
unset SANDBOXD_BIN SANDBOXD_ENVD E2B_SANDBOXD_BIN

cleanup() {
  # The embedded sandboxd outlives the samples by design, and its VMs outlive it.
  pkill -f -- "--listen 127.0.0.1:$PORT " 2>/dev/null || true
  for pidfile in $(find "$WORK/data" -name qemu.pid 2>/dev/null); do kill -9 "$(cat "$pidfile")" 2>/dev/null || true; done
  mountpoint -q "$WORK/data/store" && { umount "$WORK/data/store" || umount -l "$WORK/data/store"; }
  rm -rf "$WORK"
}
trap cleanup EXIT

# A PATH with node, python and the system tools but no Rust toolchain.
NO_RUST="$WORK/path"
mkdir -p "$NO_RUST"
ln -s "$(python3 -c 'import sys; print(sys.executable)')" "$NO_RUST/python3"
export PATH="$NO_RUST:/usr/sbin:/usr/bin:/sbin:/bin"
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
  echo "package test: a Rust toolchain is still on PATH ($PATH)" >&2
  exit 1
fi

say "installing the wheel into a new venv (no Rust on PATH)"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-index "$DIST"/e2b-*.whl

say "installing the npm tarball into a new folder (no Rust on PATH)"
mkdir -p "$WORK/js"
(cd "$WORK/js" && npm init -y >/dev/null && npm install --no-audit --no-fund --offline "$DIST"/e2b-*.tgz)
[ -x "$WORK/js/node_modules/e2b/bindings-node/bin/sandboxd" ] || { echo "package test: no sandboxd in the npm package" >&2; exit 1; }

say "the seed's samples against the embedded default, from the installed packages"
"$ROOT/scripts/run-seed.sh" "$WORK/venv/bin/python" "$WORK/js"
grep -q "sandboxd listening" "$WORK/data/sandboxd.log" || { echo "package test: the packaged sandboxd did not serve" >&2; exit 1; }
