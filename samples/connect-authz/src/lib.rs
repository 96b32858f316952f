//! Connect policy for the BPF LSM sample: `allow(daddr, dport)` says whether an IPv4
//! `connect()` may proceed. Denied: port 81 on any address, and anything to 198.51.100.0/24.
#![no_std]

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

static ALLOWED: AtomicU64 = AtomicU64::new(0);
static DENIED: AtomicU64 = AtomicU64::new(0);

/// 1 to allow the connection, 0 to refuse it (the caller gets EPERM).
#[no_mangle]
pub extern "C" fn allow(daddr: i32, dport: i32) -> i32 {
    let daddr = daddr as u32;
    let denied = dport == 81 || daddr & 0xffff_ff00 == 0xc633_6400;
    let counter = if denied { &DENIED } else { &ALLOWED };
    counter.fetch_add(1, Relaxed);
    (!denied) as i32
}

/// Connections this instance refused.
#[no_mangle]
pub extern "C" fn denied() -> i64 {
    DENIED.load(Relaxed) as i64
}

/// Connections this instance allowed.
#[no_mangle]
pub extern "C" fn allowed() -> i64 {
    ALLOWED.load(Relaxed) as i64
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
