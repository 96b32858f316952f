/* SPDX-License-Identifier: GPL-2.0 */
/*
 * wasm2c's runtime interface, for code that runs in the kernel under wasm.ko.
 *
 * wasm2c (wabt 1.0.32) emits C that includes "wasm-rt.h" and calls the
 * functions declared here; this header replaces wabt's own, which builds on
 * libc, signals and setjmp. Here:
 *  - every memory access is bounds-checked in the code (no guard pages);
 *  - a trap is wasm_native_trap() in wasm.ko, which unwinds to the call's
 *    entry (see kmod/wasm_native.c);
 *  - the "call depth" wasm2c checks in every function's prologue is a check
 *    of the stack pointer against the floor wasm.ko set for the call;
 *  - memories and tables are allocated by wasm.ko, within the load's limits;
 *  - everything is static: the implementations are in wasm-rt-impl.h, in the
 *    same translation unit as the generated code (native.c).
 */
#ifndef WASM_RT_H_
#define WASM_RT_H_

#include <linux/compiler.h>
#include <asm/asm.h>
#include <linux/string.h>
#include <linux/types.h>
#include "wasm_native.h"

#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 0
#define WABT_BIG_ENDIAN 0
#define WASM_RT_NO_RETURN __noreturn
#define LIKELY(x) likely(x)
#define UNLIKELY(x) unlikely(x)
#define wasm_rt_memcpy __builtin_memcpy

/*
 * wasm2c's prologue is
 *	if (++wasm_rt_call_stack_depth > WASM_RT_MAX_CALL_STACK_DEPTH)
 *		TRAP(EXHAUSTION);
 * with the epilogue --wasm_rt_call_stack_depth. The kernel bounds bytes of
 * stack, not frames, so the "depth" is a fresh temporary each time: -1, or 0
 * once the stack pointer, past this function's whole frame, lies below the
 * floor; the increment makes the test true exactly then, and the epilogue's
 * decrement is dead code. Every generated function has its instance in scope
 * as `instance`; WASM_NATIVE_HEAD() (native.c) finds the head wasm.ko fills
 * in.
 */
#define WASM_RT_USE_STACK_DEPTH_COUNT 1
#define WASM_RT_MAX_CALL_STACK_DEPTH 0
#define wasm_rt_call_stack_depth \
	(*(long[1]){ wasm_native_below_floor(WASM_NATIVE_HEAD(instance)) - 1L })

static __always_inline long
wasm_native_below_floor(const struct wasm_native_instance *head)
{
	return current_stack_pointer < head->stack_floor;
}

typedef enum {
	WASM_RT_TRAP_NONE,
	WASM_RT_TRAP_OOB,
	WASM_RT_TRAP_INT_OVERFLOW,
	WASM_RT_TRAP_DIV_BY_ZERO,
	WASM_RT_TRAP_INVALID_CONVERSION,
	WASM_RT_TRAP_UNREACHABLE,
	WASM_RT_TRAP_CALL_INDIRECT,
	WASM_RT_TRAP_UNCAUGHT_EXCEPTION,
	WASM_RT_TRAP_EXHAUSTION,
} wasm_rt_trap_t;

typedef enum {
	WASM_RT_I32,
	WASM_RT_I64,
	WASM_RT_F32,
	WASM_RT_F64,
	WASM_RT_FUNCREF,
	WASM_RT_EXTERNREF,
} wasm_rt_type_t;

typedef void (*wasm_rt_function_ptr_t)(void);

typedef struct {
	u32 func_type;
	wasm_rt_function_ptr_t func;
	void *module_instance;
} wasm_rt_funcref_t;

static const wasm_rt_funcref_t wasm_rt_funcref_null_value = { 0, NULL, NULL };

typedef void *wasm_rt_externref_t;

static const wasm_rt_externref_t wasm_rt_externref_null_value;

typedef struct wasm_native_memory wasm_rt_memory_t;

typedef struct {
	wasm_rt_funcref_t *data;
	u32 max_size;
	u32 size;
} wasm_rt_funcref_table_t;

typedef struct {
	wasm_rt_externref_t *data;
	u32 max_size;
	u32 size;
} wasm_rt_externref_table_t;

static bool wasm_rt_is_initialized(void);
static WASM_RT_NO_RETURN void wasm_rt_trap(wasm_rt_trap_t trap);
static u32 wasm_rt_register_func_type(u32 params, u32 results, ...);
static void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, u32 initial_pages,
				    u32 max_pages);
static u32 wasm_rt_grow_memory(wasm_rt_memory_t *mem, u32 delta);
static void wasm_rt_free_memory(wasm_rt_memory_t *mem);
static void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *table,
					   u32 elements, u32 max_elements);
static void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *table);
static u32 wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *table,
				      u32 delta, wasm_rt_funcref_t init);
static void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *table,
					     u32 elements, u32 max_elements);
static void wasm_rt_free_externref_table(wasm_rt_externref_table_t *table);
static u32 wasm_rt_grow_externref_table(wasm_rt_externref_table_t *table,
					u32 delta, wasm_rt_externref_t init);

#endif /* WASM_RT_H_ */
