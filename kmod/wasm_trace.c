// SPDX-License-Identifier: GPL-2.0
/*
 * The tracepoints of wasm_trace.h, fired by the Rust half. Names come
 * NUL-terminated; each call is a static branch while its event is off.
 */
#include <linux/string.h>

#define CREATE_TRACE_POINTS
#include "wasm_trace.h"

#include "wasm_shim.h"

void wasm_shim_trace_load(const char *name, u32 version, u32 instances)
{
	trace_wasm_load(name, version, instances);
}

void wasm_shim_trace_unload(const char *name)
{
	trace_wasm_unload(name);
}

void wasm_shim_trace_call_failed(const char *name, u32 cpu, bool bpf, int err,
				 u64 fuel, bool out_of_fuel)
{
	if (out_of_fuel)
		trace_wasm_fuel_exhausted(name, cpu, bpf, err, fuel);
	else
		trace_wasm_trap(name, cpu, bpf, err, fuel);
}
