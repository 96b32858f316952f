// SPDX-License-Identifier: GPL-2.0
/*
 * SYSCALL programs that call wasm.ko's kfuncs with what user space puts in
 * the context, for the VM tests and the benchmark (wasm-bpf call/bench).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "wasm_bpf.h"

struct wasm_call_ctx {
	char module[32];
	char function[32];
	__u64 args[8];
	__u32 args_len;		/* bytes of args to pass */
	__u32 buf_len;		/* bytes of buf to pass to a buffer call */
	__u8 buf[128];
	__s64 handle;		/* out: bpf_wasm_lookup() */
	__s64 ret;		/* out: the call's return value */
	__u64 results[4];	/* out */
	__s64 buf_result;	/* out: a buffer call's result */
};

/* The verifier lets kfuncs read program stack, not offsets into the context:
 * names, arguments and results are copied through the stack.
 */
static __always_inline __s64 lookup(struct wasm_call_ctx *ctx)
{
	char module[32], function[32];

	__builtin_memcpy(module, ctx->module, sizeof(module));
	__builtin_memcpy(function, ctx->function, sizeof(function));
	ctx->handle = bpf_wasm_lookup(module, sizeof(module), function,
				      sizeof(function));
	return ctx->handle;
}

static __always_inline void call_handle_with(struct wasm_call_ctx *ctx, __s64 h)
{
	__u64 args[8], results[4] = {};
	__u64 len = ctx->args_len;

	__builtin_memcpy(args, ctx->args, sizeof(args));
	if (len > sizeof(args))
		len = sizeof(args);
	ctx->ret = bpf_wasm_call(h, args, len, results, sizeof(results));
	__builtin_memcpy(ctx->results, results, sizeof(results));
}

SEC("syscall")
int call(struct wasm_call_ctx *ctx)
{
	__s64 h = lookup(ctx);

	if (h < 0) {
		ctx->ret = h;
		return 0;
	}
	call_handle_with(ctx, h);
	return 0;
}

/* Buffer calls go through a global (map value): too large for the stack. */
__u8 scratch[128];

SEC("syscall")
int call_buf(struct wasm_call_ctx *ctx)
{
	__u8 *buf = scratch;
	__s64 result = 0;
	__u64 len = ctx->buf_len;
	__s64 h = lookup(ctx);

	if (h < 0) {
		ctx->ret = h;
		return 0;
	}
	__builtin_memcpy(buf, ctx->buf, sizeof(scratch));
	if (len > sizeof(scratch))
		len = sizeof(scratch);
	ctx->ret = bpf_wasm_call_buf(h, buf, len, &result);
	ctx->buf_result = result;
	__builtin_memcpy(ctx->buf, buf, sizeof(scratch));
	return 0;
}

/* Calls a handle resolved earlier (by the call program): a stale handle
 * must give -ENOENT after its module is unloaded.
 */
SEC("syscall")
int call_handle(struct wasm_call_ctx *ctx)
{
	call_handle_with(ctx, ctx->handle);
	return 0;
}

/*
 * Benchmark, run with BPF_PROG_TEST_RUN and a repeat count: no call, a kfunc
 * call that returns at once (invalid handle), and a call of probe.inc.
 */
__s64 bench_handle = -1;

SEC("xdp")
int xdp_empty(struct xdp_md *xdp)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_kfunc_only(struct xdp_md *xdp)
{
	__u64 args[1] = { 41 };
	__u64 res[1];

	if (bpf_wasm_call(-1, args, sizeof(args), res, sizeof(res)) != -2)
		return XDP_ABORTED;
	return XDP_PASS;
}

SEC("xdp")
int xdp_wasm_call(struct xdp_md *xdp)
{
	char module[] = "probe", function[] = "inc";
	__u64 args[1] = { 41 };
	__u64 res[1];

	if (bench_handle < 0)
		bench_handle = bpf_wasm_lookup(module, sizeof(module), function,
					       sizeof(function));
	if (bpf_wasm_call(bench_handle, args, sizeof(args), res, sizeof(res)) != 1)
		return XDP_ABORTED;
	return res[0] == 42 ? XDP_PASS : XDP_DROP;
}

/*
 * Hot replace under load: calls policy.version(0) on every run with a handle
 * looked up once, and counts the answers: answers[0] failed calls, [1] and
 * [2] answers from version 1 and 2 of the policy, [3] any other answer.
 */
__s64 version_handle = -1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} answers SEC(".maps");

SEC("xdp")
int xdp_versions(struct xdp_md *xdp)
{
	char module[] = "policy", function[] = "version";
	__u64 args[1] = { 0 }, res[1] = { 0 };
	__u32 key = 0;
	__u64 *n;

	if (version_handle < 0)
		version_handle = bpf_wasm_lookup(module, sizeof(module),
						 function, sizeof(function));
	if (bpf_wasm_call(version_handle, args, sizeof(args), res,
			  sizeof(res)) == 1)
		key = res[0] == 1 || res[0] == 2 ? res[0] : 3;
	n = bpf_map_lookup_elem(&answers, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
