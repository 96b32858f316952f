#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Gives wasm.ko the module BTF that eBPF programs need to see its kfuncs, when Kbuild could
# not: Debian's 6.1 headers ship neither vmlinux (the base BTF) nor resolve_btfids, so Kbuild
# only prints "Skipping BTF generation". Does what Kbuild's modfinal step would (pahole -J
# against the kernel's BTF, then resolve_btfids), or stops saying what to install.
#
# Usage: module-btf.sh KO KDIR
# Environment (all optional):
#   VMLINUX         the target kernel's BTF: an ELF vmlinux or raw BTF
#                   [default: KDIR/vmlinux, else /sys/kernel/btf/vmlinux if KDIR is the
#                   running kernel's, else extracted from VMLINUZ]
#   VMLINUZ         the target kernel's image [default: /boot/vmlinuz-RELEASE]
#   RESOLVE_BTFIDS  the tool [default: KDIR's, then /usr/lib/wasm-kernel-module/resolve_btfids,
#                   then resolve_btfids on PATH]
#   PAHOLE          [default: pahole]
set -eu

ko=$1
kdir=$2
PAHOLE=${PAHOLE:-pahole}
export PAHOLE

die() {
	echo "module-btf: $*" >&2
	exit 1
}

# The number of kfuncs resolve_btfids counted into the set at the start of .BTF_ids.
resolved_count() {
	objcopy -O binary --only-section=.BTF_ids "$1" "$1.ids" 2>/dev/null || return 0
	od -An -tu4 -N4 "$1.ids" | tr -d ' '
	rm -f "$1.ids"
}

has_btf() {
	readelf -S "$1" | grep -q ' \.BTF '
}

if has_btf "$ko" && [ "$(resolved_count "$ko")" != 0 ]; then
	exit 0
fi

# The release modules built here are for (Debian's include/config/kernel.release holds the
# upstream version instead).
release=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$kdir/include/generated/utsrelease.h" 2>/dev/null)
[ -n "$release" ] || die "$kdir is not a prepared kernel tree (no include/generated/utsrelease.h)"

command -v "$PAHOLE" >/dev/null || die "pahole not found: apt-get install dwarves"

# The base BTF, which the module's split BTF refers to: it must be the target kernel's own.
base=${VMLINUX:-}
if [ -z "$base" ] && [ -f "$kdir/vmlinux" ]; then
	base=$kdir/vmlinux
fi
if [ -z "$base" ] && [ "$(uname -r)" = "$release" ] && [ -r /sys/kernel/btf/vmlinux ]; then
	base=/sys/kernel/btf/vmlinux
fi
if [ -z "$base" ]; then
	image=${VMLINUZ:-/boot/vmlinuz-$release}
	[ -r "$image" ] || die "no BTF of kernel $release: install linux-image-$release (its /boot/vmlinuz-$release holds it) or pass VMLINUX= or VMLINUZ="
	base=$(dirname "$ko")/.vmlinux-$release
	if [ ! -s "$base" ] || [ "$image" -nt "$base" ]; then
		# The image is a boot stub followed by the compressed ELF: try each stream that starts
		# with a known magic until one decompresses to an ELF file.
		found=
		for fmt in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
			tool=${fmt%%:*}
			command -v "$tool" >/dev/null || continue
			for offset in $(LC_ALL=C grep -obUaP "${fmt#*:}" "$image" | cut -d: -f1); do
				tail -c +"$((offset + 1))" "$image" | "$tool" -dc >"$base.tmp" 2>/dev/null || true
				if [ "$(head -c 4 "$base.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
					found=yes
					break 2
				fi
			done
		done
		[ -n "$found" ] || { rm -f "$base.tmp"; die "found no kernel ELF in $image"; }
		mv "$base.tmp" "$base"
	fi
fi

tool=${RESOLVE_BTFIDS:-}
for candidate in "$kdir/tools/bpf/resolve_btfids/resolve_btfids" \
	/usr/lib/wasm-kernel-module/resolve_btfids "$(command -v resolve_btfids || true)"; do
	if [ -z "$tool" ] && [ -n "$candidate" ] && [ -x "$candidate" ]; then
		tool=$candidate
	fi
done
[ -n "$tool" ] || die "resolve_btfids not found: install linux-source-6.1 and run 'make resolve-btfids' in the project (or install the wasm-kernel-module-dkms package, which ships it), or pass RESOLVE_BTFIDS="

flags=
if [ -x "$kdir/scripts/pahole-flags.sh" ]; then
	flags=$("$kdir/scripts/pahole-flags.sh")
fi
if ! has_btf "$ko"; then
	# shellcheck disable=SC2086 # the flags are words
	LLVM_OBJCOPY=objcopy "$PAHOLE" -J $flags --btf_base "$base" "$ko"
fi
"$tool" -b "$base" "$ko"
has_btf "$ko" || die "pahole left $ko without .BTF"
[ "$(resolved_count "$ko")" != 0 ] || die "resolve_btfids left the kfunc set of $ko empty"
echo "module-btf: added BTF to $ko (base: $base)"
