// SPDX-License-Identifier: GPL-2.0
/*
 * wasm.ko: WebAssembly in the kernel. This C shim does only what must be C:
 * module init/exit, the /dev/wasm misc device, and thin wrappers around
 * kernel facilities for the Rust half (wasm_rs_* in rust/src/lib.rs).
 * Log lines come from Rust whole: it adds the "wasm: " prefix itself, so
 * that guest output can be logged verbatim, as the original module did.
 */
#include <linux/capability.h>
#include <linux/hardirq.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/objtool.h>
#include <linux/rcupdate.h>
#include <linux/printk.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task_stack.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/math64.h>
#include <asm/asm.h>
#include <asm/tsc.h>

#include "wasm_shim.h"

static DEFINE_MUTEX(wasm_registry_lock);

static unsigned int memory_cap_mb = 256;
module_param(memory_cap_mb, uint, 0444);
MODULE_PARM_DESC(memory_cap_mb, "Linear memory all Wasm instances may hold together, in MiB");

static bool require_signature;
module_param(require_signature, bool, 0444);
MODULE_PARM_DESC(require_signature, "Refuse guests without a signature from a trusted key");

static char *trusted_keys = "";
module_param(trusted_keys, charp, 0444);
MODULE_PARM_DESC(trusted_keys, "ed25519 public keys (64 hex digits each, comma-separated) whose guest signatures are accepted");

/* Stack measurement: the unused part of the task stack is painted, and the
 * deepest overwritten word tells the peak use. The lowest words, holding
 * the stack-end magic, are left alone.
 */
#define WASM_STACK_PAINT 0x57a5c0de57a5c0deUL
#define WASM_STACK_SKIP 8
#define WASM_STACK_MARGIN 64

/* wasmi's parser and compiler have frames of several KiB each, nested: a
 * request runs on its own vmalloc'd stack, as the kernel runs interrupts on
 * theirs, so the task stack keeps its headroom.
 */
#define WASM_WORK_STACK_SIZE (64 * 1024)
#define WASM_WORK_STACK_WORDS (WASM_WORK_STACK_SIZE / sizeof(unsigned long))

void *wasm_shim_alloc(size_t size)
{
	/* Nothing is safe to allocate from in NMI context. */
	if (in_nmi())
		return NULL;
	if (wasm_shim_atomic_context())
		return kmalloc(size, GFP_ATOMIC | __GFP_NOWARN);
	/*
	 * Charged to the caller's memory cgroup; over its limit the request
	 * fails with -ENOMEM instead of invoking the cgroup's OOM killer.
	 */
	return kvmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
			__GFP_NOWARN);
}

void wasm_shim_free(void *ptr)
{
	kvfree(ptr);
}

void wasm_shim_log(const char *msg, size_t len)
{
	pr_info("%.*s\n", (int)len, msg);
}

unsigned int wasm_shim_possible_cpus(void)
{
	return nr_cpu_ids;
}

unsigned int wasm_shim_this_cpu(void)
{
	return raw_smp_processor_id();
}

bool wasm_shim_between_slices(void)
{
	cond_resched();
	return !fatal_signal_pending(current);
}

u64 wasm_shim_now_ns(void)
{
	return ktime_get_ns();
}

/*
 * For call latencies, on the eBPF path too, Rust reads the TSC and scales
 * it to nanoseconds: (tsc * mult) >> WASM_SHIM_CLOCK_SHIFT, a few
 * instructions where reading the clocksource through ktime_get_ns() takes
 * about a hundred. 0 (use ktime_get_ns()) when the TSC was not calibrated.
 */
u32 wasm_shim_clock_mult(void)
{
	if (tsc_khz < 1000)
		return 0;
	return div_u64(NSEC_PER_MSEC << WASM_SHIM_CLOCK_SHIFT, tsc_khz);
}

u64 wasm_shim_realtime_ns(void)
{
	return ktime_get_real_ns();
}

void wasm_shim_random_bytes(void *buf, size_t len)
{
	get_random_bytes(buf, len);
}

void wasm_shim_rcu_read_lock(void)
{
	rcu_read_lock();
}

void wasm_shim_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

void wasm_shim_synchronize_rcu(void)
{
	synchronize_rcu();
}

void wasm_shim_registry_lock(void)
{
	mutex_lock(&wasm_registry_lock);
}

void wasm_shim_registry_unlock(void)
{
	mutex_unlock(&wasm_registry_lock);
}

unsigned long wasm_shim_copy_from_user(void *to, const void __user *from,
				       unsigned long n)
{
	return copy_from_user(to, from, n);
}

unsigned long wasm_shim_copy_to_user(void __user *to, const void *from,
				     unsigned long n)
{
	return copy_to_user(to, from, n);
}

void wasm_shim_stack_paint(void)
{
	unsigned long *p = (unsigned long *)task_stack_page(current);
	unsigned long *end = (unsigned long *)__builtin_frame_address(0);

	end -= WASM_STACK_MARGIN;
	for (p += WASM_STACK_SKIP; p < end; p++)
		*p = WASM_STACK_PAINT;
}

size_t wasm_shim_stack_peak(void)
{
	unsigned long *base = (unsigned long *)task_stack_page(current);
	unsigned long *p = base + WASM_STACK_SKIP;
	unsigned long *top = (unsigned long *)((char *)base + THREAD_SIZE);

	while (p < top && *p == WASM_STACK_PAINT)
		p++;
	return (char *)top - (char *)p;
}

size_t wasm_shim_stack_size(void)
{
	return THREAD_SIZE;
}

/*
 * A Rust panic cannot unwind (panic=abort) and has no way back: end the task
 * as BUG() does, like Rust-for-Linux's own panic handler.
 */
void __noreturn wasm_shim_bug(void)
{
	BUG();
}

/*
 * Calls wasm_rs_on_work_stack(job, tos) with %rsp at tos, as call_on_stack()
 * of <asm/irq_stack.h> does for interrupts: the %rsp to return to is saved in
 * the top slot and popped back after the call. Returns 0, or 1 when
 * wasm_shim_abandon() ended the call early: it resumes at
 * wasm_work_stack_abandoned with that %rsp. Every register the compiler could
 * keep across the asm is a clobber, and %rbp is pushed, so nothing live is
 * lost either way. The label is global: never inline or clone this function.
 */
static noinline __noclone int wasm_call_on_stack(unsigned long *tos, void *job)
{
	int abandoned;

	asm volatile("pushq	%%rbp\n"
		     "movq	%%rsp, (%%rsi)\n"
		     "movq	%%rsi, %%rsp\n"
		     "call	wasm_rs_on_work_stack\n"
		     "popq	%%rsp\n"
		     "xorl	%%eax, %%eax\n"
		     "jmp	1f\n"
		     ".globl	wasm_work_stack_abandoned\n"
		     "wasm_work_stack_abandoned:\n"
		     "movl	$1, %%eax\n"
		     "1:	popq	%%rbp\n"
		     : "=a" (abandoned), "+S" (tos), "+D" (job),
		       ASM_CALL_CONSTRAINT
		     :
		     : "cc", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11",
		       "r12", "r13", "r14", "r15", "memory");
	return abandoned;
}
STACK_FRAME_NON_STANDARD(wasm_call_on_stack);

/*
 * Ends the work running on the dedicated stack whose top slot is tos: the
 * pending wasm_call_on_stack() returns 1. Called by Rust's panic handler, on
 * that stack; nothing of the work's frames runs again.
 */
void __noreturn wasm_shim_abandon(unsigned long *tos)
{
	asm volatile("movq	(%0), %%rsp\n"
		     "jmp	wasm_work_stack_abandoned\n"
		     : : "r" (tos) : "memory");
	unreachable();
}
STACK_FRAME_NON_STANDARD(wasm_shim_abandon);

/*
 * Runs wasm_rs_on_work_stack(job, tos) on a fresh stack and reports how deep
 * it went. Returns 0, 1 if the work was abandoned, or -ENOMEM.
 */
int wasm_shim_on_work_stack(void *job, size_t *peak)
{
	unsigned long *stack = vmalloc(WASM_WORK_STACK_SIZE);
	unsigned long *end, *p;
	int abandoned;

	if (!stack)
		return -ENOMEM;
	end = stack + WASM_STACK_SKIP;
	for (p = end; p < stack + WASM_WORK_STACK_WORDS; p++)
		*p = WASM_STACK_PAINT;
	/* The top slot, 16-byte aligned, keeps the task's %rsp. */
	p = stack + WASM_WORK_STACK_WORDS - 2;
	abandoned = wasm_call_on_stack(p, job);
	for (p = end; p < stack + WASM_WORK_STACK_WORDS; p++)
		if (*p != WASM_STACK_PAINT)
			break;
	*peak = (char *)(stack + WASM_WORK_STACK_WORDS) - (char *)p;
	vfree(stack);
	return abandoned;
}

void *wasm_shim_current(void)
{
	return current;
}

/*
 * Allocation-failure injection: writing N to the fail_alloc parameter fails
 * the Nth allocation of the Rust half from then on (counting every context);
 * the parameter reads 0 once it has.
 */
static unsigned long fail_alloc;
module_param(fail_alloc, ulong, 0600);
MODULE_PARM_DESC(fail_alloc, "Fail the Nth allocation from now (testing; 0: off)");

bool wasm_shim_inject_alloc_failure(void)
{
	unsigned long n = READ_ONCE(fail_alloc);

	while (n) {
		unsigned long old = cmpxchg(&fail_alloc, n, n - 1);

		if (old == n)
			return n == 1;
		n = old;
	}
	return false;
}

size_t wasm_shim_work_stack_size(void)
{
	return WASM_WORK_STACK_SIZE;
}

static int wasm_open(struct inode *inode, struct file *file)
{
	void *session;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	session = wasm_rs_open();
	if (!session)
		return -ENOMEM;
	file->private_data = session;
	return 0;
}

static int wasm_release(struct inode *inode, struct file *file)
{
	wasm_rs_release(file->private_data);
	return 0;
}

static ssize_t wasm_write(struct file *file, const char __user *buf,
			  size_t len, loff_t *off)
{
	return wasm_rs_write(file->private_data, (void __user *)buf, len);
}

static ssize_t wasm_read(struct file *file, char __user *buf, size_t len,
			 loff_t *off)
{
	return wasm_rs_read(file->private_data, buf, len);
}

static const struct file_operations wasm_fops = {
	.owner = THIS_MODULE,
	.open = wasm_open,
	.release = wasm_release,
	.read = wasm_read,
	.write = wasm_write,
	.llseek = noop_llseek,
};

static struct miscdevice wasm_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "wasm",
	.fops = &wasm_fops,
	.mode = 0600,
};

static int __init wasm_init(void)
{
	int ret;

	/* Without kfuncs /dev/wasm still works: the Rust side reports why. */
	ret = wasm_rs_init((u64)memory_cap_mb << 20,
			       wasm_kfuncs_register(), require_signature,
			       trusted_keys);
	if (ret)
		return ret;
	ret = misc_register(&wasm_dev);
	if (ret)
		wasm_rs_exit();
	return ret;
}

static void __exit wasm_exit(void)
{
	misc_deregister(&wasm_dev);
	wasm_rs_exit();
}

module_init(wasm_init);
module_exit(wasm_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("wasm-kernel-module developers");
MODULE_DESCRIPTION("WebAssembly runtime in the kernel, callable from eBPF");
