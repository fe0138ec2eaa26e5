#!/usr/bin/env bash
# Builds the distributable packages, everything prebuilt, into DIR (default <repo>/dist):
#   e2b-<version>-cp39-abi3-<platform>.whl  Python: the native module plus sandboxd and envd
#                                            (e2b/bin/), built by maturin
#   e2b-<version>.tgz                        npm: the native addon plus sandboxd and envd
#                                            (bindings-node/bin/); its install script finds them
#                                            and builds nothing, so no Rust toolchain is needed
# sandboxd and envd are the release builds of scripts/lib.sh (envd static), made once and put
# in both packages. tests/package/run.sh installs each where no cargo is on PATH and runs the
# seed samples against the embedded default.
#   scripts/package.sh [DIR]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OUT="$(mkdir -p "${1:-$ROOT/dist}" && cd "${1:-$ROOT/dist}" && pwd)"
cd "$ROOT"

build_server

say "Python wheel (maturin)"
MATURIN_VENV="$CARGO_TARGET_DIR/maturin-venv"
[ -x "$MATURIN_VENV/bin/maturin" ] || {
  python3 -m venv "$MATURIN_VENV"
  "$MATURIN_VENV/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.9.4,<2"
}
# The package's build script would build its own sandboxd and envd (E2B_BUILD_SANDBOXD=0 stops
# it); the ones built above go where the wheel takes them from (pyproject's `include`).
PY_BIN="$ROOT/bindings-python/python/e2b/bin"
mkdir -p "$PY_BIN"
install -m 0755 "$SANDBOXD_BIN" "$PY_BIN/sandboxd"
install -m 0755 "$SANDBOXD_ENVD" "$PY_BIN/envd"
rm -f "$OUT"/e2b-*.whl
E2B_BUILD_SANDBOXD=0 "$MATURIN_VENV/bin/maturin" build --release --locked --out "$OUT"
WHEEL=$(ls "$OUT"/e2b-*.whl)
for f in e2b/bin/sandboxd e2b/bin/envd; do
  python3 -c "import sys, zipfile; sys.exit(0 if '$f' in zipfile.ZipFile('$WHEEL').namelist() else 1)" \
    || { echo "package.sh: $f is missing from $WHEEL" >&2; exit 1; }
done

say "npm tarball"
E2B_BUILD_SANDBOXD=0 node bindings-node/scripts/build.js
STAGE="$CARGO_TARGET_DIR/npm-stage"
rm -rf "$STAGE" && mkdir -p "$STAGE/bindings-node/bin" "$STAGE/bindings-node/scripts"
# Every JavaScript module and type file of the package (a new module is picked up as it is
# added), the addon, and the install script.
cp bindings-node/*.js bindings-node/*.mjs bindings-node/*.d.ts bindings-node/README.md bindings-node/e2b.node \
  "$STAGE/bindings-node/"
cp bindings-node/scripts/build.js "$STAGE/bindings-node/scripts/"
install -m 0755 "$SANDBOXD_BIN" "$STAGE/bindings-node/bin/sandboxd"
install -m 0755 "$SANDBOXD_ENVD" "$STAGE/bindings-node/bin/envd"
# The marker the install script looks for: this package carries its binaries.
node -e '
  const fs = require("fs")
  const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"))
  pkg.files = ["bindings-node/"]
  delete pkg.devDependencies
  fs.writeFileSync(process.argv[1] + "/package.json", JSON.stringify(pkg, null, 2) + "\n")
  fs.writeFileSync(process.argv[1] + "/bindings-node/prebuilt.json", JSON.stringify({ version: pkg.version, addon: "e2b.node", bin: ["sandboxd", "envd"] }) + "\n")
' "$STAGE"
rm -f "$OUT"/e2b-*.tgz
(cd "$STAGE" && npm pack --silent --pack-destination "$OUT" >/dev/null)
ls -l "$OUT"
