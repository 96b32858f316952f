#!/bin/sh
# Benchmark scenario, under QEMU icount (one virtual ns per guest instruction). xtask puts
# SCALE, EBPF_REPEAT and EBPF_ROUNDS before this script.
insmod /lib/wasm.ko memory_cap_mb=1024 || echo "BENCH-ERROR insmod failed"
# Let the work that follows boot finish first: the clock measures whatever else runs.
sleep 5
# The workloads on wasm.ko and on the user-space engines, on the same kernel.
wasm-bench suite --guest /guests/bench_guest.wasm --scale "$SCALE" --rounds 1 \
	--engine wasm-ko --engine wasm-ko-native --native-ko /native/bench_native.ko \
	--engine kernel-build --engine user-build --engine wasm3 --engine wasmtime ||
	echo "BENCH-ERROR wasm-bench suite failed"
# Load time and memory against the number of instances (the kernel has 64 possible CPUs).
wasm-bench scaling --guest /guests/probe.wasm --instances 1 --instances 2 --instances 8 \
	--instances 64 || echo "BENCH-ERROR wasm-bench scaling failed"
# The eBPF -> Wasm call.
wasmctl load /guests/probe.wasm --name probe > /dev/null || echo "BENCH-ERROR probe load failed"
wasm-bpf bench /bpf/kfunc_test.bpf.o --repeat "$EBPF_REPEAT" --rounds "$EBPF_ROUNDS" ||
	echo "BENCH-ERROR wasm-bpf bench failed"
