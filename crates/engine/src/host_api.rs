//! The host API offered to guests under the import module `env`.
//!
//! | import | signature | effect |
//! |---|---|---|
//! | `env._debug` | `(ptr: i32, len: i32) -> i32` | logs `len` bytes at `ptr` as one line (one kernel log line in `wasm.ko`, stdout in `wasmctl run`); returns `len` |
//! | `env.now_ns` | `() -> i64` | monotonic clock, nanoseconds |
//! | `env.cpu_id` | `() -> i32` | the CPU this instance belongs to |
//!
//! A pointer range outside linear memory traps (`out of bounds memory access`). The import
//! module `bpf` (BPF maps) is described in [`crate::maps`].

use crate::Host;
use wasmi::{Caller, Extern, Linker};

/// Per-instance data every host function can see.
pub(crate) struct InstanceData {
    /// Memory and table caps, and the share of the global memory budget.
    pub(crate) limits: crate::budget::Limiter,
    /// The CPU this instance belongs to.
    pub(crate) cpu: u32,
    /// WASI state: arguments, environment, output line buffers.
    pub(crate) wasi: crate::wasi::WasiCtx,
    /// The BPF maps of the module, by index.
    pub(crate) maps: alloc::vec::Vec<crate::maps::MapRef>,
}

/// `(module, name)` of every function the host provides, for error messages.
pub const PROVIDED: &[(&str, &str)] = &[
    ("env", "_debug"),
    ("env", "now_ns"),
    ("env", "cpu_id"),
    ("bpf", "map_lookup"),
    ("bpf", "map_update"),
    ("bpf", "map_delete"),
];

/// Longest `_debug` message; longer ones are cut (and say so).
const MAX_DEBUG_LEN: usize = 4096;

/// Defines the host API in `linker`.
pub(crate) fn define<H: Host>(linker: &mut Linker<InstanceData>) -> Result<(), wasmi::Error> {
    linker.func_wrap("env", "_debug", debug::<H>)?;
    linker.func_wrap("env", "now_ns", |_: Caller<'_, InstanceData>| {
        H::now_ns() as i64
    })?;
    linker.func_wrap("env", "cpu_id", |caller: Caller<'_, InstanceData>| {
        caller.data().cpu as i32
    })?;
    Ok(())
}

fn debug<H: Host>(
    caller: Caller<'_, InstanceData>,
    ptr: i32,
    len: i32,
) -> Result<i32, wasmi::Error> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Err(wasmi::Error::new("_debug needs an exported memory"));
    };
    env_debug::<H>(memory.data(&caller), ptr, len)
        .ok_or_else(|| wasmi::Error::from(wasmi::TrapCode::MemoryOutOfBounds))
}

/// `env._debug` on the linear memory `memory`, for every tier: logs the `len` bytes at `ptr`
/// as one line (a trailing newline dropped, cut at 4096 bytes) and returns `len`, or `None`
/// when the range lies outside `memory` (the guest then traps).
pub fn env_debug<H: Host>(memory: &[u8], ptr: i32, len: i32) -> Option<i32> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    let bytes = memory.get(start..end)?;
    let shown = &bytes[..bytes.len().min(MAX_DEBUG_LEN)];
    let shown = shown.strip_suffix(b"\n").unwrap_or(shown);
    H::log(shown);
    if bytes.len() > MAX_DEBUG_LEN {
        H::log(b"(_debug message cut at 4096 bytes)");
    }
    Some(len)
}
