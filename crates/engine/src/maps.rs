//! BPF maps from Wasm: the host functions of the import module `bpf` (capability
//! `bpf-maps`), on maps the load request handed to the module.
//!
//! | import | signature | effect |
//! |---|---|---|
//! | `bpf.map_lookup` | `(map: i32, key: i32, key_len: i32, value: i32, value_len: i32) -> i32` | copies the value of `key` to `value`: 0, or `-ENOENT` |
//! | `bpf.map_update` | `(map: i32, key: i32, key_len: i32, value: i32, value_len: i32, flags: i64) -> i32` | sets it (`flags`: 0 any, 1 only new, 2 only existing): 0 or `-errno` |
//! | `bpf.map_delete` | `(map: i32, key: i32, key_len: i32) -> i32` | removes it: 0, or `-ENOENT` |
//!
//! `map` is the map's index in the load request. Key and value lengths must be the map's key
//! and value sizes (`-EINVAL` otherwise), an unknown index is `-EBADF`, and a key or value
//! outside linear memory traps. Per-CPU maps act on the calling CPU's value, as eBPF
//! programs see them. The host does the operation ([`Host::map_lookup`] and the others);
//! the engine only checks.

use crate::host_api::InstanceData;
use crate::Host;
use wasm_proto::MapInfo;
use wasmi::{Caller, Extern, Linker};

/// Most maps one module may be given.
pub const MAX_MAPS: usize = 16;
/// Longest key of a usable map (BPF keys are at most 512 bytes).
pub const MAX_KEY: usize = 512;

const EBADF: i32 = 9;
const EINVAL: i32 = 22;

/// A map handed to a module: the host's handle (a reference the module owns once loaded,
/// given back with [`Host::map_release`]) and what the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapRef {
    /// The host's handle.
    pub handle: u64,
    /// The kernel's id of the map.
    pub id: u32,
    /// `BPF_MAP_TYPE_*`.
    pub kind: u32,
    /// Key size in bytes (at most [`MAX_KEY`]).
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
}

impl MapRef {
    /// The map as `List` reports it.
    pub fn info(&self) -> MapInfo {
        let kind = match self.kind {
            1 => "hash",
            2 => "array",
            5 => "percpu_hash",
            6 => "percpu_array",
            9 => "lru_hash",
            10 => "lru_percpu_hash",
            _ => "other",
        };
        MapInfo {
            id: self.id,
            kind: alloc::string::String::from(kind),
            key_size: self.key_size,
            value_size: self.value_size,
        }
    }
}

/// What a map call works on: the map, the guest's memory and the key copied out of it.
struct Call<'a, 'k> {
    map: MapRef,
    memory: &'a mut [u8],
    key: &'k [u8],
}

/// The map `index` with the key at `ptr`, or the errno to return (`Ok(Err)`), or a trap for a
/// key outside linear memory.
fn call<'a, 'k>(
    caller: &'a mut Caller<'_, InstanceData>,
    index: i32,
    ptr: i32,
    len: i32,
    buf: &'k mut [u8; MAX_KEY],
) -> Result<Result<Call<'a, 'k>, i32>, wasmi::Error> {
    let Some(map) = caller.data().maps.get(index as u32 as usize).copied() else {
        return Ok(Err(-EBADF));
    };
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Ok(Err(-EINVAL));
    };
    let memory = memory.data_mut(caller);
    let r = match range(ptr, len, map.key_size) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    let key = &mut buf[..map.key_size as usize];
    key.copy_from_slice(memory.get(r).ok_or_else(oob)?);
    Ok(Ok(Call { map, memory, key }))
}

/// The guest range `ptr..ptr+len`, which must be `want` bytes long.
fn range(ptr: i32, len: i32, want: u32) -> Result<core::ops::Range<usize>, i32> {
    if len as u32 != want {
        return Err(-EINVAL);
    }
    let start = ptr as u32 as usize;
    Ok(start..start + want as usize)
}

fn oob() -> wasmi::Error {
    wasmi::Error::from(wasmi::TrapCode::MemoryOutOfBounds)
}

/// Defines `bpf.map_lookup`, `bpf.map_update` and `bpf.map_delete` in `linker`.
pub(crate) fn define<H: Host>(linker: &mut Linker<InstanceData>) -> Result<(), wasmi::Error> {
    linker.func_wrap(
        "bpf",
        "map_lookup",
        |mut caller: Caller<'_, InstanceData>,
         map: i32,
         k: i32,
         k_len: i32,
         v: i32,
         v_len: i32|
         -> Result<i32, wasmi::Error> {
            let mut buf = [0u8; MAX_KEY];
            let c = match call(&mut caller, map, k, k_len, &mut buf)? {
                Ok(c) => c,
                Err(e) => return Ok(e),
            };
            match range(v, v_len, c.map.value_size) {
                Ok(r) => {
                    let value = c.memory.get_mut(r).ok_or_else(oob)?;
                    Ok(H::map_lookup(c.map.handle, c.key, value))
                }
                Err(e) => Ok(e),
            }
        },
    )?;
    linker.func_wrap(
        "bpf",
        "map_update",
        |mut caller: Caller<'_, InstanceData>,
         map: i32,
         k: i32,
         k_len: i32,
         v: i32,
         v_len: i32,
         flags: i64|
         -> Result<i32, wasmi::Error> {
            let mut buf = [0u8; MAX_KEY];
            let c = match call(&mut caller, map, k, k_len, &mut buf)? {
                Ok(c) => c,
                Err(e) => return Ok(e),
            };
            let value = match range(v, v_len, c.map.value_size) {
                Ok(r) => c.memory.get(r).ok_or_else(oob)?,
                Err(e) => return Ok(e),
            };
            if !(0..=2).contains(&flags) {
                return Ok(-EINVAL);
            }
            Ok(H::map_update(c.map.handle, c.key, value, flags as u64))
        },
    )?;
    linker.func_wrap(
        "bpf",
        "map_delete",
        |mut caller: Caller<'_, InstanceData>,
         map: i32,
         k: i32,
         k_len: i32|
         -> Result<i32, wasmi::Error> {
            let mut buf = [0u8; MAX_KEY];
            Ok(match call(&mut caller, map, k, k_len, &mut buf)? {
                Ok(c) => H::map_delete(c.map.handle, c.key),
                Err(e) => e,
            })
        },
    )?;
    Ok(())
}
