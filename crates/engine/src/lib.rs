//! The WebAssembly engine of `wasm.ko`, shared with `wasmctl run`.
//!
//! A [`Registry`] holds named [`LoadedModule`]s. Each module is compiled once (with
//! [wasmi](https://docs.rs/wasmi), validation on) and instantiated once per possible CPU, as the
//! original module did ("vm for cpu = N"), so a caller on CPU *n* uses instance *n* and never
//! waits for another CPU. Every call runs with a fuel budget, consumed in slices: between two
//! slices the [`Host`] may reschedule and may stop the call (a fatal signal), so an endless guest
//! neither locks up a CPU nor outlives its caller. Linear memory and tables are capped.
//!
//! Guests import the small `env` host API and a WASI preview1 subset (standard output to the
//! log, clocks, random numbers, arguments and environment, exit), so ordinary programs compiled
//! for `wasm32-wasip1` run.
//!
//! The crate is `no_std` + `alloc`; everything the environment must provide (logging, the CPU
//! count, rescheduling, clocks, randomness) comes through the [`Host`] trait. No input, however malformed, makes it
//! panic: errors come back as [`Error`] values that carry an errno and a message.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

mod budget;
mod counters;
mod error;
mod grants;
mod host_api;
pub mod maps;
mod module;
mod raw;
mod registry;
pub mod signature;
mod slot;
pub mod wasi;

pub use slot::{TryGuard, TryLock};

pub use budget::MemoryBudget;
pub use counters::{CallRecord, Caller, Counters, Ending};
pub use error::Error;
pub use grants::Grants;
pub use host_api::{env_debug, PROVIDED};
pub use module::{
    choose_entrypoint, hex, order_exports, resolve_limits, CallOutcome, LoadSpec, LoadedModule,
    Replaced,
};
pub use raw::{raw_record, Lane, RawError};
pub use registry::{Entry, Registry};
pub use wasm_proto::{CallStats, FuncSig, InstanceInfo, Limits, ModuleInfo, Tier, ValType, Value};

/// Fuel given to one call when the load request does not say.
pub const DEFAULT_FUEL: u64 = 100_000_000;
/// Fuel consumed between two calls to [`Host::between_slices`].
pub const FUEL_SLICE: u64 = 1_000_000;
/// Fuel given to one call from eBPF when the load request does not say. eBPF calls run in
/// one piece (they may not reschedule), so this budget bounds their time.
pub const DEFAULT_BPF_FUEL: u64 = 1_000_000;
/// Most modules loaded at once.
pub const MAX_MODULES: usize = 256;
/// Largest linear memory of one instance when the load request does not say.
pub const DEFAULT_MEMORY: u64 = 64 << 20;
/// Largest memory limit a load request may ask for.
pub const MAX_MEMORY: u64 = 1 << 30;
/// Linear memory all modules may hold together, unless the registry is told otherwise.
pub const DEFAULT_MEMORY_CAP: u64 = 256 << 20;
/// Bytes of Wasm value stack each instance allocates up front, so calls from eBPF programs
/// find it ready (deeper calls grow it).
pub const MIN_STACK_HEIGHT: usize = 64 << 10;
/// Most table elements of one instance.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Deepest Wasm call nesting. Guest frames live on wasmi's heap stack, not the kernel stack.
pub const MAX_RECURSION_DEPTH: usize = 10_000;

/// What the environment (the kernel, or a user-space process) provides to the engine.
///
/// All functions are associated functions: there is one host per program.
pub trait Host: 'static {
    /// Writes one log line, verbatim (no trailing newline).
    fn log(line: &[u8]);
    /// Number of instances to create per module: the possible CPUs.
    fn cpu_count() -> usize;
    /// Called between two fuel slices of a running call. May reschedule. Returns `false` when
    /// the call must stop (for example the calling task has a fatal signal pending).
    fn between_slices() -> bool;
    /// Monotonic clock in nanoseconds (`env.now_ns`, WASI's monotonic clock).
    fn now_ns() -> u64;
    /// A cheap clock in nanoseconds for timing calls (their latency histograms): it need
    /// only be monotonic on one CPU. By default the monotonic clock.
    fn timer_ns() -> u64 {
        Self::now_ns()
    }
    /// Wall-clock time in nanoseconds since the Unix epoch (WASI's realtime clock).
    fn realtime_ns() -> u64;
    /// Fills `buf` with random bytes (WASI's `random_get`).
    fn random(buf: &mut [u8]);
    /// Runs `f`, which works on an instance that outlives the request (a call). The kernel
    /// uses it to know that memory allocated meanwhile may belong to the instance.
    fn on_instance<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
    /// `bpf.map_lookup` on the map `map` (a [`maps::MapRef`]'s handle): copies the value of
    /// `key` into `value` (both the map's sizes); 0 or a negative errno.
    fn map_lookup(_map: u64, _key: &[u8], _value: &mut [u8]) -> i32 {
        -38
    }
    /// `bpf.map_update`: 0 or a negative errno.
    fn map_update(_map: u64, _key: &[u8], _value: &[u8], _flags: u64) -> i32 {
        -38
    }
    /// `bpf.map_delete`: 0 or a negative errno.
    fn map_delete(_map: u64, _key: &[u8]) -> i32 {
        -38
    }
    /// Gives back a module's reference on a map, when the module is freed.
    fn map_release(_map: u64) {}
}
