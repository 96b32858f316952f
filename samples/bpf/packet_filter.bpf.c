// SPDX-License-Identifier: GPL-2.0
/*
 * Packet filter: XDP and TC programs hand a packet's IPv4 addresses, protocol
 * and ports to the Wasm policy "packet-filter" (function verdict), which says
 * whether to drop it. Non-IPv4 packets pass; policy errors pass (fail open)
 * and are counted in wasmctl list.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "wasm_bpf.h"

__s64 policy = -1;

/* Returns 1 to drop, 0 to pass. */
static __always_inline int verdict(void *data, void *data_end)
{
	char module[] = "packet-filter", function[] = "verdict";
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 *ports = (void *)(ip + 1);
	__u64 args[5];
	__u64 res[1];

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (ip->ihl != 5)
		return 0;
	args[0] = bpf_ntohl(ip->saddr);
	args[1] = bpf_ntohl(ip->daddr);
	args[2] = ip->protocol;
	args[3] = 0;
	args[4] = 0;
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    (void *)(ports + 2) <= data_end) {
		args[3] = bpf_ntohs(ports[0]);
		args[4] = bpf_ntohs(ports[1]);
	}
	if (policy < 0)
		policy = bpf_wasm_lookup(module, sizeof(module), function,
					 sizeof(function));
	if (bpf_wasm_call(policy, args, sizeof(args), res, sizeof(res)) != 1)
		return 0;
	return res[0] != 0;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	return verdict(data, data_end) ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_filter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	return verdict(data, data_end) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
