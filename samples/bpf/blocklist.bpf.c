// SPDX-License-Identifier: GPL-2.0
/*
 * Shared-map sample: an XDP program drops packets from the sources in the
 * BPF hash map "blocked", which the Wasm policy "blocklist" fills (through
 * wasm.ko's bpf.map_* host functions). Packets from other sources are handed
 * to blocklist.observe, which blocks a source after 100 packets on one CPU.
 * The map is pinned at /sys/fs/bpf/blocked so that wasmctl can give it to
 * the policy; "events" (a ring buffer) is there to show that wasm.ko refuses
 * map types guests may not use.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "wasm_bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);	/* IPv4 source address, network order */
	__type(value, __u64);	/* packets dropped from it */
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

__s64 observe = -1;

SEC("xdp")
int xdp_blocklist(struct xdp_md *ctx)
{
	char module[] = "blocklist", function[] = "observe";
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u64 args[1], res[1];
	__u32 saddr;
	__u64 *hits;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	saddr = ip->saddr;
	hits = bpf_map_lookup_elem(&blocked, &saddr);
	if (hits) {
		__sync_fetch_and_add(hits, 1);
		return XDP_DROP;
	}
	if (observe < 0)
		observe = bpf_wasm_lookup(module, sizeof(module), function,
					  sizeof(function));
	args[0] = saddr;
	bpf_wasm_call(observe, args, sizeof(args), res, sizeof(res));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
