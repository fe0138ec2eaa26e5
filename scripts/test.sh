#!/usr/bin/env bash
# Runs the whole test suite on the real runtime (QEMU microVMs): Rust unit and integration
# tests (the store also on PostgreSQL), the official E2B SDK against sandboxd (a three-node
# cluster among them), our Python and Node SDKs, parity and packages; with
# SANDBOXD_SLOW_TESTS=1 also the long tests and the quick benchmark. Installs what it needs
# first (system packages, s3s-fs, pip and npm dependencies).
# Every stage runs even if an earlier one failed; the exit status says whether all passed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

"$ROOT/scripts/install-deps.sh" || exit 1
build_server || exit 1
build_template || exit 1
export SANDBOXD_TEMPLATES_DIR="${SANDBOXD_TEMPLATES_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/sandboxd/templates}"

# The S3 server of the cluster tests (crates.io's s3s-fs): built once, then cached.
say "s3s-fs for the cluster tests (cached after the first build)"
S3S_FS_BIN="$(tests/cluster/s3s.sh path)" || exit 1
export S3S_FS_BIN

# E2B's official SDKs, for the compatibility checks: Python in its own venv (it is also
# called `e2b`), JavaScript in its own prefix.
say "official E2B SDKs (PyPI e2b, npm e2b) for the compatibility checks"
OFFICIAL_PY="$CARGO_TARGET_DIR/official-py"
[ -x "$OFFICIAL_PY/bin/python" ] || python3 -m venv "$OFFICIAL_PY" || exit 1
"$OFFICIAL_PY/bin/pip" install --quiet --disable-pip-version-check -r tests/compat/requirements.txt || exit 1
npm install --silent --no-audit --no-fund --prefix "$CARGO_TARGET_DIR/official-js" e2b@2.51.0 @e2b/code-interpreter@2.8.0 || exit 1
export COMPAT_VENV="$OFFICIAL_PY" E2B_SDK_PYTHON="$OFFICIAL_PY/bin/python" OFFICIAL_E2B_PYTHON="$OFFICIAL_PY/bin/python"
export E2B_JS_SDK_DIR="$CARGO_TARGET_DIR/official-js/node_modules"

failed=()
stage() {
  local name=$1; shift
  say "$name"
  local t0=$SECONDS
  if "$@"; then echo "[ok] $name ($((SECONDS - t0)) s)"; else echo "[FAILED] $name ($((SECONDS - t0)) s)"; failed+=("$name"); fi
}

# The SDK tests start the sandboxd built above (SANDBOXD_BIN), so the packages are built
# without their own copy of sandboxd and envd (E2B_BUILD_SANDBOXD=0 saves a release build each;
# scripts/setup.sh exercises the packaged binaries).
python_sdk() {
  local venv="$CARGO_TARGET_DIR/pyvenv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # e2b-code-interpreter runs on top of our package: --no-deps keeps pip from replacing ours
  # with the official e2b it names as a dependency (its other dependencies come first).
  E2B_BUILD_SANDBOXD=0 "$venv/bin/pip" install --quiet --disable-pip-version-check "$ROOT[test]" \
    && "$venv/bin/pip" install --quiet --disable-pip-version-check httpx attrs \
    && "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps e2b-code-interpreter==2.11.5 \
    && "$venv/bin/python" -m pytest -ra tests/python
}

# @e2b/code-interpreter (npm) runs on top of our package: it goes into its own folder with its
# `e2b` dependency replaced by a link to this repository.
code_interpreter_js() {
  local dir="$CARGO_TARGET_DIR/ci-js"
  mkdir -p "$dir" && { [ -f "$dir/package.json" ] || echo '{"private": true}' > "$dir/package.json"; } \
    && npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund @e2b/code-interpreter@2.8.0 \
    && rm -rf "$dir/node_modules/e2b" && ln -s "$ROOT" "$dir/node_modules/e2b"
}

node_sdk() {
  E2B_BUILD_SANDBOXD=0 npm install --no-audit --no-fund && code_interpreter_js && node --test tests/node/
}

# Everything on SQLite (the embedded default), then the store's tests once more on a
# throwaway PostgreSQL (cluster mode's database).
rust_tests() {
  local pg status=0
  cargo test --release --locked -p e2b -p sandboxd -p envd || status=1
  pg="$(mktemp -d)" && chmod 755 "$pg" || return 1
  if SANDBOXD_TEST_POSTGRES_URL="$(tests/cluster/postgres.sh start "$pg/db")"; then
    # The same packages as above: another set resolves features differently and rebuilds.
    SANDBOXD_TEST_POSTGRES_URL="$SANDBOXD_TEST_POSTGRES_URL" \
      cargo test --release --locked -p e2b -p sandboxd -p envd --lib -- store:: telemetry:: || status=1
    tests/cluster/postgres.sh stop "$pg/db"
  else
    status=1
  fi
  rm -rf "$pg"
  return $status
}

stage "Rust tests (core, sandboxd, envd; the store on SQLite and PostgreSQL)" rust_tests
stage "official E2B SDK (PyPI e2b) against sandboxd" tests/compat/run.sh
# Node first: tests/python/test_wire_js.py compares our Node SDK's requests with the official JS SDK's.
stage "our Node SDK" node_sdk
stage "our Python SDK" python_sdk
# Needs our Python package, which the "our Python SDK" stage installed into $CARGO_TARGET_DIR/pyvenv.
stage "API parity with the official SDKs (no VMs)" tests/parity/run.sh
stage "packages: wheel and npm tarball installed with no Rust on PATH" tests/package/run.sh
# The benchmark measures, it does not test: it runs with the long tests.
if [ "${SANDBOXD_SLOW_TESTS:-}" = 1 ]; then stage "benchmarks (quick)" "$ROOT/bench/run.sh" --quick; fi

if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED stages: ${failed[*]}"
  exit 1
fi
say "all stages passed"
