#!/bin/sh
# Benchmark scenario: the cost of an eBPF -> Wasm call, from XDP test runs with repeat.
insmod /lib/wasm.ko
wasmctl load /guests/probe.wasm --name probe > /dev/null
wasm-bpf bench /bpf/kfunc_test.bpf.o --repeat 20000 --rounds 5
