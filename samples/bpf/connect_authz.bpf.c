// SPDX-License-Identifier: GPL-2.0
/*
 * Authorisation: a BPF LSM program asks the Wasm policy "connect-authz"
 * (function allow) whether an IPv4 connect() may proceed; a denial makes
 * connect() fail with EPERM. Policy errors allow (fail open).
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "wasm_bpf.h"

#define EPERM 1
#define AF_INET 2

struct socket;

__s64 policy = -1;

SEC("lsm/socket_connect")
int BPF_PROG(check_connect, struct socket *sock, struct sockaddr *address,
	     int addrlen, int ret)
{
	char module[] = "connect-authz", function[] = "allow";
	struct sockaddr_in sin;
	__u64 args[2];
	__u64 res[1];

	if (ret)
		return ret;
	if (addrlen < (int)sizeof(sin))
		return 0;
	if (bpf_probe_read_kernel(&sin, sizeof(sin), address))
		return 0;
	if (sin.sin_family != AF_INET)
		return 0;
	args[0] = bpf_ntohl(sin.sin_addr.s_addr);
	args[1] = bpf_ntohs(sin.sin_port);
	if (policy < 0)
		policy = bpf_wasm_lookup(module, sizeof(module), function,
					 sizeof(function));
	if (bpf_wasm_call(policy, args, sizeof(args), res, sizeof(res)) != 1)
		return 0;
	return res[0] ? 0 : -EPERM;
}

char LICENSE[] SEC("license") = "GPL";
