//! A user-space host for the engine's tests: records what guests log, per test thread.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use wasm_engine::Host;

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static SLICES_LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// Two CPUs, a log per thread, fixed clocks and random bytes, interruptible slices.
pub struct TestHost;

impl Host for TestHost {
    fn log(line: &[u8]) {
        LOG.with(|l| {
            l.borrow_mut()
                .push(String::from_utf8_lossy(line).into_owned())
        });
    }
    fn cpu_count() -> usize {
        2
    }
    fn between_slices() -> bool {
        SLICES_LEFT.with(|s| {
            let left = s.get();
            s.set(left.saturating_sub(1));
            left > 0
        })
    }
    fn now_ns() -> u64 {
        5
    }
    fn realtime_ns() -> u64 {
        1_700_000_000_123_456_789
    }
    fn random(buf: &mut [u8]) {
        buf.fill(0xab);
    }
}

/// Takes the lines logged on this thread so far.
pub fn logs() -> Vec<String> {
    LOG.with(|l| l.take())
}

/// Lets the next `n` fuel slices go on; the one after is interrupted.
pub fn allow_slices(n: u64) {
    SLICES_LEFT.with(|s| s.set(n));
}
