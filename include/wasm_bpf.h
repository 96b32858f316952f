/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wasm_bpf.h - call WebAssembly functions of wasm.ko from eBPF programs.
 *
 * Include after <bpf/bpf_helpers.h> in a GPL-licensed BPF program. libbpf
 * resolves the kfuncs in wasm.ko's BTF (/sys/kernel/btf/wasm) at load time.
 *
 * Programs of these types may call them: XDP, SCHED_CLS (TC), TRACING
 * (fentry, fexit), LSM, SYSCALL; on 6.12 also KPROBE and tracepoints.
 * Calls never sleep, wait or take locks: a call runs on this CPU's instance
 * of the module with the module's eBPF fuel budget (wasmctl load
 * --bpf-fuel, default 1000000). Calls from NMI context are refused.
 */
#ifndef WASM_BPF_H
#define WASM_BPF_H

#define WASM_BPF_API_VERSION 1

/* Most arguments or results of one call. */
#define WASM_BPF_MAX_VALUES 16

/*
 * bpf_wasm_lookup - Resolve @function exported by the loaded module @module.
 * Names are byte strings of the given sizes, cut at the first NUL, so a
 * string literal and its sizeof() work. Returns a handle (>= 0), valid until
 * the module is unloaded, or -ENOENT.
 */
extern __s64 bpf_wasm_lookup(const char *module, __u32 module__sz,
			     const char *function, __u32 function__sz) __ksym;

/*
 * bpf_wasm_lookup_str - bpf_wasm_lookup() for constant string names, checked
 * by the verifier (kernels with __str kfunc arguments; tested on 6.12).
 * Weak: on other kernels its address is 0 and a program using it is refused.
 */
extern __s64 bpf_wasm_lookup_str(const char *module__str,
				 const char *function__str) __ksym __weak;

/*
 * bpf_wasm_call - Call the function @handle names on this CPU's instance.
 * @args holds one __u64 per parameter, read by the parameter's type (i32
 * from the low 32 bits, floats as their IEEE bits); @results receives one
 * __u64 per result (i32 sign-extended). Sizes are in bytes. Returns the
 * number of results, or:
 *   -ENOENT  the module was unloaded (or the handle is bad)
 *   -EINVAL  argument count or types, or too small a result buffer
 *   -EBUSY   this CPU's instance is running another call (nested call)
 *   -EFAULT  the guest trapped
 *   -ETIME   the guest used up its eBPF fuel
 *   -ENOMEM  memory ran out during the call (if inside the engine, this
 *            CPU's instance is lost until the module is reloaded: -EBUSY)
 *   -EPERM   called from NMI context
 */
extern int bpf_wasm_call(__s64 handle, const void *args, __u32 args__sz,
			 void *results, __u32 results__sz) __ksym;

/*
 * bpf_wasm_call_buf - Buffer call. @buf is copied into the guest's buffer
 * (the guest exports bpf_buffer() -> i32, its address, and
 * bpf_buffer_size() -> i32), the function f(len: i32) -> i32 or i64 runs,
 * and the guest's buffer is copied back into @buf. *@result receives f's
 * result. Returns 0 or a negative errno as bpf_wasm_call(), and -E2BIG if
 * @buf is larger than the guest's buffer.
 */
extern int bpf_wasm_call_buf(__s64 handle, void *buf, __u32 buf__sz,
			     __s64 *result) __ksym;

#endif /* WASM_BPF_H */
