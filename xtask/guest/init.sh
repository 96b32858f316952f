#!/bin/sh
# /init of the test VM: mounts the basics, runs /scenario.sh, dumps the kernel log, powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "VM: kernel $(uname -r), $(nproc) cpus"
# The debug kernel: what kmemleak suspects from boot (early ACPI caches) is not the
# scenario's: report it (an object is reported on the second scan that finds it unchanged)
# and clear it first, so that only what the scenario leaves is reported. kmemleak reports
# nothing younger than 5 s: wait that long first.
if mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null && [ -e /sys/kernel/debug/kmemleak ]; then
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	echo clear > /sys/kernel/debug/kmemleak
fi
sh /scenario.sh
# The debug kernel: what kmemleak finds unreferenced after the scenario (xtask fails on any).
if [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak
	sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	echo "VM: kmemleak: $(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak) unreferenced objects"
	cat /sys/kernel/debug/kmemleak
fi
echo "VM: dmesg begin"
dmesg
echo "VM: dmesg end"
# A reboot, not a power-off: QEMU runs with -no-reboot, so it exits either way, and the debug
# kernel (no ACPI power-off: its ACPI tables do not load) halts on poweroff instead, leaving
# QEMU running until the timeout.
reboot -f
