#!/bin/sh
# /init of the test VM: mounts the basics, runs /scenario.sh, dumps the kernel log, powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "VM: kernel $(uname -r), $(nproc) cpus"
sh /scenario.sh
# The debug kernel: what kmemleak finds unreferenced after the scenario (xtask fails on any).
if mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null && [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak
	sleep 1
	echo scan > /sys/kernel/debug/kmemleak
	echo "VM: kmemleak: $(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak) unreferenced objects"
	cat /sys/kernel/debug/kmemleak
fi
echo "VM: dmesg begin"
dmesg
echo "VM: dmesg end"
poweroff -f
