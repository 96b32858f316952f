#!/bin/sh
# The quick-start scenario: load wasm.ko and the hello world, then show the kernel log.
insmod /lib/wasm.ko
wasmctl load /guests/hello_world_rust.wasm --name hello-world
wasmctl list
