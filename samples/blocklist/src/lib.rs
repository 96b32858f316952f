//! The Wasm half of the shared-map sample (`samples/bpf/blocklist.bpf.c`): an IPv4 block
//! list in a BPF hash map that this policy fills and an XDP program reads.
//!
//! Map 0 (given at load with `--map /sys/fs/bpf/blocked`) maps a source address (4 bytes,
//! network order) to the packets the XDP program dropped from it. Operators block and
//! unblock addresses with `wasmctl call`; the XDP program hands every packet from an address
//! not blocked to [`observe`] (through a kfunc), which blocks a source after [`LIMIT`]
//! packets on one CPU: the map is written from eBPF context too.
#![no_std]

use core::cell::UnsafeCell;

#[link(wasm_import_module = "bpf")]
extern "C" {
    fn map_lookup(map: i32, key: *const u8, key_len: i32, value: *mut u8, value_len: i32) -> i32;
    fn map_update(
        map: i32,
        key: *const u8,
        key_len: i32,
        value: *const u8,
        value_len: i32,
        flags: i64,
    ) -> i32;
    fn map_delete(map: i32, key: *const u8, key_len: i32) -> i32;
}

/// The block list's index among the module's maps.
const BLOCKED: i32 = 0;
/// Packets one CPU lets through from a source before [`observe`] blocks it.
pub const LIMIT: u32 = 100;
/// Sources [`observe`] counts at once per instance; when full, counting starts over.
const SOURCES: usize = 64;

struct Seen {
    addr: [[u8; 4]; SOURCES],
    count: [u32; SOURCES],
    len: usize,
}

/// Per-instance state. Wasm instances are single-threaded.
struct State(UnsafeCell<Seen>);

// SAFETY: a Wasm instance runs one call at a time; nothing is shared between threads.
unsafe impl Sync for State {}

static SEEN: State = State(UnsafeCell::new(Seen {
    addr: [[0; 4]; SOURCES],
    count: [0; SOURCES],
    len: 0,
}));

fn seen() -> &'static mut Seen {
    // SAFETY: single-threaded instance, and no other reference to the state is live across
    // exported calls.
    unsafe { &mut *SEEN.0.get() }
}

fn addr(a: i32, b: i32, c: i32, d: i32) -> [u8; 4] {
    [a as u8, b as u8, c as u8, d as u8]
}

fn block_addr(key: &[u8; 4]) -> i32 {
    let hits = 0u64.to_ne_bytes();
    // SAFETY: the pointers and lengths describe live buffers of this module's memory.
    unsafe { map_update(BLOCKED, key.as_ptr(), 4, hits.as_ptr(), 8, 0) }
}

/// Blocks `a.b.c.d`: 0, or a negative errno.
#[no_mangle]
pub extern "C" fn block(a: i32, b: i32, c: i32, d: i32) -> i32 {
    block_addr(&addr(a, b, c, d))
}

/// Unblocks `a.b.c.d`: 0, or `-ENOENT` if it was not blocked.
#[no_mangle]
pub extern "C" fn unblock(a: i32, b: i32, c: i32, d: i32) -> i32 {
    let key = addr(a, b, c, d);
    // SAFETY: as in `block_addr`.
    unsafe { map_delete(BLOCKED, key.as_ptr(), 4) }
}

/// Packets the XDP program dropped from `a.b.c.d`, or a negative errno (`-ENOENT`: not
/// blocked).
#[no_mangle]
pub extern "C" fn hits(a: i32, b: i32, c: i32, d: i32) -> i64 {
    let key = addr(a, b, c, d);
    let mut value = [0u8; 8];
    // SAFETY: as in `block_addr`.
    match unsafe { map_lookup(BLOCKED, key.as_ptr(), 4, value.as_mut_ptr(), 8) } {
        0 => u64::from_ne_bytes(value) as i64,
        e => i64::from(e),
    }
}

/// Called by the XDP program for a packet from a source not blocked, with the source
/// address as the packet holds it (its 4 bytes in memory order). Returns 1 if this packet
/// made the source blocked.
#[no_mangle]
pub extern "C" fn observe(saddr: i32) -> i32 {
    let key = saddr.to_le_bytes();
    let s = seen();
    let at = match s.addr[..s.len].iter().position(|a| *a == key) {
        Some(at) => at,
        None => {
            if s.len == SOURCES {
                s.len = 0;
            }
            s.addr[s.len] = key;
            s.count[s.len] = 0;
            s.len += 1;
            s.len - 1
        }
    };
    s.count[at] += 1;
    if s.count[at] < LIMIT {
        return 0;
    }
    s.count[at] = 0;
    i32::from(block_addr(&key) == 0)
}

/// Looks up a 3-byte key in the 4-byte-key map: `-EINVAL` (the sizes are checked).
#[no_mangle]
pub extern "C" fn wrong_key_size() -> i32 {
    let key = [0u8; 3];
    let mut value = [0u8; 8];
    // SAFETY: as in `block_addr`.
    unsafe { map_lookup(BLOCKED, key.as_ptr(), 3, value.as_mut_ptr(), 8) }
}

/// Looks up in map 5, which the module was not given: `-EBADF`.
#[no_mangle]
pub extern "C" fn no_such_map() -> i32 {
    let key = [0u8; 4];
    let mut value = [0u8; 8];
    // SAFETY: as in `block_addr`.
    unsafe { map_lookup(5, key.as_ptr(), 4, value.as_mut_ptr(), 8) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
