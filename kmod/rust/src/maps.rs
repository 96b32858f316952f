//! The BPF maps of a load request: references taken from the requester's file descriptors,
//! given back unless the load succeeds (the module then owns them). Until the request
//! commits, its guard knows them too, so that an abandoned request gives them back.

use crate::ffi;
use crate::guard;
use crate::host::try_format;
use alloc::vec::Vec;
use core::cell::Cell;
use wasm_engine::maps::{MapRef, MAX_MAPS};
use wasm_engine::Error;
use wasm_proto::errno;

/// Gives back a reference on a map, and tells the request's guard.
///
/// # Safety
///
/// `handle` holds a reference from [`ffi::map_get`] that is given back only here.
pub unsafe fn release(handle: u64) {
    guard::untrack_map(handle);
    // SAFETY: guaranteed by the caller.
    unsafe { ffi::map_put(handle) };
}

/// References on the maps of one load request.
///
/// # Invariants
///
/// Each entry holds one reference from [`ffi::map_get`], given back on drop unless `handed`
/// says [`MapRefs::hand_over`] passed them to a module.
pub struct MapRefs {
    refs: Vec<MapRef>,
    handed: Cell<bool>,
}

impl MapRefs {
    /// Takes a reference on the map behind each of `fds`, in order.
    ///
    /// # Errors
    ///
    /// Which fd is not a usable map and why; the references taken so far are given back.
    pub fn take(fds: &[i32]) -> Result<MapRefs, Error> {
        if fds.len() > MAX_MAPS {
            return Err(Error::Arguments(
                try_format(format_args!("{} maps given, at most {MAX_MAPS}", fds.len()))
                    .unwrap_or_default(),
            ));
        }
        let mut refs = MapRefs {
            refs: Vec::new(),
            handed: Cell::new(false),
        };
        refs.refs
            .try_reserve_exact(fds.len())
            .map_err(|_| Error::OutOfMemory)?;
        for (i, fd) in fds.iter().enumerate() {
            let why = match ffi::map_get(*fd) {
                Ok(m) => {
                    guard::track_map(m.handle);
                    refs.refs.push(m);
                    continue;
                }
                Err(e) if e == -errno::EOPNOTSUPP => {
                    "a map type the guests may not use (hash, array, LRU hash and their \
                     per-CPU variants)"
                }
                Err(e) if e == -errno::E2BIG => "its key is longer than 512 bytes",
                Err(_) => "not a BPF map",
            };
            return Err(Error::Arguments(
                try_format(format_args!("map {i} (fd {fd}): {why}")).unwrap_or_default(),
            ));
        }
        Ok(refs)
    }

    /// The maps, for the load.
    pub fn refs(&self) -> &[MapRef] {
        &self.refs
    }

    /// The engine's load succeeded: its module owns the references now (and gives them
    /// back when it is freed).
    pub fn hand_over(&self) {
        self.handed.set(true);
    }
}

impl Drop for MapRefs {
    fn drop(&mut self) {
        if self.handed.get() {
            return;
        }
        for m in &self.refs {
            // SAFETY: by the invariant, each entry still holds its reference.
            unsafe { release(m.handle) };
        }
    }
}
