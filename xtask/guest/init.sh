#!/bin/sh
# /init of the test VM: mounts the basics, runs /scenario.sh, dumps the kernel log, powers off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "VM: kernel $(uname -r), $(nproc) cpus"
sh /scenario.sh
echo "VM: dmesg begin"
dmesg
echo "VM: dmesg end"
poweroff -f
