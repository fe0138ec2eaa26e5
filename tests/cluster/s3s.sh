#!/usr/bin/env bash
# The S3 server cluster tests run against: s3s-fs from crates.io, built once and cached.
#   tests/cluster/s3s.sh path     installs it if missing (about 4 minutes), prints the binary
# The tests start their own throwaway instances on loopback ports (see server/tests/common/s3.rs).
set -euo pipefail
VERSION=0.14.1
CACHE="${SANDBOXD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sandboxd/tools}"
ROOT="$CACHE/s3s-fs-$VERSION"
BIN="$ROOT/bin/s3s-fs"
case "${1:-path}" in
  path)
    if ! [ -x "$BIN" ] || ! "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
      echo "building s3s-fs $VERSION into $ROOT (cached for later runs)" >&2
      cargo install s3s-fs --version "$VERSION" --features binary --locked --root "$ROOT" >&2
    fi
    echo "$BIN"
    ;;
  *) echo "usage: $0 path" >&2; exit 2 ;;
esac
