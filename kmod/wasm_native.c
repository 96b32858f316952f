// SPDX-License-Identifier: GPL-2.0
/*
 * The native tier's C half: the symbols compiled modules link against
 * (wasm_native.h) and what only C can do for them: the per-CPU call
 * context, unwinding a trap to the call's entry, and the sections the code
 * runs in (preemption off, or kernel_fpu_begin/end for code with floats),
 * which end between fuel slices. The bookkeeping (the registry, instances,
 * limits, host functions) is Rust's: rust/src/native.rs.
 */
#include <linux/export.h>
#include <linux/module.h>
#include <linux/objtool.h>
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task_stack.h>
#include <linux/hardirq.h>
#include <asm/fpu/api.h>

#include "wasm_shim.h"
#include "wasm_native.h"

/* Fuel given per slice: the same slices as the interpreter's. */
#define WASM_NATIVE_SLICE 1000000ULL

/*
 * Stack a call may use below its entry: requests run on their own 64 KiB
 * work stack; eBPF programs call from whatever stack they run on, so their
 * calls get less.
 */
#define WASM_NATIVE_STACK_REQUEST (40 * 1024)
#define WASM_NATIVE_STACK_BPF (6 * 1024)
/* Left below the floor for the runtime, host functions and interrupts. */
#define WASM_NATIVE_STACK_MARGIN (4 * 1024)

/* The innermost call running native code on each CPU. */
static DEFINE_PER_CPU(struct wasm_shim_native_call *, wasm_native_current);

/*
 * A section of native code: preemption (and with the FPU, softirqs) off,
 * and this call the CPU's current one, until wasm_native_section_end().
 */
static void wasm_native_section_begin(struct wasm_shim_native_call *call)
{
	if (call->flags & WASM_SHIM_NATIVE_FPU)
		kernel_fpu_begin();
	else
		preempt_disable();
	call->prev = this_cpu_read(wasm_native_current);
	this_cpu_write(wasm_native_current, call);
}

static void wasm_native_section_end(struct wasm_shim_native_call *call)
{
	this_cpu_write(wasm_native_current, call->prev);
	if (call->flags & WASM_SHIM_NATIVE_FPU)
		kernel_fpu_end();
	else
		preempt_enable();
}

/* Called by wasm_native_enter() only; global so that its asm can call it. */
void wasm_native_run(struct wasm_shim_native_call *call);
void wasm_native_run(struct wasm_shim_native_call *call)
{
	if (call->entry)
		call->entry(call->inst, call->lanes);
	else
		call->init(call->inst);
}

/*
 * Calls wasm_native_run(call) after saving %rsp in call->sp. Returns 0, or 1
 * when wasm_native_trap() unwound the call: it resumes at
 * wasm_native_trapped with that %rsp. As in wasm_call_on_stack(), every
 * register the compiler could keep across the asm is a clobber and %rbp is
 * pushed, so nothing live is lost either way. Never inline or clone it.
 */
static noinline __noclone int wasm_native_enter(struct wasm_shim_native_call *call)
{
	int trapped;

	asm volatile("pushq	%%rbp\n"
		     "movq	%%rsp, %c[sp](%%rdi)\n"
		     "call	wasm_native_run\n"
		     "xorl	%%eax, %%eax\n"
		     "jmp	1f\n"
		     ".globl	wasm_native_trapped\n"
		     "wasm_native_trapped:\n"
		     "movl	$1, %%eax\n"
		     "1:	popq	%%rbp\n"
		     : "=a" (trapped), "+D" (call), ASM_CALL_CONSTRAINT
		     : [sp] "i" (offsetof(struct wasm_shim_native_call, sp))
		     : "cc", "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10",
		       "r11", "r12", "r13", "r14", "r15", "memory");
	return trapped;
}
STACK_FRAME_NON_STANDARD(wasm_native_enter);

void wasm_native_trap(int code)
{
	struct wasm_shim_native_call *call = this_cpu_read(wasm_native_current);

	call->trap = code;
	asm volatile("movq	%0, %%rsp\n"
		     "jmp	wasm_native_trapped\n"
		     : : "r" (call->sp) : "memory");
	unreachable();
}
EXPORT_SYMBOL_GPL(wasm_native_trap);
STACK_FRAME_NON_STANDARD(wasm_native_trap);

/*
 * The code's fuel counter went negative: refills it from what is left of the
 * call's fuel, a slice at a time. Between slices a call that may sleep ends
 * its section, reschedules and stops if its task is being killed.
 */
void wasm_native_refuel(void)
{
	struct wasm_shim_native_call *call = this_cpu_read(wasm_native_current);
	struct wasm_native_instance *inst = call->inst;
	u64 slice;

	if (call->flags & WASM_SHIM_NATIVE_MAY_SLEEP) {
		bool go_on;

		wasm_native_section_end(call);
		go_on = wasm_shim_between_slices();
		wasm_native_section_begin(call);
		if (!go_on)
			wasm_native_trap(WASM_NATIVE_TRAP_KILLED);
	}
	while (inst->fuel < 0) {
		if (!call->fuel_left) {
			inst->fuel = 0;
			wasm_native_trap(WASM_NATIVE_TRAP_FUEL);
		}
		slice = min(call->fuel_left, WASM_NATIVE_SLICE);
		call->fuel_left -= slice;
		inst->fuel += slice;
	}
}
EXPORT_SYMBOL_GPL(wasm_native_refuel);

/* A host function; a failing one traps once its Rust frames are gone. */
void wasm_native_import(u32 index, u64 *lanes)
{
	struct wasm_shim_native_call *call = this_cpu_read(wasm_native_current);
	bool sleep = call->flags & WASM_SHIM_NATIVE_MAY_SLEEP;
	int trap;

	if (sleep)
		wasm_native_section_end(call);
	trap = wasm_rs_native_import(call->owner, call->inst, call->cpu, index,
				     lanes);
	if (sleep)
		wasm_native_section_begin(call);
	if (trap)
		wasm_native_trap(trap);
}
EXPORT_SYMBOL_GPL(wasm_native_import);

/* Memories and tables grow only where allocating may sleep. */
int wasm_native_resize(void **data, u64 old, u64 new, bool memory)
{
	struct wasm_shim_native_call *call = this_cpu_read(wasm_native_current);
	int ret;

	if (!(call->flags & WASM_SHIM_NATIVE_MAY_SLEEP))
		return new > old ? -EAGAIN : 0;
	wasm_native_section_end(call);
	ret = wasm_rs_native_resize(call->owner, data, old, new, memory);
	wasm_native_section_begin(call);
	return ret;
}
EXPORT_SYMBOL_GPL(wasm_native_resize);

/*
 * Runs call->entry(call->inst, call->lanes), or without an entry
 * call->init(call->inst), with call->fuel. Returns 0 or
 * the trap code, with the fuel used in call->fuel_used, or -EBUSY when the
 * FPU cannot be used here (an interrupt that came during FPU use).
 */
int wasm_shim_native_call(struct wasm_shim_native_call *call)
{
	struct wasm_native_instance *inst = call->inst;
	u64 fuel = call->fuel, slice = min(fuel, WASM_NATIVE_SLICE);
	unsigned long sp = current_stack_pointer;
	unsigned long floor;

	/* irq_fpu_usable() itself warns in NMI context. */
	if ((call->flags & WASM_SHIM_NATIVE_FPU) &&
	    (in_nmi() || !irq_fpu_usable()))
		return -EBUSY;
	if (call->flags & WASM_SHIM_NATIVE_MAY_SLEEP) {
		floor = sp - WASM_NATIVE_STACK_REQUEST;
	} else {
		floor = sp - WASM_NATIVE_STACK_BPF;
		/* On the task stack, keep clear of its end too. */
		if (object_is_on_stack((void *)sp))
			floor = max(floor, (unsigned long)task_stack_page(current) +
				    WASM_NATIVE_STACK_MARGIN);
	}
	call->trap = 0;
	call->fuel_left = fuel - slice;
	inst->fuel = slice;
	inst->stack_floor = floor;
	wasm_native_section_begin(call);
	wasm_native_enter(call);
	wasm_native_section_end(call);
	call->fuel_used = fuel - call->fuel_left - max(inst->fuel, 0LL);
	return call->trap;
}

int wasm_native_register(const struct wasm_native_module *mod)
{
	if (mod->abi != WASM_NATIVE_ABI) {
		pr_err("wasm: %s was compiled for native ABI %u, this wasm.ko speaks %u: compile it again\n",
		       mod->name, mod->abi, WASM_NATIVE_ABI);
		return -EPROTO;
	}
	return wasm_rs_native_register(mod);
}
EXPORT_SYMBOL_GPL(wasm_native_register);

void wasm_native_unregister(const struct wasm_native_module *mod)
{
	wasm_rs_native_unregister(mod);
}
EXPORT_SYMBOL_GPL(wasm_native_unregister);

bool wasm_shim_module_get(struct module *owner)
{
	return try_module_get(owner);
}

void wasm_shim_module_put(struct module *owner)
{
	module_put(owner);
}
