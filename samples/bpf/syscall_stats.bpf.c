// SPDX-License-Identifier: GPL-2.0
/*
 * Tracing: every getpgid() is passed to the Wasm module "syscall-stats"
 * (function record), which aggregates per CPU in its instance; read the
 * counts with wasmctl call syscall-stats count. fentry and fexit work on
 * 6.1 and 6.12; kprobe and tracepoint programs may call kfuncs on 6.12.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "wasm_bpf.h"

__s64 stats = -1;

static __always_inline int record(void)
{
	char module[] = "syscall-stats", function[] = "record";
	__u64 args[1] = { bpf_get_current_pid_tgid() >> 32 };
	__u64 res[1];

	if (stats < 0)
		stats = bpf_wasm_lookup(module, sizeof(module), function,
					sizeof(function));
	bpf_wasm_call(stats, args, sizeof(args), res, sizeof(res));
	return 0;
}

SEC("fentry/__x64_sys_getpgid")
int BPF_PROG(getpgid_fentry)
{
	return record();
}

SEC("fexit/__x64_sys_getpgid")
int BPF_PROG(getpgid_fexit)
{
	return record();
}

/* Tracepoints may call kfuncs on 6.12. */
SEC("tp/syscalls/sys_enter_getpgid")
int getpgid_tracepoint(void *ctx)
{
	return record();
}

SEC("kprobe/__x64_sys_getpgid")
int getpgid_kprobe(void *ctx)
{
	return record();
}

char LICENSE[] SEC("license") = "GPL";
