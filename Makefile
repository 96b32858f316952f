# SPDX-License-Identifier: GPL-2.0
# wasm-kernel-module: the familiar targets of the original module, plus the test entry points.

KVER ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KVER)/build
# Where Kbuild runs; the VM tests pass a per-kernel copy so kernels build side by side.
KMOD_DIR ?= $(CURDIR)/kmod
CARGO ?= cargo
SUDO ?= $(if $(filter 0,$(shell id -u)),,sudo)

KMOD_TARGET := x86_64-unknown-none
# Kernel code model, no GOT/PLT, and the CET/retpoline/return thunk conventions of Debian's
# kernels (objtool checks them, and gives the code ORC unwind data: no frame pointers needed,
# see kmod/Kbuild). -Zbuild-std rebuilds core and alloc with these flags: the prebuilt ones go
# through the GOT, which insmod rejects.
KMOD_RUSTFLAGS := -Crelocation-model=static -Ccode-model=kernel -Crelro-level=off \
	-Cforce-unwind-tables=n \
	-Zcf-protection=branch -Zretpoline-external-thunk -Zfunction-return=thunk-extern
KMOD_LIB := $(CURDIR)/kmod/rust/target/$(KMOD_TARGET)/release/libwasm_kmod.a

SAMPLES_OUT := $(CURDIR)/samples/target/wasm32-unknown-unknown/release
WASMCTL := $(CURDIR)/target/release/wasmctl
WASM_BPF := $(CURDIR)/target/release/wasm-bpf

# eBPF samples: clang -target bpf, against the UAPI headers and libbpf's bpf_helpers.h.
BPF_OUT := $(CURDIR)/target/bpf
BPF_OBJS := $(patsubst samples/bpf/%.bpf.c,$(BPF_OUT)/%.bpf.o,$(wildcard samples/bpf/*.bpf.c))
BPF_CFLAGS := -O2 -g -Wall -Werror -target bpf -D__TARGET_ARCH_x86 \
	-I/usr/include/$(shell gcc -dumpmachine) -I$(CURDIR)/include

.PHONY: all deps module resolve-btfids rust-kmod insmod rmmod logs build-cli build-samples build-bpf build-bench build-bench-guest build-languages \
	build-hello-world-rust-wasm load-hello-world-rust-wasm load-ebpf-packet-filter \
	load-ebpf-connect-authz load-ebpf-syscall-stats load-ebpf-blocklist bench demo test package install-test image fuzz stress debug-test check clean

all: module

# Packages, QEMU and Rust targets (quick when all are there).
deps:
	$(SUDO) scripts/install-deps.sh

rust-kmod:
	scripts/patch-wasmi.sh
	cd kmod/rust && RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(KMOD_RUSTFLAGS)" \
		$(CARGO) build --release --target $(KMOD_TARGET) -Zbuild-std=core,alloc

# Module BTF, without which eBPF programs cannot see the kfuncs: Kbuild makes it where the
# headers ship vmlinux and resolve_btfids (6.12); elsewhere (Debian's 6.1 headers)
# scripts/module-btf.sh adds it, from the kernel's BTF (KDIR/vmlinux, the running kernel's,
# or extracted from VMLINUZ, default /boot/vmlinuz-KVER) with RESOLVE_BTFIDS (default: KDIR's,
# then the one `make resolve-btfids` builds from linux-source-6.1).
VMLINUX ?=
VMLINUZ ?=
RESOLVE_BTFIDS ?= $(wildcard $(CURDIR)/target/resolve_btfids/resolve_btfids)

module: rust-kmod
	@test -d $(KDIR) || { echo "no kernel headers at $(KDIR): install linux-headers-$(KVER)" \
		"or pass KDIR=...; to try wasm.ko in a VM instead: make demo" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(KMOD_DIR) WASM_RUST_LIB=$(KMOD_LIB) modules
	VMLINUX="$(VMLINUX)" VMLINUZ="$(VMLINUZ)" RESOLVE_BTFIDS="$(RESOLVE_BTFIDS)" \
		scripts/module-btf.sh $(KMOD_DIR)/wasm.ko $(KDIR)

# resolve_btfids from Debian's linux-source-6.1 (apt-get install linux-source-6.1), for
# kernels whose headers lack it.
LINUX_SOURCE ?= $(firstword $(wildcard /usr/src/linux-source-6.1.tar.xz))
RESOLVE_BTFIDS_MEMBERS := tools/bpf/resolve_btfids tools/lib tools/include tools/build \
	tools/scripts tools/arch/x86 scripts/bpf_doc.py
resolve-btfids:
	@test -n "$(LINUX_SOURCE)" || { echo "no kernel source: apt-get install linux-source-6.1" \
		"or pass LINUX_SOURCE=path/to/linux-source-X.tar.xz" >&2; exit 1; }
	rm -rf target/resolve_btfids && mkdir -p target/resolve_btfids/src
	tar -xJf $(LINUX_SOURCE) -C target/resolve_btfids/src --strip-components=1 \
		$(addprefix $(notdir $(basename $(basename $(LINUX_SOURCE))))/,$(RESOLVE_BTFIDS_MEMBERS))
	$(MAKE) -s -C target/resolve_btfids/src/tools/bpf/resolve_btfids
	cp target/resolve_btfids/src/tools/bpf/resolve_btfids/resolve_btfids target/resolve_btfids/

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

# The benchmark guest, WebAssembly 1.0 (MVP) so that wasm3 runs it too, core included.
build-bench-guest:
	cd bench/guest && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Ctarget-cpu=mvp" \
		$(CARGO) build --release --target wasm32-unknown-unknown -Zbuild-std=core

# The benchmark runner: every engine in user space, static so it runs in the VM as well
# (non-PIE: the kernel build of the engine uses the kernel code model).
build-bench: rust-kmod build-bench-guest
	cd bench/runner && RUSTFLAGS="-Ctarget-feature=+crt-static -Crelocation-model=static" \
		WASM_KMOD_LIB=$(KMOD_LIB) $(CARGO) build --release --target x86_64-unknown-linux-gnu

build-bpf: $(BPF_OBJS)
	$(CARGO) build --release -p wasm-bpf

$(BPF_OUT)/%.bpf.o: samples/bpf/%.bpf.c include/wasm_bpf.h
	@mkdir -p $(BPF_OUT)
	clang $(BPF_CFLAGS) -c $< -o $@

# Guests in other languages, for the WASI subset (samples/languages).
LANG_OUT := $(CURDIR)/target/languages
WASI_CFLAGS := --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror -Wl,--strip-all
RUST_WASIP1 := samples/languages/rust-wasip1
JS_BOA := samples/languages/js-boa
PYTHON := samples/languages/python-rustpython
GO ?= /usr/lib/go-1.23/bin/go
ZIG ?= python3 -m ziglang
ZIG_FLAGS := -target wasm32-wasi -O ReleaseSmall --stack 1048576 \
	--cache-dir $(CURDIR)/target/zig-cache --global-cache-dir $(CURDIR)/target/zig-cache
# Nim's C backend through clang for wasm32-wasi; main_shim.c enters Nim (see there).
NIM_FLAGS := --hints:off -d:release --cpu:wasm32 --os:linux --cc:clang --mm:arc -d:useMalloc \
	-d:noSignalHandler --threads:off --noMain \
	--passC:"--target=wasm32-wasi --sysroot=/usr" \
	--passL:"--target=wasm32-wasi --sysroot=/usr -Wl,--strip-all"
# Lua 5.4 from Debian's source package, errors ending the program (no setjmp here).
LUA_BUILD := $(CURDIR)/target/lua
LUA_CFLAGS := --target=wasm32-wasi --sysroot=/usr -O2 -Isamples/languages/lua/include \
	-D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -DLUA_TMPNAMBUFSIZE=32 \
	'-DLUAI_THROW(L,c)=abort()' '-DLUAI_TRY(L,c,a)=a' '-Dluai_jmpbuf=int' '-Dlua_tmpnam(b,e)={e=1;}'
ASC := samples/languages/assemblyscript/node_modules/.bin/asc
ASC_FLAGS := --config samples/languages/assemblyscript/node_modules/@assemblyscript/wasi-shim/asconfig.json -O3
build-languages:
	@mkdir -p $(LANG_OUT)
	clang $(WASI_CFLAGS) -o $(LANG_OUT)/c-hello.wasm samples/languages/c/hello.c
	clang $(WASI_CFLAGS) -o $(LANG_OUT)/c-primes.wasm samples/languages/c/primes.c
	clang++ $(WASI_CFLAGS) -fno-exceptions -o $(LANG_OUT)/cpp-hello.wasm samples/languages/cpp/hello.cpp
	clang++ $(WASI_CFLAGS) -fno-exceptions -o $(LANG_OUT)/cpp-primes.wasm samples/languages/cpp/primes.cpp
	$(CARGO) build --release --target wasm32-wasip1 --manifest-path $(RUST_WASIP1)/Cargo.toml
	cp $(RUST_WASIP1)/target/wasm32-wasip1/release/hello.wasm $(LANG_OUT)/rust-hello.wasm
	cp $(RUST_WASIP1)/target/wasm32-wasip1/release/primes.wasm $(LANG_OUT)/rust-primes.wasm
	cd samples/languages/go && for p in hello primes; do \
		GOOS=wasip1 GOARCH=wasm GOCACHE=$(CURDIR)/target/go-cache GOPATH=$(CURDIR)/target/go-path \
		$(GO) build -o $(LANG_OUT)/go-$$p.wasm ./$$p || exit 1; done
	for p in hello primes; do \
		$(ZIG) build-exe samples/languages/zig/$$p.zig $(ZIG_FLAGS) -femit-bin=$(LANG_OUT)/zig-$$p.wasm || exit 1; done
	@mkdir -p $(CURDIR)/target/d-obj
	for p in hello primes; do \
		ldc2 -mtriple=wasm32-unknown-wasi -betterC -O -boundscheck=off -c samples/languages/d/$$p.d \
			-of=$(CURDIR)/target/d-obj/$$p.o && \
		clang $(WASI_CFLAGS) $(CURDIR)/target/d-obj/$$p.o -o $(LANG_OUT)/d-$$p.wasm || exit 1; done
	for p in hello primes; do \
		nim c $(NIM_FLAGS) --nimcache:$(CURDIR)/target/nim-cache/$$p \
			--passL:"$(CURDIR)/samples/languages/nim/main_shim.c" \
			--out:$(LANG_OUT)/nim-$$p.wasm samples/languages/nim/$$p.nim || exit 1; done
	rm -rf $(LUA_BUILD) && mkdir -p $(LUA_BUILD) && cd $(LUA_BUILD) && \
		apt-get source --download-only -qq lua5.4 2>/dev/null && tar xzf lua5.4_*.orig.tar.gz
	for f in $(LUA_BUILD)/lua-*/src/*.c samples/languages/lua/wasi_stubs.c; do \
		case $$f in */luac.c) continue ;; esac; \
		clang $(LUA_CFLAGS) -c $$f -o $(LUA_BUILD)/$$(basename $$f .c).o || exit 1; done
	clang $(WASI_CFLAGS) $(LUA_BUILD)/*.o -lwasi-emulated-signal -lwasi-emulated-process-clocks \
		-o $(LANG_OUT)/lua-hello.wasm
	cp $(LANG_OUT)/lua-hello.wasm $(LANG_OUT)/lua-primes.wasm
	for p in hello primes; do cp samples/languages/lua/$$p.lua $(LANG_OUT)/lua-$$p.script; done
	cd samples/languages/assemblyscript && npm ci --silent --no-audit --no-fund
	for p in hello primes; do \
		$(ASC) samples/languages/assemblyscript/assembly/$$p.ts $(ASC_FLAGS) -o $(LANG_OUT)/as-$$p.wasm || exit 1; done
	$(CARGO) build --release --target wasm32-wasip1 --manifest-path $(JS_BOA)/Cargo.toml
	$(CARGO) build --release --target wasm32-wasip1 --manifest-path $(PYTHON)/Cargo.toml
	for p in hello primes; do \
		cp $(JS_BOA)/target/wasm32-wasip1/release/js-boa.wasm $(LANG_OUT)/js-$$p.wasm && \
		cp $(JS_BOA)/$$p.js $(LANG_OUT)/js-$$p.script && \
		cp $(PYTHON)/target/wasm32-wasip1/release/python-rustpython.wasm $(LANG_OUT)/py-$$p.wasm && \
		cp $(PYTHON)/$$p.py $(LANG_OUT)/py-$$p.script || exit 1; done
	cp samples/languages/expected.txt $(LANG_OUT)/expected.txt

build-hello-world-rust-wasm:
	cd samples && $(CARGO) build --release --target wasm32-unknown-unknown -p hello-world-rust

load-hello-world-rust-wasm:
	$(SUDO) $(WASMCTL) load $(SAMPLES_OUT)/hello_world_rust.wasm --name hello-world

# The eBPF samples on a host with wasm.ko loaded: load the Wasm policy, then run the program.
PACKET ?= tcp:10.0.0.1:40000-10.0.0.2:23
load-ebpf-packet-filter: build-samples build-bpf
	$(SUDO) $(WASMCTL) load $(SAMPLES_OUT)/packet_filter.wasm --name packet-filter
	$(SUDO) $(WASM_BPF) xdp $(BPF_OUT)/packet_filter.bpf.o --prog xdp_filter --packet $(PACKET)

CONNECT ?= nc 127.0.0.1 81
load-ebpf-connect-authz: build-samples build-bpf
	$(SUDO) $(WASMCTL) load $(SAMPLES_OUT)/connect_authz.wasm --name connect-authz
	$(SUDO) $(WASM_BPF) attach $(BPF_OUT)/connect_authz.bpf.o --prog check_connect -- $(CONNECT)

TRACE_PROG ?= getpgid_fentry
load-ebpf-syscall-stats: build-samples build-bpf
	$(SUDO) $(WASMCTL) load $(SAMPLES_OUT)/syscall_stats.wasm --name syscall-stats
	$(SUDO) $(WASM_BPF) attach $(BPF_OUT)/syscall_stats.bpf.o --prog $(TRACE_PROG) -- $(WASM_BPF) getpgid 100
	$(SUDO) $(WASMCTL) call syscall-stats count

# The shared block list: the XDP program pins the map, the Wasm policy blocks BLOCK in it,
# the next packet from BLOCK is dropped (verdict=1).
BLOCK ?= 10 9 9 9
load-ebpf-blocklist: build-samples build-bpf
	$(SUDO) $(WASM_BPF) xdp $(BPF_OUT)/blocklist.bpf.o --prog xdp_blocklist --packet udp:$(subst $() ,.,$(BLOCK)):1000-10.0.0.2:53
	$(SUDO) $(WASMCTL) load $(SAMPLES_OUT)/blocklist.wasm --allow default,bpf-maps --map /sys/fs/bpf/blocked
	$(SUDO) $(WASMCTL) call blocklist block $(BLOCK)
	$(SUDO) $(WASM_BPF) xdp $(BPF_OUT)/blocklist.bpf.o --prog xdp_blocklist --packet udp:$(subst $() ,.,$(BLOCK)):1000-10.0.0.2:53

# The engines side by side (user space and the VM on both kernels), the eBPF -> Wasm call
# cost and load scaling: Markdown tables and charts in target/bench/.
bench: deps
	$(CARGO) xtask bench

# Build everything, boot Debian's kernel under QEMU, load the hello world, print the log.
demo: deps
	$(CARGO) xtask demo

# Static checks, unit tests (the fuzz corpora and regressions replayed too), the VM scenarios
# on Debian 6.1 and 6.12 (tests and hardening, with a 20 s stress and frame-fuzzing run), a
# fuzz smoke and a smoke run of the benchmark (every engine and workload at tiny sizes).
test: deps check
	$(CARGO) test --workspace
	cd fuzz && $(CARGO) test --release
	$(CARGO) xtask vm-test
	$(CARGO) xtask fuzz --seconds 15
	$(CARGO) xtask bench --scale smoke
	$(CARGO) xtask package
	$(CARGO) xtask image

# The Debian packages (target/debian, lintian-checked), and the end-to-end install test:
# both installed with apt in a Debian 12 VM booted with systemd, DKMS, boot-time loading and
# an upgrade from 6.1 to 6.12.
package: deps
	$(CARGO) xtask package

install-test: deps
	$(CARGO) xtask install-test

# The container image (target/oci) and the Kubernetes manifests checked (deploy/).
image: deps
	$(CARGO) xtask image

# Longer runs, outside make test: each fuzz target for FUZZ_SECONDS, and the hardening suite
# with a STRESS_SECONDS stress and frame-fuzzing run.
FUZZ_SECONDS ?= 600
STRESS_SECONDS ?= 60
fuzz: deps
	$(CARGO) xtask fuzz --seconds $(FUZZ_SECONDS)

stress: deps
	$(CARGO) xtask vm-test --suite hardening --stress-seconds $(STRESS_SECONDS)

# Both VM suites on a debug kernel (KASAN, lockdep, DEBUG_ATOMIC_SLEEP, kmemleak, failslab)
# built from Debian's 6.1 source on first use (cached under target/vm/kernels/debug-6.1).
debug-test: deps
	$(CARGO) xtask vm-test --debug-kernel --stress-seconds $(STRESS_SECONDS)

check: rust-kmod
	$(CARGO) fmt --all --check
	cd kmod/rust && $(CARGO) fmt --check
	cd samples && $(CARGO) fmt --check
	cd $(RUST_WASIP1) && $(CARGO) fmt --check
	cd $(JS_BOA) && $(CARGO) fmt --check
	cd $(PYTHON) && $(CARGO) fmt --check
	cd bench/guest && $(CARGO) fmt --check
	cd bench/runner && $(CARGO) fmt --check
	cd fuzz && $(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd kmod/rust && RUSTC_BOOTSTRAP=1 RUSTFLAGS="$(KMOD_RUSTFLAGS)" \
		$(CARGO) clippy --release --target $(KMOD_TARGET) -Zbuild-std=core,alloc -- -D warnings
	cd samples && $(CARGO) clippy --release --target wasm32-unknown-unknown -- -D warnings
	cd bench/guest && $(CARGO) clippy --release --target wasm32-unknown-unknown -- -D warnings
	cd bench/runner && WASM_KMOD_LIB=$(KMOD_LIB) $(CARGO) clippy --release -- -D warnings
	cd fuzz && $(CARGO) clippy --workspace --all-targets -- -D warnings
	cd $(RUST_WASIP1) && $(CARGO) clippy --release --target wasm32-wasip1 -- -D warnings
	cd $(JS_BOA) && $(CARGO) clippy --release --target wasm32-wasip1 -- -D warnings
	cd $(PYTHON) && $(CARGO) clippy --release --target wasm32-wasip1 -- -D warnings
	$(CARGO) xtask checkpatch

clean:
	$(CARGO) clean
	cd kmod/rust && $(CARGO) clean
	cd samples && $(CARGO) clean
	cd bench/guest && $(CARGO) clean
	cd bench/runner && $(CARGO) clean
	cd fuzz && $(CARGO) clean
	rm -f kmod/*.o kmod/*.ko kmod/*.mod kmod/*.mod.c kmod/.*.cmd kmod/modules.order kmod/Module.symvers
