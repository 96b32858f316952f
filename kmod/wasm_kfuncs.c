// SPDX-License-Identifier: GPL-2.0
/*
 * kfuncs: eBPF programs call exported WebAssembly functions of wasm.ko.
 * The declarations for BPF programs are in include/wasm_bpf.h; the logic
 * is Rust (wasm_rs_bpf_* in rust/src/bpf.rs).
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/hardirq.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/string.h>

#include "wasm_shim.h"

/*
 * Kernels before 6.9 have neither __bpf_kfunc nor BTF_KFUNCS_START: the kfuncs
 * carry the attributes __bpf_kfunc stands for, and the set uses the macros the
 * kernel has. Their prototypes are in wasm_shim.h.
 */

/*
 * Non-zero while this CPU runs a kfunc: the allocator must not sleep, even
 * where preempt_count() cannot tell (a BPF program in process context under
 * preemptible RCU, or a kernel without CONFIG_PREEMPT_COUNT).
 */
static DEFINE_PER_CPU(unsigned int, wasm_bpf_depth);

bool wasm_shim_atomic_context(void)
{
	return in_interrupt() || irqs_disabled() || this_cpu_read(wasm_bpf_depth);
}

/**
 * bpf_wasm_lookup - Resolve an exported function of a loaded Wasm module
 * @module: module name (not NUL-terminated)
 * @module__sz: length of @module
 * @function: exported function name (not NUL-terminated)
 * @function__sz: length of @function
 *
 * Return: a handle (>= 0) for bpf_wasm_call() and bpf_wasm_call_buf(), or
 * -ENOENT if no such module or export is loaded.
 */
__used __noclone noinline s64 bpf_wasm_lookup(const char *module,
					      u32 module__sz,
					      const char *function,
					      u32 function__sz)
{
	return wasm_rs_bpf_lookup(module, module__sz, function, function__sz);
}

/**
 * bpf_wasm_call - Call a Wasm function on this CPU's instance
 * @handle: from bpf_wasm_lookup()
 * @args: arguments, one u64 each, read by the function's parameter types
 * @args__sz: size of @args in bytes
 * @results: where the results go, one u64 each
 * @results__sz: size of @results in bytes
 *
 * Return: the number of results, or a negative errno: -ENOENT (module
 * unloaded), -EINVAL (arguments), -EBUSY (nested call on this CPU), -EFAULT
 * (trap), -ETIME (fuel), -EPERM (NMI context).
 */
#ifdef BTF_KFUNCS_START
/**
 * bpf_wasm_lookup_str - bpf_wasm_lookup() with constant strings
 * @module__str: module name, a constant NUL-terminated string
 * @function__str: exported function name, a constant NUL-terminated string
 *
 * The verifier checks both are constant strings (kernels with __str
 * arguments only). Return: as bpf_wasm_lookup().
 */
__used __noclone noinline s64 bpf_wasm_lookup_str(const char *module__str,
						  const char *function__str)
{
	return wasm_rs_bpf_lookup(module__str, strlen(module__str),
				  function__str, strlen(function__str));
}
#endif

__used __noclone noinline int bpf_wasm_call(s64 handle, const void *args,
					    u32 args__sz, void *results,
					    u32 results__sz)
{
	int ret;

	if (in_nmi())
		return -EPERM;
	this_cpu_inc(wasm_bpf_depth);
	ret = wasm_rs_bpf_call(handle, args, args__sz, results, results__sz);
	this_cpu_dec(wasm_bpf_depth);
	return ret;
}

/**
 * bpf_wasm_call_buf - Call a Wasm function on a buffer
 * @handle: from bpf_wasm_lookup(); the function is f(len: i32) -> i32/i64
 * @buf: copied into the guest's buffer before the call and back after it
 * @buf__sz: size of @buf in bytes
 * @result: the function's result, sign-extended
 *
 * Return: 0, or a negative errno as bpf_wasm_call(); -E2BIG if @buf does
 * not fit the guest's buffer.
 */
__used __noclone noinline int bpf_wasm_call_buf(s64 handle, void *buf,
						u32 buf__sz, s64 *result)
{
	int ret;

	if (in_nmi())
		return -EPERM;
	this_cpu_inc(wasm_bpf_depth);
	ret = wasm_rs_bpf_call_buf(handle, buf, buf__sz, result);
	this_cpu_dec(wasm_bpf_depth);
	return ret;
}

#ifdef BTF_KFUNCS_START
BTF_KFUNCS_START(wasm_kfunc_ids)
#else
BTF_SET8_START(wasm_kfunc_ids)
#endif
BTF_ID_FLAGS(func, bpf_wasm_lookup)
#ifdef BTF_KFUNCS_START
BTF_ID_FLAGS(func, bpf_wasm_lookup_str)
#endif
BTF_ID_FLAGS(func, bpf_wasm_call)
BTF_ID_FLAGS(func, bpf_wasm_call_buf)
#ifdef BTF_KFUNCS_END
BTF_KFUNCS_END(wasm_kfunc_ids)
#else
BTF_SET8_END(wasm_kfunc_ids)
#endif

static const struct btf_kfunc_id_set wasm_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &wasm_kfunc_ids,
};

/*
 * TRACING also covers fentry, fexit and LSM programs (and tracepoints on 6.12);
 * registering LSM as well would fail. Kprobe programs may call kfuncs on the
 * kernels that mark kfunc sets (BTF_KFUNCS_START): tested on 6.12.
 */
static const enum bpf_prog_type wasm_kfunc_prog_types[] = {
	BPF_PROG_TYPE_XDP,
	BPF_PROG_TYPE_SCHED_CLS,
	BPF_PROG_TYPE_TRACING,
	BPF_PROG_TYPE_SYSCALL,
#ifdef BTF_KFUNCS_START
	BPF_PROG_TYPE_KPROBE,
#endif
};

int wasm_kfuncs_register(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(wasm_kfunc_prog_types); i++) {
		ret = register_btf_kfunc_id_set(wasm_kfunc_prog_types[i],
						&wasm_kfunc_set);
		if (ret)
			return ret;
	}
	return 0;
}
