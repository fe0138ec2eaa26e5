#!/usr/bin/env bash
# API parity of our SDKs with E2B's official ones (tests/parity/check_parity.py). No VM: imports
# both Python packages and reads both TypeScript declaration files.
#   OFFICIAL_E2B_PYTHON  interpreter with PyPI e2b==2.63.0 (default $CARGO_TARGET_DIR/official-py)
#   OUR_E2B_PYTHON       interpreter with our package installed (default $CARGO_TARGET_DIR/pyvenv)
#   E2B_JS_SDK_DIR       node_modules holding npm e2b@2.51.0 (default $CARGO_TARGET_DIR/official-js/node_modules)
# TypeScript (pinned, for its compiler API) is installed into $CARGO_TARGET_DIR/parity-js.
# Extra arguments go to check_parity.py (e.g. --update to rewrite allowlist.txt).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
T="${CARGO_TARGET_DIR:-$ROOT/target}"
OFFICIAL_PY="${OFFICIAL_E2B_PYTHON:-$T/official-py/bin/python}"
OURS_PY="${OUR_E2B_PYTHON:-$T/pyvenv/bin/python}"
JS_SDK="${E2B_JS_SDK_DIR:-$T/official-js/node_modules}"
TS_VERSION=5.9.3
if [ "$(node -p "try{require('$T/parity-js/node_modules/typescript/package.json').version}catch{''}")" != "$TS_VERSION" ]; then
  npm install --silent --no-audit --no-fund --prefix "$T/parity-js" "typescript@$TS_VERSION"
fi
exec "$OURS_PY" "$HERE/check_parity.py" --official-py "$OFFICIAL_PY" --ours-py "$OURS_PY" \
  --ts-dir "$T/parity-js/node_modules" --official-dts "$JS_SDK/e2b/dist/index.d.mts" \
  --ours-dts "$ROOT/bindings-node/index.d.ts" "$@"
