/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between the C shim (wasm_main.c) and the Rust half of
 * wasm.ko (rust/src). Rust declares the same functions in rust/src/ffi.rs
 * (wasm_shim_*) and rust/src/lib.rs (wasm_rs_*).
 */
#ifndef WASM_SHIM_H
#define WASM_SHIM_H

#include <linux/compiler.h>
#include <linux/types.h>

/* Implemented in Rust, called by the shim. */
int wasm_rs_init(u64 memory_cap, int kfuncs, bool require_signature,
		 const char *trusted_keys);
void wasm_rs_exit(void);
void *wasm_rs_open(void);
void wasm_rs_release(void *session);
ssize_t wasm_rs_write(void *session, void __user *buf, size_t len);
ssize_t wasm_rs_read(void *session, void __user *buf, size_t len);
void wasm_rs_on_work_stack(void *job, unsigned long *tos);
s64 wasm_rs_bpf_lookup(const char *module, u32 module_len,
		       const char *function, u32 function_len);
int wasm_rs_bpf_call(s64 handle, const void *args, u32 args_len,
		     void *results, u32 results_len);
int wasm_rs_bpf_call_buf(s64 handle, void *buf, u32 len, s64 *result);

/* Implemented by the shim, called from Rust. */
void *wasm_shim_alloc(size_t size);
void wasm_shim_free(void *ptr);
void wasm_shim_log(const char *msg, size_t len);
unsigned int wasm_shim_possible_cpus(void);
unsigned int wasm_shim_this_cpu(void);
bool wasm_shim_between_slices(void);
u64 wasm_shim_now_ns(void);
#define WASM_SHIM_CLOCK_SHIFT 22
u32 wasm_shim_clock_mult(void);
u64 wasm_shim_realtime_ns(void);
void wasm_shim_random_bytes(void *buf, size_t len);
void wasm_shim_registry_lock(void);
void wasm_shim_registry_unlock(void);
unsigned long wasm_shim_copy_from_user(void *to, const void __user *from,
				       unsigned long n);
unsigned long wasm_shim_copy_to_user(void __user *to, const void *from,
				     unsigned long n);
void wasm_shim_stack_paint(void);
size_t wasm_shim_stack_peak(void);
size_t wasm_shim_stack_size(void);
void __noreturn wasm_shim_bug(void);
int wasm_shim_on_work_stack(void *job, size_t *peak);
void __noreturn wasm_shim_abandon(unsigned long *tos);
void *wasm_shim_current(void);
bool wasm_shim_inject_alloc_failure(void);
bool wasm_shim_request_context(void);
void wasm_shim_bpf_abandon(void);
size_t wasm_shim_work_stack_size(void);
bool wasm_shim_atomic_context(void);
void wasm_shim_rcu_read_lock(void);
void wasm_shim_rcu_read_unlock(void);
void wasm_shim_synchronize_rcu(void);
void wasm_shim_trace_load(const char *name, u32 version, u32 instances);
void wasm_shim_trace_unload(const char *name);
void wasm_shim_trace_call_failed(const char *name, u32 cpu, bool bpf, int err,
				 u64 fuel, bool out_of_fuel);

/* BPF maps for guests (wasm_maps.c, rust/src/maps.rs). */
struct wasm_shim_map {
	void *map;
	u32 id;
	u32 type;
	u32 key_size;
	u32 value_size;
};

int wasm_shim_map_get(int fd, struct wasm_shim_map *out);
void wasm_shim_map_put(void *map);
int wasm_shim_map_lookup(void *map, const void *key, void *value);
int wasm_shim_map_update(void *map, const void *key, const void *value,
			 u64 flags);
int wasm_shim_map_delete(void *map, const void *key);

/* The native tier (wasm_native.c, rust/src/native.rs). */
struct module;
struct wasm_native_instance;
struct wasm_native_module;

#define WASM_SHIM_NATIVE_FPU 0x1	/* inside kernel_fpu_begin/end */
#define WASM_SHIM_NATIVE_MAY_SLEEP 0x2	/* process context: slices end */

/* One call into native code; Rust fills in the first part. */
struct wasm_shim_native_call {
	void (*entry)(struct wasm_native_instance *inst, u64 *lanes);
	void (*init)(struct wasm_native_instance *inst);
	struct wasm_native_instance *inst;
	u64 *lanes;
	u64 fuel;
	const void *owner;	/* the Rust module, for host functions */
	u32 cpu;
	u32 flags;
	/* Results. */
	u64 fuel_used;
	int trap;
	/* The shim's own. */
	struct wasm_shim_native_call *prev;
	unsigned long sp;
	u64 fuel_left;
};

int wasm_shim_native_call(struct wasm_shim_native_call *call);
bool wasm_shim_module_get(struct module *owner);
void wasm_shim_module_put(struct module *owner);
int wasm_rs_native_register(const struct wasm_native_module *mod);
void wasm_rs_native_unregister(const struct wasm_native_module *mod);
int wasm_rs_native_import(const void *owner, struct wasm_native_instance *inst,
			  u32 cpu, u32 index, u64 *lanes);
int wasm_rs_native_resize(const void *owner, void **data, u64 old, u64 new,
			  bool memory);

/* kfuncs for BPF programs and their registration, in wasm_kfuncs.c. */
s64 bpf_wasm_lookup(const char *module, u32 module__sz,
		    const char *function, u32 function__sz);
s64 bpf_wasm_lookup_str(const char *module__str, const char *function__str);
int bpf_wasm_call(s64 handle, const void *args, u32 args__sz,
		  void *results, u32 results__sz);
int bpf_wasm_call_buf(s64 handle, void *buf, u32 buf__sz, s64 *result);

/*
 * wasm_kfuncs_register() returns 0 once eBPF programs can call the kfuncs, one
 * of these when the module's BTF does not allow it, or the registration's
 * negative errno.
 */
enum {
	WASM_KFUNCS_NO_BTF = 1,		/* the module has no .BTF */
	WASM_KFUNCS_UNRESOLVED = 2,	/* resolve_btfids did not run */
};

int wasm_kfuncs_register(void);

#endif /* WASM_SHIM_H */
