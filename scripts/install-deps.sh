#!/usr/bin/env bash
# Installs everything the build and the VM tests need on a fresh Debian bookworm machine.
# Idempotent: a second run only checks. Run as root.
set -euo pipefail

backports=/etc/apt/sources.list.d/wasm-kernel-module-backports.sources
if [ ! -f "$backports" ]; then
	# Reuse the mirror the machine already uses for bookworm; never name a host here.
	mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	if [ -z "$mirror" ]; then
		mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
	fi
	[ -n "$mirror" ] || { echo "install-deps: cannot find the Debian mirror in /etc/apt" >&2; exit 1; }
	cat >"$backports" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
	build-essential bc bison flex kmod cpio xz-utils zstd \
	libelf-dev libssl-dev busybox-static \
	clang llvm lld dwarves >/dev/null
apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null

if command -v rustup >/dev/null 2>&1; then
	rustup target add x86_64-unknown-none wasm32-unknown-unknown wasm32-wasip1 >/dev/null
	rustup component add rust-src clippy rustfmt >/dev/null
fi
echo "install-deps: done"
