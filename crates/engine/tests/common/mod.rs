//! A user-space host for the engine's tests: records what guests log, per test thread.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use wasm_engine::Host;

/// A BPF map as the test host keeps it: `(map handle, key) -> value`.
type Maps = HashMap<(u64, Vec<u8>), Vec<u8>>;

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static SLICES_LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    static MAPS: RefCell<Maps> = RefCell::new(HashMap::new());
    static RELEASED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
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
    fn map_lookup(map: u64, key: &[u8], value: &mut [u8]) -> i32 {
        MAPS.with(|m| match m.borrow().get(&(map, key.to_vec())) {
            Some(v) => {
                value.copy_from_slice(v);
                0
            }
            None => -2,
        })
    }
    fn map_update(map: u64, key: &[u8], value: &[u8], flags: u64) -> i32 {
        MAPS.with(|m| {
            let mut m = m.borrow_mut();
            let exists = m.contains_key(&(map, key.to_vec()));
            match (flags, exists) {
                (1, true) => -17,
                (2, false) => -2,
                _ => {
                    m.insert((map, key.to_vec()), value.to_vec());
                    0
                }
            }
        })
    }
    fn map_delete(map: u64, key: &[u8]) -> i32 {
        MAPS.with(|m| match m.borrow_mut().remove(&(map, key.to_vec())) {
            Some(_) => 0,
            None => -2,
        })
    }
    fn map_release(map: u64) {
        RELEASED.with(|r| r.borrow_mut().push(map));
    }
}

/// The map handles released on this thread so far.
pub fn released_maps() -> Vec<u64> {
    RELEASED.with(|r| r.take())
}

/// Takes the lines logged on this thread so far.
pub fn logs() -> Vec<String> {
    LOG.with(|l| l.take())
}

/// Lets the next `n` fuel slices go on; the one after is interrupted.
pub fn allow_slices(n: u64) {
    SLICES_LEFT.with(|s| s.set(n));
}
