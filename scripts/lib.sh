# Shared by setup.sh and test.sh: paths and the release build of sandboxd + envd.
# shellcheck shell=bash
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TERM_PROGRESS_WHEN=never
HOST_TRIPLE=x86_64-unknown-linux-gnu
SANDBOXD_BIN_DEFAULT="$CARGO_TARGET_DIR/release/sandboxd"
# envd runs inside the guest: built statically so it never depends on the host's glibc.
ENVD_BIN_DEFAULT="$CARGO_TARGET_DIR/$HOST_TRIPLE/release/envd"

say() { printf '\n==> %s\n' "$*"; }

build_server() {
  say "building sandboxd and envd (release)"
  (cd "$ROOT" && cargo build --release --locked -p sandboxd)
  (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -p envd --target "$HOST_TRIPLE")
  export SANDBOXD_BIN="${SANDBOXD_BIN:-$SANDBOXD_BIN_DEFAULT}"
  export SANDBOXD_ENVD="${SANDBOXD_ENVD:-$ENVD_BIN_DEFAULT}"
}

build_template() {
  say "base template (cached; rebuilt when missing or when envd changed)"
  "$SANDBOXD_BIN" template build base
}
