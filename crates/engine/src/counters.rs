//! Per-instance counters, kept beside each instance and read without taking it: the same for
//! every tier.
//!
//! Only the caller holding an instance records into its counters, so recording is a plain
//! load and store per counter (no locked read-modify-write on the eBPF call path); readers
//! may see a call's counters half-updated, never torn values.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use wasm_proto::{bucket_of, CallStats, InstanceInfo, LATENCY_BUCKETS};

/// Who made a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A `/dev/wasm` request (or the entrypoint at load).
    User,
    /// An eBPF program, through a kfunc.
    Bpf,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It returned (or the guest exited).
    Returned,
    /// It trapped or was interrupted.
    Trapped,
    /// It used up its fuel.
    OutOfFuel,
}

/// One call's record: who called, how it ended, what it cost.
#[derive(Debug, Clone, Copy)]
pub struct CallRecord {
    /// Who made the call.
    pub caller: Caller,
    /// How it ended.
    pub ending: Ending,
    /// Fuel it used.
    pub fuel: u64,
    /// Time it took, in nanoseconds.
    pub ns: u64,
}

/// Counters of one kind of call.
#[derive(Debug, Default)]
struct Kind {
    calls: AtomicU64,
    traps: AtomicU64,
    out_of_fuel: AtomicU64,
    fuel_used: AtomicU64,
    time_ns: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
}

/// Adds `n` to a counter only its instance's holder writes.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

impl Kind {
    fn record(&self, r: &CallRecord) {
        bump(&self.calls, 1);
        if r.ending != Ending::Returned {
            bump(&self.traps, 1);
        }
        if r.ending == Ending::OutOfFuel {
            bump(&self.out_of_fuel, 1);
        }
        bump(&self.fuel_used, r.fuel);
        bump(&self.time_ns, r.ns);
        bump(&self.latency[bucket_of(r.ns)], 1);
    }

    fn stats(&self) -> CallStats {
        CallStats {
            calls: self.calls.load(Relaxed),
            traps: self.traps.load(Relaxed),
            out_of_fuel: self.out_of_fuel.load(Relaxed),
            fuel_used: self.fuel_used.load(Relaxed),
            time_ns: self.time_ns.load(Relaxed),
            latency: core::array::from_fn(|i| self.latency[i].load(Relaxed)),
        }
    }
}

/// Calls, traps, fuel, latency and memory of one instance.
#[derive(Debug, Default)]
pub struct Counters {
    user: Kind,
    bpf: Kind,
    memory: AtomicU64,
}

impl Counters {
    /// Counters of an instance whose linear memory is `memory` bytes.
    pub fn new(memory: u64) -> Self {
        let c = Counters::default();
        c.memory.store(memory, Relaxed);
        c
    }

    /// Records a finished call. Only the instance's holder calls it.
    pub fn record(&self, r: &CallRecord) {
        match r.caller {
            Caller::User => self.user.record(r),
            Caller::Bpf => self.bpf.record(r),
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
            user: self.user.stats(),
            bpf: self.bpf.stats(),
            memory: self.memory.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_caller_and_ending() {
        let c = Counters::new(65536);
        let rec = |caller, ending, ns| CallRecord {
            caller,
            ending,
            fuel: 10,
            ns,
        };
        c.record(&rec(Caller::User, Ending::Returned, 100));
        c.record(&rec(Caller::Bpf, Ending::Trapped, 3000));
        c.record(&rec(Caller::Bpf, Ending::OutOfFuel, 5000));
        let i = c.info(1);
        assert_eq!((i.cpu, i.memory), (1, 65536));
        assert_eq!((i.user.calls, i.user.traps, i.user.fuel_used), (1, 0, 10));
        assert_eq!((i.bpf.calls, i.bpf.traps, i.bpf.out_of_fuel), (2, 2, 1));
        assert_eq!(i.bpf.time_ns, 8000);
        assert_eq!(i.user.latency[6], 1);
        assert_eq!(i.bpf.latency[11] + i.bpf.latency[12], 2);
        assert_eq!(i.calls(), 3);
    }
}
