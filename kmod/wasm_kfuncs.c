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
#include <linux/objtool.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/string.h>
#include <asm/asm.h>

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

/*
 * Where wasm_shim_bpf_abandon() returns to, per nesting level: a kfunc runs
 * with migration disabled, and one nested in it (from an interrupt) returns
 * before it goes on.
 */
#define WASM_BPF_MAX_DEPTH 4
static DEFINE_PER_CPU(unsigned long, wasm_bpf_abandon[WASM_BPF_MAX_DEPTH]);

/* What a guarded kfunc call does: bpf_wasm_call() or bpf_wasm_call_buf(). */
struct wasm_bpf_job {
	s64 handle;
	void *a;
	u32 a_len;
	void *b;
	u32 b_len;
	s64 *result;
};

/* Called from wasm_bpf_guarded()'s asm, by name. */
static __used noinline __noclone int wasm_bpf_run(struct wasm_bpf_job *job)
{
	if (job->result)
		return wasm_rs_bpf_call_buf(job->handle, job->a, job->a_len,
					    job->result);
	return wasm_rs_bpf_call(job->handle, job->a, job->a_len, job->b,
				job->b_len);
}

/*
 * Runs wasm_bpf_run(job) on the current stack, keeping the %rsp to come back
 * to in *slot: wasm_shim_bpf_abandon() resumes at wasm_bpf_abandoned, and the
 * call returns -ENOMEM. As wasm_call_on_stack() in wasm_main.c, every register
 * the compiler could keep is a clobber and %rbp is pushed; the label is global,
 * so this function is never inlined or cloned.
 */
static noinline __noclone int wasm_bpf_guarded(struct wasm_bpf_job *job,
					       unsigned long *slot)
{
	int ret;

	asm volatile("pushq	%%rbp\n"
		     "movq	%%rsp, (%%rsi)\n"
		     "call	wasm_bpf_run\n"
		     "jmp	1f\n"
		     ".globl	wasm_bpf_abandoned\n"
		     "wasm_bpf_abandoned:\n"
		     "movl	%[enomem], %%eax\n"
		     "1:	popq	%%rbp\n"
		     : "=a" (ret), "+D" (job), "+S" (slot), ASM_CALL_CONSTRAINT
		     : [enomem] "i" (-ENOMEM)
		     : "cc", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11",
		       "r12", "r13", "r14", "r15", "memory");
	return ret;
}
STACK_FRAME_NON_STANDARD(wasm_bpf_guarded);

/*
 * Ends the innermost kfunc call of this CPU (a Rust panic inside it): it
 * returns -ENOMEM to its BPF program. Returns if no kfunc call is running.
 */
void wasm_shim_bpf_abandon(void)
{
	unsigned int depth = this_cpu_read(wasm_bpf_depth);

	if (!depth || depth > WASM_BPF_MAX_DEPTH)
		return;
	asm volatile("movq	(%0), %%rsp\n"
		     "jmp	wasm_bpf_abandoned\n"
		     : : "r" (this_cpu_ptr(&wasm_bpf_abandon[depth - 1]))
		     : "memory");
	unreachable();
}
STACK_FRAME_NON_STANDARD(wasm_shim_bpf_abandon);

/*
 * A kfunc call: in an RCU read-side section (the published modules), counted
 * in wasm_bpf_depth, and guarded.
 */
static int wasm_bpf_enter(struct wasm_bpf_job *job)
{
	unsigned int depth;
	int ret;

	if (in_nmi())
		return -EPERM;
	depth = this_cpu_inc_return(wasm_bpf_depth);
	if (depth > WASM_BPF_MAX_DEPTH) {
		this_cpu_dec(wasm_bpf_depth);
		return -EBUSY;
	}
	rcu_read_lock();
	ret = wasm_bpf_guarded(job, this_cpu_ptr(&wasm_bpf_abandon[depth - 1]));
	rcu_read_unlock();
	this_cpu_dec(wasm_bpf_depth);
	return ret;
}

bool wasm_shim_atomic_context(void)
{
	return in_interrupt() || irqs_disabled() || this_cpu_read(wasm_bpf_depth);
}

/* A /dev/wasm request can be running: task context, not inside a kfunc. */
bool wasm_shim_request_context(void)
{
	return in_task() && !this_cpu_read(wasm_bpf_depth);
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
 * (trap), -ETIME (fuel), -ENOMEM (out of memory), -EPERM (NMI context).
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
	struct wasm_bpf_job job = {
		.handle = handle,
		.a = (void *)args,
		.a_len = args__sz,
		.b = results,
		.b_len = results__sz,
	};

	return wasm_bpf_enter(&job);
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
	struct wasm_bpf_job job = {
		.handle = handle,
		.a = buf,
		.a_len = buf__sz,
		.result = result,
	};
	s64 ignored;

	/* A non-null result selects call_buf. */
	if (!job.result)
		job.result = &ignored;
	return wasm_bpf_enter(&job);
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

#ifdef CONFIG_DEBUG_INFO_BTF_MODULES
	if (!THIS_MODULE->btf_data_size)
		return WASM_KFUNCS_NO_BTF;
#else
	return WASM_KFUNCS_NO_BTF;
#endif
	/* resolve_btfids fills in the count with the ids. */
	if (!wasm_kfunc_ids.cnt)
		return WASM_KFUNCS_UNRESOLVED;
	for (i = 0; i < ARRAY_SIZE(wasm_kfunc_prog_types); i++) {
		ret = register_btf_kfunc_id_set(wasm_kfunc_prog_types[i],
						&wasm_kfunc_set);
		if (ret)
			return ret;
	}
	return 0;
}
