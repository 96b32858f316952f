/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The runtime of wasm-rt.h, included by native.c after the generated code.
 * native.c defines WASM_NATIVE_FUNC_TYPES (the module's function types) and
 * WASM_NATIVE_TYPE_LANES (their parameters and results together).
 */
#ifndef WASM_RT_IMPL_H_
#define WASM_RT_IMPL_H_

#include <linux/minmax.h>
#include <linux/stdarg.h>

#define WASM_NATIVE_PAGE 65536ULL

static bool wasm_rt_is_initialized(void)
{
	return true;
}

/*
 * wasm_native_trap() does not return. objtool cannot know that of a function
 * in another module, so it is not declared __noreturn: the BUG() after it
 * (never reached) is the dead end objtool looks for. Out of line, so that the
 * code paths that trap stay small.
 */
static noinline void wasm_rt_trap(wasm_rt_trap_t trap)
{
	wasm_native_trap(trap);
	BUG();
}

/*
 * Function types, for call_indirect's check: structurally equal types get
 * the same number (from 1: 0 is a null reference's).
 */
static struct {
	u32 count;
	u32 start[WASM_NATIVE_FUNC_TYPES];
	u32 params[WASM_NATIVE_FUNC_TYPES];
	u32 results[WASM_NATIVE_FUNC_TYPES];
	u8 lanes[WASM_NATIVE_TYPE_LANES + 1];
} wasm_native_types;

static u32 wasm_rt_register_func_type(u32 params, u32 results, ...)
{
	u32 n = wasm_native_types.count, start = 0, i;
	u8 *lanes;
	va_list ap;

	if (n)
		start = wasm_native_types.start[n - 1] +
			wasm_native_types.params[n - 1] +
			wasm_native_types.results[n - 1];
	/* native.c counted the types: more means a bug in the compiler. */
	if (WARN_ON_ONCE(n == WASM_NATIVE_FUNC_TYPES ||
			 start + params + results > WASM_NATIVE_TYPE_LANES))
		return 0;
	lanes = wasm_native_types.lanes + start;
	va_start(ap, results);
	for (i = 0; i < params + results; i++)
		lanes[i] = va_arg(ap, int);
	va_end(ap);
	for (i = 0; i < n; i++)
		if (wasm_native_types.params[i] == params &&
		    wasm_native_types.results[i] == results &&
		    !memcmp(wasm_native_types.lanes + wasm_native_types.start[i],
			    lanes, params + results))
			return i + 1;
	wasm_native_types.start[n] = start;
	wasm_native_types.params[n] = params;
	wasm_native_types.results[n] = results;
	wasm_native_types.count = n + 1;
	return n + 1;
}

static u32 wasm_rt_grow_memory(wasm_rt_memory_t *mem, u32 delta)
{
	u64 pages = (u64)mem->pages + delta;
	void *data = mem->data;
	u32 old = mem->pages;

	if (pages > mem->max_pages)
		return U32_MAX;
	if (delta && wasm_native_resize(&data, mem->size,
					pages * WASM_NATIVE_PAGE, true))
		return U32_MAX;
	mem->data = data;
	mem->pages = pages;
	mem->size = pages * WASM_NATIVE_PAGE;
	return old;
}

static void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, u32 initial_pages,
				    u32 max_pages)
{
	mem->data = NULL;
	mem->size = 0;
	mem->pages = 0;
	mem->max_pages = max_pages;
	if (wasm_rt_grow_memory(mem, initial_pages) == U32_MAX)
		wasm_rt_trap(WASM_NATIVE_TRAP_NOMEM);
}

static void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
	void *data = mem->data;

	wasm_native_resize(&data, mem->size, 0, true);
	mem->data = NULL;
	mem->size = 0;
	mem->pages = 0;
}

/* Tables of either kind: grows *data from *size to *size + delta elements. */
static bool wasm_native_grow_table(void **data, u32 *size, u32 max, u32 delta,
				   size_t elem)
{
	u64 n = (u64)*size + delta;

	if (n > min_t(u32, max, WASM_NATIVE_MAX_TABLE))
		return false;
	if (delta && wasm_native_resize(data, (u64)*size * elem, n * elem,
					false))
		return false;
	*size = n;
	return true;
}

#define WASM_NATIVE_DEFINE_TABLE(type)					\
static u32 wasm_rt_grow_##type##_table(wasm_rt_##type##_table_t *table,	\
				       u32 delta, wasm_rt_##type##_t init) \
{									\
	u32 old = table->size, i;					\
	void *data = table->data;					\
									\
	if (!wasm_native_grow_table(&data, &table->size,		\
				    table->max_size, delta,		\
				    sizeof(*table->data)))		\
		return U32_MAX;						\
	table->data = data;						\
	for (i = old; i < table->size; i++)				\
		table->data[i] = init;					\
	return old;							\
}									\
									\
static void wasm_rt_allocate_##type##_table(wasm_rt_##type##_table_t *table, \
					    u32 elements, u32 max_elements) \
{									\
	table->data = NULL;						\
	table->size = 0;						\
	table->max_size = max_elements;					\
	if (wasm_rt_grow_##type##_table(table, elements,		\
					wasm_rt_##type##_null_value) == U32_MAX) \
		wasm_rt_trap(WASM_NATIVE_TRAP_NOMEM);		\
}									\
									\
static void wasm_rt_free_##type##_table(wasm_rt_##type##_table_t *table)	\
{									\
	void *data = table->data;					\
									\
	wasm_native_resize(&data, (u64)table->size * sizeof(*table->data), \
			   0, false);					\
	table->data = NULL;						\
	table->size = 0;						\
}

WASM_NATIVE_DEFINE_TABLE(funcref)
WASM_NATIVE_DEFINE_TABLE(externref)

/* Lanes of wasm_native_entry_t and wasm_native_import(). */
static inline u64 wasm_native_lane_f32(f32 x)
{
	u32 bits;

	memcpy(&bits, &x, sizeof(bits));
	return bits;
}

static inline u64 wasm_native_lane_f64(f64 x)
{
	u64 bits;

	memcpy(&bits, &x, sizeof(bits));
	return bits;
}

static inline f32 wasm_native_f32(u64 lane)
{
	u32 bits = lane;
	f32 x;

	memcpy(&x, &bits, sizeof(x));
	return x;
}

static inline f64 wasm_native_f64(u64 lane)
{
	f64 x;

	memcpy(&x, &lane, sizeof(x));
	return x;
}

#endif /* WASM_RT_IMPL_H_ */
