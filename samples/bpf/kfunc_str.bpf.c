// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_wasm_lookup_str with constant names (6.12): resolves probe.inc and
 * calls it with the first argument of the context (struct wasm_call_ctx of
 * kfunc_test.bpf.c; only the fields used here are declared).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "wasm_bpf.h"

struct wasm_call_ctx {
	char names[64];
	__u64 args[8];
	__u32 args_len;
	__u32 buf_len;
	__u8 buf[128];
	__s64 handle;
	__s64 ret;
	__u64 results[4];
};

SEC("syscall")
int call_str(struct wasm_call_ctx *ctx)
{
	__u64 args[1] = { ctx->args[0] };
	__u64 results[1] = {};
	__s64 h = bpf_wasm_lookup_str("probe", "inc");

	ctx->handle = h;
	if (h < 0) {
		ctx->ret = h;
		return 0;
	}
	ctx->ret = bpf_wasm_call(h, args, sizeof(args), results, sizeof(results));
	ctx->results[0] = results[0];
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
