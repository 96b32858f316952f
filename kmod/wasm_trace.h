/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of wasm.ko (events/wasm/ in tracefs): modules loaded,
 * replaced and unloaded, calls that trapped or ran out of fuel. For
 * bpftrace, perf and trace-cmd; the Rust half fires them through
 * wasm_shim_trace_*() in wasm_trace.c.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM wasm

#if !defined(_WASM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _WASM_TRACE_H

#include <linux/tracepoint.h>

/* A registry name is at most 64 bytes. */
#define WASM_TRACE_NAME_LEN 65

TRACE_EVENT(wasm_load,
	TP_PROTO(const char *name, u32 version, u32 instances),
	TP_ARGS(name, version, instances),
	TP_STRUCT__entry(__array(char, name, WASM_TRACE_NAME_LEN)
			 __field(u32, version)
			 __field(u32, instances)),
	TP_fast_assign(strscpy(__entry->name, name, WASM_TRACE_NAME_LEN);
		       __entry->version = version;
		       __entry->instances = instances;),
	TP_printk("module=%s version=%u instances=%u", __entry->name,
		  __entry->version, __entry->instances)
);

TRACE_EVENT(wasm_unload,
	TP_PROTO(const char *name),
	TP_ARGS(name),
	TP_STRUCT__entry(__array(char, name, WASM_TRACE_NAME_LEN)),
	TP_fast_assign(strscpy(__entry->name, name, WASM_TRACE_NAME_LEN);),
	TP_printk("module=%s", __entry->name)
);

DECLARE_EVENT_CLASS(wasm_call_failed,
	TP_PROTO(const char *name, u32 cpu, bool bpf, int err, u64 fuel),
	TP_ARGS(name, cpu, bpf, err, fuel),
	TP_STRUCT__entry(__array(char, name, WASM_TRACE_NAME_LEN)
			 __field(u32, cpu)
			 __field(bool, bpf)
			 __field(int, err)
			 __field(u64, fuel)),
	TP_fast_assign(strscpy(__entry->name, name, WASM_TRACE_NAME_LEN);
		       __entry->cpu = cpu;
		       __entry->bpf = bpf;
		       __entry->err = err;
		       __entry->fuel = fuel;),
	TP_printk("module=%s cpu=%u caller=%s errno=%d fuel=%llu",
		  __entry->name, __entry->cpu,
		  __entry->bpf ? "bpf" : "user", __entry->err,
		  __entry->fuel)
);

DEFINE_EVENT(wasm_call_failed, wasm_trap,
	TP_PROTO(const char *name, u32 cpu, bool bpf, int err, u64 fuel),
	TP_ARGS(name, cpu, bpf, err, fuel)
);

DEFINE_EVENT(wasm_call_failed, wasm_fuel_exhausted,
	TP_PROTO(const char *name, u32 cpu, bool bpf, int err, u64 fuel),
	TP_ARGS(name, cpu, bpf, err, fuel)
);

#endif /* _WASM_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE wasm_trace
#include <trace/define_trace.h>
