# SPDX-License-Identifier: GPL-2.0
# wasm-kernel-module: the familiar targets of the original module, plus the test entry points.

KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build
# Where Kbuild runs; the VM tests pass a per-kernel copy so kernels build side by side.
KMOD_DIR ?= $(CURDIR)/kmod
CARGO ?= cargo
SUDO ?= $(if $(filter 0,$(shell id -u)),,sudo)

KMOD_TARGET := x86_64-unknown-none
# Kernel code model, no GOT/PLT, frame pointers for oops traces, and the CET/retpoline/return
# thunk conventions of Debian's kernels (objtool checks them). -Zbuild-std rebuilds core and
# alloc with these flags: the prebuilt ones go through the GOT, which insmod rejects.
KMOD_RUSTFLAGS := -Crelocation-model=static -Ccode-model=kernel -Crelro-level=off \
	-Cforce-frame-pointers=y -Cforce-unwind-tables=n \
	-Zcf-protection=branch -Zretpoline-external-thunk -Zfunction-return=thunk-extern
KMOD_LIB := $(CURDIR)/kmod/rust/target/$(KMOD_TARGET)/release/libwasm_kmod.a

SAMPLES_OUT := $(CURDIR)/samples/target/wasm32-unknown-unknown/release
WASMCTL := $(CURDIR)/target/release/wasmctl

.PHONY: all deps module rust-kmod insmod rmmod logs build-cli build-samples \
	build-hello-world-rust-wasm load-hello-world-rust-wasm demo test check clean

all: module

# Packages, QEMU and Rust targets (quick when all are there).
deps:
	$(SUDO) scripts/install-deps.sh

rust-kmod:
	cd kmod/rust && RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(KMOD_RUSTFLAGS)" \
		$(CARGO) build --release --target $(KMOD_TARGET) -Zbuild-std=core,alloc

module: rust-kmod
	$(MAKE) -C $(KDIR) M=$(KMOD_DIR) WASM_RUST_LIB=$(KMOD_LIB) modules

insmod:
	$(SUDO) insmod $(KMOD_DIR)/wasm.ko

rmmod:
	$(SUDO) rmmod wasm

logs:
	$(SUDO) dmesg --follow

build-cli:
	$(CARGO) build --release -p wasmctl

build-samples:
	cd samples && $(CARGO) build --release --target wasm32-unknown-unknown

build-hello-world-rust-wasm:
	cd samples && $(CARGO) build --release --target wasm32-unknown-unknown -p hello-world-rust

load-hello-world-rust-wasm:
	$(SUDO) $(WASMCTL) load $(SAMPLES_OUT)/hello_world_rust.wasm --name hello-world

# Build everything, boot Debian's kernel under QEMU, load the hello world, print the log.
demo: deps
	$(CARGO) xtask demo

# Static checks, unit tests, then the VM scenarios on Debian 6.1 and 6.12.
test: deps check
	$(CARGO) test --workspace
	$(CARGO) xtask vm-test

check: rust-kmod
	$(CARGO) fmt --all --check
	cd kmod/rust && $(CARGO) fmt --check
	cd samples && $(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd kmod/rust && RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(KMOD_RUSTFLAGS)" \
		$(CARGO) clippy --release --target $(KMOD_TARGET) -Zbuild-std=core,alloc -- -D warnings
	cd samples && $(CARGO) clippy --release --target wasm32-unknown-unknown -- -D warnings
	$(CARGO) xtask checkpatch

clean:
	$(CARGO) clean
	cd kmod/rust && $(CARGO) clean
	cd samples && $(CARGO) clean
	rm -f kmod/*.o kmod/*.ko kmod/*.mod kmod/*.mod.c kmod/.*.cmd kmod/modules.order kmod/Module.symvers
