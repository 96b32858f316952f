#!/bin/sh
# The install test inside a Debian 12 VM booted with systemd (wasm-install-test.service, after
# wasm-apply.service), one stage per boot; counts survive reboots on the data disk. Prints
# "VMTEST PASS name" / "VMTEST FAIL name: why" and finally "VMTEST SUMMARY passed=N failed=M".
S=/mnt/test/state
# Nothing may hang this up halfway (the console is a terminal).
trap '' HUP
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
passed=$(cat $S/passed 2>/dev/null || echo 0)
failed=$(cat $S/failed 2>/dev/null || echo 0)
save() { echo "$passed" > $S/passed; echo "$failed" > $S/failed; sync; }
ok() { passed=$((passed + 1)); echo "VMTEST PASS $1"; save; }
ko() { failed=$((failed + 1)); echo "VMTEST FAIL $1: $2"; save; }
run() { OUT=$("$@" 2>&1); RC=$?; }
expect_ok() {
	name=$1 pat=$2; shift 2; run "$@"
	if [ "$RC" -eq 0 ] && echo "$OUT" | grep -q -E -- "$pat"; then ok "$name"; else ko "$name" "rc=$RC: $(echo "$OUT" | tail -n 20)"; fi
}
finish() {
	echo "VMTEST SUMMARY passed=$passed failed=$failed"
	sync
	systemctl poweroff
	exit 0
}
# A kernel release as an extended regular expression (6.12.118+deb12-amd64 has a '+').
re() { echo "$1" | sed 's/[.+]/\\&/g'; }
kver=$(uname -r)
k=$(re "$kver")
stage=$(cat $S/stage 2>/dev/null || echo install)
echo "VMTEST INFO install test: stage $stage on $kver"

# What holds for every kernel wasm.ko was built for, after a boot.
booted() {
	expect_ok "dkms-installed-$kver" "wasm-kernel-module/[^,]*, $k, x86_64: installed" dkms status
	expect_ok "module-from-dkms-$kver" "/updates/dkms/wasm.ko" modinfo -n wasm
	expect_ok "module-signed-$kver" "^signer: +." modinfo wasm
	# DKMS compresses the module as the kernel's own are (xz on 6.12).
	ko=$(modinfo -n wasm)
	case $ko in *.xz) xz -dc "$ko" > /tmp/wasm.ko && ko=/tmp/wasm.ko ;; esac
	expect_ok "module-btf-$kver" " \.BTF " readelf -S "$ko"
	expect_ok "loaded-at-boot-$kver" "^wasm " lsmod
	expect_ok "apply-service-active-$kver" "^active$" systemctl is-active wasm-apply.service
	expect_ok "hello-in-journal-$kver" "Hello, world!" journalctl -k -b --no-pager
	expect_ok "hello-listed-$kver" "^hello-world +\(interpreted" wasmctl list
	expect_ok "ebpf-available-$kver" "^eBPF calls available" wasmctl version
	expect_ok "apply-idempotent-$kver" "^hello-world: unchanged$" wasmctl apply
}

case $stage in
install)
	expect_ok apt-install "Setting up wasmctl" apt-get install -y /mnt/test/debs/*.deb
	if [ "$RC" -ne 0 ]; then cat /var/lib/dkms/wasm-kernel-module/*/build/make.log 2>/dev/null | tail -n 40; fi
	expect_ok "dkms-built-$kver" "wasm-kernel-module/[^,]*, $k, x86_64: installed" dkms status
	expect_ok mok-key-made "" test -s /var/lib/dkms/mok.pub
	expect_ok apply-service-enabled "^enabled$" systemctl is-enabled wasm-apply.service
	cp /usr/share/doc/wasmctl/examples/hello-world.toml /etc/wasm.d/
	echo boot > $S/stage
	sync
	systemctl reboot
	;;
boot)
	booted
	new=$(cat $S/upgrade)
	expect_ok kernel-upgrade-installed "Setting up linux-image-$(re "$new")" apt-get install -y /mnt/test/kernel/*.deb
	expect_ok "dkms-rebuilt-for-$new" "wasm-kernel-module/[^,]*, $(re "$new"), x86_64: installed" dkms status
	if ! ls "/lib/modules/$new/updates/dkms/wasm.ko"* > /dev/null 2>&1; then
		cat /var/lib/dkms/wasm-kernel-module/*/build/make.log 2>/dev/null | tail -n 40
		finish
	fi
	echo upgraded > $S/stage
	sync
	# Reboot into the new kernel without a boot loader: kexec, through systemd's shutdown.
	kexec -l "/boot/vmlinuz-$new" --initrd="/boot/initrd.img-$new" --append="$(cat /proc/cmdline)"
	systemctl kexec
	;;
upgraded)
	expect_ok kernel-upgraded "^$(re "$(cat $S/upgrade)")$" uname -r
	booted
	finish
	;;
esac
