#!/usr/bin/env bash
# The benchmark, in one command: builds sandboxd, envd and bench (release), runs every scenario
# on sandboxd and its peers (gVisor, CRIU; installed and prepared on first use), then draws the
# plots (matplotlib, in a venv under target/).
#   bench/run.sh --full     the documented run (≈ 25 min on 2 cores): rewrites docs/benchmarks.md
#                           and docs/bench/*.png; results.json in target/bench/
#   bench/run.sh --quick    smoke run, the test suite's stage (≤ 4 min): target/bench/quick/ only
#   bench/run.sh --cluster  issue 13's numbers (≈ 5 min; not part of --full or --quick): PostgreSQL,
#                           s3s-fs and two nodes on this machine; remote vs local restore, bytes
#                           fetched and uploaded, freeze with vs without the object store. Writes
#                           target/bench/cluster/ (add --docs docs/cluster-benchmarks.md to publish)
#   bench/run.sh [opts]     anything else is passed to `bench` (see `bench --help`); output in
#                           target/bench/ (add --docs docs/benchmarks.md --plot-prefix bench/ to publish)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
export BENCH_COMMAND="bench/run.sh $*"

build_server
cargo build --release --locked -p bench
export SANDBOXD_TEMPLATES_DIR="${SANDBOXD_TEMPLATES_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/sandboxd/templates}"
"$SANDBOXD_BIN" template build base

args=()
case "${1:-}" in
  --full)
    shift
    "$SANDBOXD_BIN" template build base-2g --memory-mb 2048
    OUT="$CARGO_TARGET_DIR/bench"; PLOTS="$ROOT/docs/bench"
    args=(--out-dir "$OUT" --docs "$ROOT/docs/benchmarks.md" --plot-prefix bench/) ;;
  --cluster)
    shift
    tests/cluster/s3s.sh path >/dev/null   # builds s3s-fs once (cached)
    OUT="$CARGO_TARGET_DIR/bench"; PLOTS=""
    args=(--scenario cluster --no-peers --out-dir "$OUT") ;;
  --quick)
    shift
    OUT="$CARGO_TARGET_DIR/bench/quick"; PLOTS="$OUT"
    args=(--quick --out-dir "$OUT") ;;
  *)
    if [[ " $* " == *base-2g* ]]; then "$SANDBOXD_BIN" template build base-2g --memory-mb 2048; fi
    OUT="$CARGO_TARGET_DIR/bench"; PLOTS="$OUT"
    args=(--out-dir "$OUT") ;;
esac

status=0
"$CARGO_TARGET_DIR/release/bench" "${args[@]}" "$@" || status=$?

# Plots, even after a failed scenario (results.json has whatever was measured); the cluster
# scenario has none (its results.json is in $OUT/cluster/).
if [ -n "$PLOTS" ] && [ -f "$OUT/results.json" ]; then
  VENV="$CARGO_TARGET_DIR/bench-venv"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null \
    || "$VENV/bin/pip" install --quiet --disable-pip-version-check matplotlib
  mkdir -p "$PLOTS"
  "$VENV/bin/python" "$ROOT/bench/plot.py" "$OUT/results.json" "$PLOTS" || status=1
fi
exit $status
