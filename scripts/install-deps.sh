#!/usr/bin/env bash
# Installs what the build and the VM tests need on a Debian 12 (bookworm) machine, as root:
# build tools, busybox-static, clang/LLVM, QEMU from bookworm-backports, and the Rust targets.
# Quick when everything is there already: apt runs only for missing packages.
set -euo pipefail

packages=(build-essential patch pkg-config bc bison flex kmod cpio xz-utils zstd perl libelf-dev libssl-dev
	busybox-static clang llvm lld dwarves libbpf-dev bindgen zlib1g-dev libzstd-dev
	wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32 ldc nim wabt
	lintian mmdebstrap e2fsprogs umoci)
backports_packages=(qemu-system-x86 golang-1.23-go)

missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
	done
}

# bookworm-backports (QEMU, Go, the 6.12 kernels) and bookworm's sources (Lua, for the Lua
# guest), from the mirror this machine already uses for bookworm; never name a host here.
sources=/etc/apt/sources.list.d/wasm-kernel-module.sources
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
	mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
[ -n "$mirror" ] || { echo "install-deps: cannot find the Debian mirror in /etc/apt" >&2; exit 1; }
wanted="Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
if [ "$(cat "$sources" 2>/dev/null)" != "$wanted" ]; then
	printf '%s\n' "$wanted" >"$sources"
	rm -f /etc/apt/sources.list.d/wasm-kernel-module-backports.sources
	sources_changed=yes
fi

need=$(missing "${packages[@]}")
need_bpo=$(missing "${backports_packages[@]}")
# The kernel packages are resolved through apt's lists: refresh them once if they are empty.
if [ -n "$need$need_bpo" ] || [ "${sources_changed:-}" = yes ] || [ -z "$(apt-cache search --names-only '^linux-image-6\.12\.' | head -1)" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # word splitting of the package lists is intended
	[ -z "$need" ] || apt-get install -y -qq --no-install-recommends $need >/dev/null
	# shellcheck disable=SC2086
	[ -z "$need_bpo" ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports $need_bpo >/dev/null
fi

if command -v rustup >/dev/null 2>&1; then
	installed=$(rustup target list --installed)
	for t in x86_64-unknown-none wasm32-unknown-unknown wasm32-wasip1; do
		grep -qx "$t" <<<"$installed" || rustup target add "$t"
	done
	rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
	rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
else
	echo "install-deps: rustup not found: install Rust with rustup first" >&2
	exit 1
fi
# Zig comes from PyPI, AssemblyScript from npm (samples/languages/assemblyscript).
python3 -m ziglang version >/dev/null 2>&1 || python3 -m pip install -q "ziglang==0.17.1"
# The Kubernetes manifests are checked against Kubernetes' schemas (cargo xtask image).
python3 -m kubernetes_validate --version >/dev/null 2>&1 || python3 -m pip install -q "kubernetes-validate==1.37.0"
command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends npm >/dev/null
echo "install-deps: ready"
