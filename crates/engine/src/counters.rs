//! Per-instance counters, kept beside each instance and read without taking it: the same for
//! every tier.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wasm_proto::InstanceInfo;

/// Calls, traps, fuel and memory of one instance.
#[derive(Debug, Default)]
pub struct Counters {
    calls: AtomicU64,
    traps: AtomicU64,
    fuel_used: AtomicU64,
    memory: AtomicU64,
}

impl Counters {
    /// Counters of an instance whose linear memory is `memory` bytes.
    pub fn new(memory: u64) -> Self {
        let c = Counters::default();
        c.memory.store(memory, Relaxed);
        c
    }

    /// A call starts.
    pub fn started(&self) {
        self.calls.fetch_add(1, Relaxed);
    }

    /// A call ended, having used `fuel`, trapped or not.
    pub fn finished(&self, fuel: u64, trapped: bool) {
        self.fuel_used.fetch_add(fuel, Relaxed);
        if trapped {
            self.traps.fetch_add(1, Relaxed);
        }
    }

    /// The instance's linear memory is now `bytes`.
    pub fn set_memory(&self, bytes: u64) {
        self.memory.store(bytes, Relaxed);
    }

    /// The counters as `List` reports them, for the instance of `cpu`.
    pub fn info(&self, cpu: usize) -> InstanceInfo {
        InstanceInfo {
            cpu: cpu as u32,
            calls: self.calls.load(Relaxed),
            traps: self.traps.load(Relaxed),
            fuel_used: self.fuel_used.load(Relaxed),
            memory: self.memory.load(Relaxed),
        }
    }
}
