/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The contract between wasm.ko and a native module: a Wasm module compiled
 * ahead of time (`wasmctl compile`) into a kernel module of its own.
 *
 * At init the native module describes itself in a struct wasm_native_module
 * and calls wasm_native_register(); wasm.ko checks the ABI version, the
 * imports and the limits, creates one instance per CPU and publishes the
 * module under its name, where /dev/wasm and the kfuncs find it as they find
 * an interpreted one. At exit it calls wasm_native_unregister(), which returns
 * once no call runs in its code any more.
 *
 * The generated code reaches wasm.ko only through the functions declared
 * below (its runtime, kmod/native/wasm-rt.h in the compiler's runtime), and
 * only while wasm.ko runs it: inside a call or an instantiation, with
 * preemption off until the slice ends (wasm_native_refuel()).
 */
#ifndef WASM_NATIVE_H
#define WASM_NATIVE_H

#include <linux/types.h>

/* Bumped on every change of this file's structures or functions. */
#define WASM_NATIVE_ABI 1

struct module;

/* A linear memory (wasm2c's wasm_rt_memory_t). */
struct wasm_native_memory {
	u8 *data;
	u64 size;		/* bytes */
	u32 pages;		/* of 64 KiB */
	u32 max_pages;		/* the module's maximum, capped by the limit */
};

/*
 * The head of every instance: the generated module's state follows it in
 * memory (instance_size bytes in all, zeroed by wasm.ko).
 */
struct wasm_native_instance {
	/*
	 * The Wasm global wasm_native.fuel: fuel left in the current slice.
	 * The code subtracts what it is about to run and calls
	 * wasm_native_refuel() when the result is negative.
	 */
	s64 fuel;
	/* Lowest stack address a Wasm function's frame may start below. */
	unsigned long stack_floor;
	/* The instance's memory 0, once it has one. */
	struct wasm_native_memory *memory;
};

/*
 * Calls an export: arguments in lanes[0..params), results written back to
 * lanes[0..results). i32 travels in the low half (results sign-extended),
 * floats as their bits.
 */
typedef void (*wasm_native_entry_t)(struct wasm_native_instance *inst,
				    u64 *lanes);

/* Value types in signatures, one letter each: i32 i64 f32 f64. */
#define WASM_NATIVE_I32 'i'
#define WASM_NATIVE_I64 'I'
#define WASM_NATIVE_F32 'f'
#define WASM_NATIVE_F64 'F'

/* An exported or imported function. */
struct wasm_native_func {
	const char *module;	/* import module; NULL for exports */
	const char *name;
	const char *params;	/* one letter per parameter, as above */
	const char *results;
	wasm_native_entry_t entry;	/* exports only */
};

/* A native module, as its init function registers it. */
struct wasm_native_module {
	u32 abi;		/* WASM_NATIVE_ABI */
	u32 flags;		/* WASM_NATIVE_* below */
	const char *name;	/* registry name */
	struct module *owner;	/* THIS_MODULE */
	u64 wasm_size;		/* bytes of the Wasm module compiled */
	size_t instance_size;	/* bytes of an instance, head included */
	/*
	 * Instantiates: memories, tables, data and element segments, then
	 * the start function. Runs like a call (traps and fuel included).
	 */
	void (*instantiate)(struct wasm_native_instance *inst);
	/* Frees what instantiate allocated (after a trap in it too). */
	void (*release)(struct wasm_native_instance *inst);
	const struct wasm_native_func *exports;
	u32 nr_exports;
	const struct wasm_native_func *imports;
	u32 nr_imports;
	/*
	 * Limits, from the module's parameters (fuel, bpf_fuel, memory,
	 * instances); 0 takes wasm.ko's default, as in a load request.
	 */
	u32 instances;
	u64 fuel;
	u64 bpf_fuel;
	u64 memory;
};

/* The code uses floating point: calls run inside kernel_fpu_begin/end. */
#define WASM_NATIVE_FPU 0x1

int wasm_native_register(const struct wasm_native_module *mod);
void wasm_native_unregister(const struct wasm_native_module *mod);

/*
 * Trap codes: 1 to 8 are wasm2c's (wasm_rt_trap_t: out of bounds, integer
 * overflow, division by zero, invalid conversion, unreachable, indirect call,
 * uncaught exception, stack exhausted); wasm.ko adds its own.
 */
#define WASM_NATIVE_TRAP_NOMEM 0x100	/* a memory or table could not grow */
#define WASM_NATIVE_TRAP_FUEL 0x101	/* the call used up its fuel */
#define WASM_NATIVE_TRAP_KILLED 0x102	/* the caller has a fatal signal */
#define WASM_NATIVE_TRAP_EXIT 0x103	/* the program called WASI proc_exit */

/* Most elements of a table (the interpreter's MAX_TABLE_ELEMENTS). */
#define WASM_NATIVE_MAX_TABLE 100000

/*
 * The runtime of the generated code. wasm_native_trap() never returns: it
 * unwinds to the call's entry in wasm.ko (not declared __noreturn, for
 * objtool: see the runtime's wasm_rt_trap()).
 */
void wasm_native_trap(int code);
void wasm_native_refuel(void);
void wasm_native_import(u32 index, u64 *lanes);
/*
 * Linear memory and tables: (re)allocates *data from old to new bytes,
 * zeroing the new part, within the instance's memory limit. Returns 0 or a
 * negative errno (*data unchanged); new == 0 frees.
 */
int wasm_native_resize(void **data, u64 old, u64 new, bool memory);

#endif /* WASM_NATIVE_H */
