// SPDX-License-Identifier: GPL-2.0
/*
 * BPF maps for Wasm guests: a load request names maps by file descriptor
 * (wasmctl opens them by id or pinned path); wasm.ko keeps a reference on
 * each while the module lives, and the guest's bpf.map_* host functions
 * reach them here, from process context or from a kfunc call.
 */
#include <linux/bpf.h>
#include <linux/err.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>

#include "wasm_shim.h"

/*
 * bpf_map_get() is the one exported way from a file descriptor to a map;
 * 6.12 puts it in the BPF_INTERNAL namespace (on 6.1 the import is unused).
 */
MODULE_IMPORT_NS(BPF_INTERNAL);

/* The longest key a guest may use (BPF keys are at most this). */
#define WASM_MAP_MAX_KEY 512

static bool wasm_map_type_ok(enum bpf_map_type type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return true;
	default:
		return false;
	}
}

/*
 * Takes a reference on the map behind fd (of the calling process) and
 * describes it. Returns 0, -EBADF for an fd that is no map, -EOPNOTSUPP
 * for a map of another type, -E2BIG for a key above WASM_MAP_MAX_KEY bytes.
 */
int wasm_shim_map_get(int fd, struct wasm_shim_map *out)
{
	struct bpf_map *map = bpf_map_get(fd);
	int err = 0;

	if (IS_ERR(map))
		return -EBADF;
	if (!wasm_map_type_ok(map->map_type))
		err = -EOPNOTSUPP;
	else if (map->key_size > WASM_MAP_MAX_KEY)
		err = -E2BIG;
	if (err) {
		bpf_map_put(map);
		return err;
	}
	out->map = map;
	out->id = map->id;
	out->type = map->map_type;
	out->key_size = map->key_size;
	out->value_size = map->value_size;
	return 0;
}

void wasm_shim_map_put(void *map)
{
	bpf_map_put(map);
}

/*
 * The operations, as the map's eBPF helpers do them: under RCU, with
 * preemption off so that per-CPU maps act on one CPU's value throughout.
 * Sizes were checked by the caller. Values are copied as the bpf(2) calls
 * copy them: spin locks, timers and kptrs in them are left alone, by
 * copy_map_value() here and by the maps' own update. Guests get what
 * programs get: no
 * writes to a map created read-only for programs (the verifier may have
 * folded its values into them), no reads of one created write-only.
 */
int wasm_shim_map_lookup(void *ptr, const void *key, void *value)
{
	struct bpf_map *map = ptr;
	void *found;

	if (map->map_flags & BPF_F_WRONLY_PROG)
		return -EPERM;
	preempt_disable();
	rcu_read_lock();
	found = map->ops->map_lookup_elem(map, (void *)key);
	if (found)
		copy_map_value(map, value, found);
	rcu_read_unlock();
	preempt_enable();
	return found ? 0 : -ENOENT;
}

/* An update, or with no value a delete: refused on maps read-only for programs. */
static int wasm_map_write(struct bpf_map *map, const void *key,
			  const void *value, u64 flags)
{
	long err;

	if (map->map_flags & BPF_F_RDONLY_PROG)
		return -EPERM;
	preempt_disable();
	rcu_read_lock();
	if (value)
		err = map->ops->map_update_elem(map, (void *)key, (void *)value,
						flags);
	else
		err = map->ops->map_delete_elem(map, (void *)key);
	rcu_read_unlock();
	preempt_enable();
	return err;
}

int wasm_shim_map_update(void *map, const void *key, const void *value,
			 u64 flags)
{
	return wasm_map_write(map, key, value, flags);
}

int wasm_shim_map_delete(void *map, const void *key)
{
	return wasm_map_write(map, key, NULL, 0);
}
