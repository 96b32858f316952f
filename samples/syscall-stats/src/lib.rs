//! Aggregation for the tracing sample: `record(pid)` is called for every traced syscall;
//! each CPU's instance keeps its own count and the last pid seen.
#![no_std]

use core::sync::atomic::{AtomicI32, AtomicU64, Ordering::Relaxed};

static COUNT: AtomicU64 = AtomicU64::new(0);
static LAST_PID: AtomicI32 = AtomicI32::new(0);

/// Records one event; returns this instance's count so far.
#[no_mangle]
pub extern "C" fn record(pid: i32) -> i64 {
    LAST_PID.store(pid, Relaxed);
    COUNT.fetch_add(1, Relaxed) as i64 + 1
}

/// Events this instance recorded.
#[no_mangle]
pub extern "C" fn count() -> i64 {
    COUNT.load(Relaxed) as i64
}

/// The pid of the last event on this instance.
#[no_mangle]
pub extern "C" fn last_pid() -> i32 {
    LAST_PID.load(Relaxed)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
