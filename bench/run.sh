#!/usr/bin/env bash
# Runs the benchmark against a fresh sandboxd (release build) and prints markdown tables.
#   bench/run.sh --quick                    smoke run (the test suite uses it)
#   bench/run.sh                            create + snapshot on the 512 MiB base template
#   bench/run.sh --templates base,base-2g   also 2 GiB guests (builds the base-2g template)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cd "$ROOT"
cargo build --release --locked -p bench -p sandboxd
export SANDBOXD_BIN="${SANDBOXD_BIN:-$CARGO_TARGET_DIR/release/sandboxd}"
if [[ " $* " == *base-2g* ]]; then
  "$SANDBOXD_BIN" template build base-2g --memory-mb 2048
fi
exec "$CARGO_TARGET_DIR/release/bench" "$@"
