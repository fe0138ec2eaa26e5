#!/usr/bin/env bash
# Installs every system package the project needs on a Debian bookworm host (run as root).
# QEMU 10 comes from bookworm-backports through a private apt configuration, so the
# system's own apt sources are never modified (the image's qemu-utils 10 conflicts with
# bookworm's QEMU 7.2). Idempotent: a second run only checks.
set -euo pipefail

log() { echo "[install-deps] $*"; }
need_root() { [ "$(id -u)" = 0 ] || { echo "install-deps: must run as root (apt-get)" >&2; exit 1; }; }

QEMU_OK=0
if command -v qemu-system-x86_64 >/dev/null 2>&1 && qemu-system-x86_64 --version | grep -q 'version 1[0-9]\.'; then QEMU_OK=1; fi
PKGS=(debootstrap busybox-static e2fsprogs xfsprogs cpio python3-venv linux-image-amd64 iproute2 nftables nginx-light openssl
  docker-registry skopeo umoci apache2-utils  # the OCI image tests: a local registry, image push, image build, htpasswd
  postgresql-15)  # the cluster tests: throwaway PostgreSQL servers (tests/cluster/postgres.sh)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done

if [ "$QEMU_OK" = 1 ] && [ ${#missing[@]} = 0 ]; then log "system packages present"; exit 0; fi
need_root
export DEBIAN_FRONTEND=noninteractive

# Mirror: the one the system's apt already uses.
MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | grep -vE '^\s*#' | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1 || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${MIRROR%/debian*}/debian-security
BPO=/var/cache/sandboxd-apt
mkdir -p "$BPO/lists/partial" "$BPO/archives/partial"
cat > "$BPO/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $SECURITY bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR bookworm-backports main
SRC
APTO=(-o "Dir::Etc::sourcelist=$BPO/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::lists=$BPO/lists" -o "Dir::Cache::archives=$BPO/archives")
log "apt-get update (private config with bookworm-backports)"
apt-get "${APTO[@]}" update -qq
if [ "$QEMU_OK" = 0 ]; then
  log "installing QEMU 10 from bookworm-backports"
  apt-get "${APTO[@]}" install -y -qq --no-install-recommends -t bookworm-backports \
    qemu-system-x86 qemu-system-common qemu-system-data qemu-utils
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get "${APTO[@]}" install -y -qq --no-install-recommends "${missing[@]}"
fi
qemu-system-x86_64 --version | head -n1
log "done"
