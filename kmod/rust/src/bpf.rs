//! The kfuncs' Rust half: a table of published modules that eBPF programs reach without
//! locks or allocation, and the calls themselves.
//!
//! Publishing and unpublishing happen in process context under the registry mutex. Readers
//! (kfuncs, in any context but NMI) run inside an RCU read-side critical section; an
//! unpublished module is freed only after `synchronize_rcu()`, so a running call never sees
//! it vanish. A handle carries the table slot and the slot's generation: a handle from a
//! module that was unloaded (even if another module took its slot) gets `-ENOENT`.

use crate::alloc_kernel::try_box;
use crate::ffi;
use crate::module::Module;
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU16, Ordering};
use wasm_engine::RawError;
use wasm_proto::{errno, Kfuncs, MAX_VALUES};

/// What `wasm_kfuncs_register()` returned at module init (see `wasm_shim.h`).
static KFUNCS: AtomicI32 = AtomicI32::new(0);

/// Records what `wasm_kfuncs_register()` returned, once, at module init.
pub fn set_kfuncs(status: i32) {
    KFUNCS.store(status, Ordering::Relaxed);
}

/// Whether eBPF programs can call the kfuncs, and if not why.
pub fn kfuncs() -> Kfuncs {
    match KFUNCS.load(Ordering::Relaxed) {
        0 => Kfuncs::Registered,
        ffi::KFUNCS_NO_BTF => Kfuncs::MissingBtf,
        ffi::KFUNCS_UNRESOLVED => Kfuncs::UnresolvedBtfIds,
        e => Kfuncs::Failed(-e),
    }
}

/// Most modules callable from eBPF at once: every loaded module.
pub const TABLE_SIZE: usize = wasm_engine::MAX_MODULES;

/// A module as eBPF sees it.
struct Published {
    module: Arc<Module>,
    generation: u16,
}

static TABLE: [AtomicPtr<Published>; TABLE_SIZE] =
    [const { AtomicPtr::new(ptr::null_mut()) }; TABLE_SIZE];
static GENERATIONS: [AtomicU16; TABLE_SIZE] = [const { AtomicU16::new(0) }; TABLE_SIZE];

/// An RCU read-side critical section, this value's own (ended on drop) or the caller's.
///
/// # Invariants
///
/// The current CPU is inside an RCU read-side critical section while this value lives; if
/// `owned`, `rcu_read_lock()` was called when it was made and `rcu_read_unlock()` is called
/// when it is dropped.
struct RcuReadGuard {
    owned: bool,
}

impl RcuReadGuard {
    fn new() -> Self {
        ffi::rcu_read_lock();
        RcuReadGuard { owned: true }
    }

    /// The caller's section.
    ///
    /// # Safety
    ///
    /// The caller is inside an RCU read-side critical section that outlives this value.
    unsafe fn held() -> Self {
        RcuReadGuard { owned: false }
    }

    /// The module in `slot`, valid while the guard lives.
    fn get(&self, slot: usize) -> Option<&Published> {
        let p = TABLE.get(slot)?.load(Ordering::Acquire);
        // SAFETY: a non-null entry points to a live `Published`: `unpublish` clears the entry
        // and waits for an RCU grace period before freeing it, and this guard keeps the
        // current read-side critical section open.
        unsafe { p.as_ref() }
    }
}

impl Drop for RcuReadGuard {
    fn drop(&mut self) {
        if self.owned {
            ffi::rcu_read_unlock();
        }
    }
}

/// A module ready to be published, allocated beforehand so that publishing cannot fail for
/// want of memory.
pub struct Entry(Box<Published>);

impl Entry {
    /// The entry for `module`, or `None` when out of memory.
    pub fn new(module: Arc<Module>) -> Option<Self> {
        try_box(Published {
            module,
            generation: 0,
        })
        .map(Entry)
    }
}

/// Makes a module callable from eBPF. Process context, registry mutex held. Does not allocate.
///
/// # Errors
///
/// Gives the entry back if [`TABLE_SIZE`] modules are published already.
pub fn publish(entry: Entry) -> Result<(), Entry> {
    let Some(slot) = TABLE
        .iter()
        .position(|e| e.load(Ordering::Relaxed).is_null())
    else {
        return Err(entry);
    };
    let mut published = entry.0;
    published.generation = GENERATIONS[slot]
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_add(1);
    TABLE[slot].store(Box::into_raw(published), Ordering::Release);
    Ok(())
}

/// Puts `entry` in the place of the published module of the same name, keeping its slot and
/// generation so that eBPF handles stay valid, and drops this table's reference to the old
/// module once no call can be running on it. Every call reads the table once, so it runs
/// entirely on the old module or entirely on the new one. Process context, registry mutex
/// held; may sleep. Does not allocate.
///
/// # Errors
///
/// Gives the entry back if no module of that name is published.
pub fn republish(entry: Entry) -> Result<(), Entry> {
    let name = entry.0.module.name();
    let Some(slot) = TABLE.iter().position(|e| {
        let p = e.load(Ordering::Relaxed);
        // SAFETY: as in `unpublish`: the caller holds the registry mutex, so a non-null
        // entry is live.
        !p.is_null() && unsafe { (*p).module.name() } == name
    }) else {
        return Err(entry);
    };
    let mut published = entry.0;
    let old = TABLE[slot].load(Ordering::Relaxed);
    // SAFETY: live, as above.
    published.generation = unsafe { (*old).generation };
    TABLE[slot].store(Box::into_raw(published), Ordering::Release);
    ffi::synchronize_rcu();
    // SAFETY: from `Box::into_raw`, no longer reachable from the table, past a grace period.
    drop(unsafe { Box::from_raw(old) });
    Ok(())
}

/// Withdraws the module named `name` from eBPF and drops this table's reference once no
/// call can be running on it. Process context, registry mutex held; may sleep.
pub fn unpublish(name: &str) {
    for entry in &TABLE {
        let p = entry.load(Ordering::Relaxed);
        // SAFETY: only publishers (serialised by the registry mutex, which the caller holds)
        // free entries, so a non-null entry is live here.
        if !p.is_null() && unsafe { (*p).module.name() } == name {
            entry.store(ptr::null_mut(), Ordering::Release);
            ffi::synchronize_rcu();
            // SAFETY: the entry came from `Box::into_raw` in `publish`, is no longer reachable
            // from the table, and the grace period ended every reader that could hold it.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Withdraws every module (module exit). Process context, registry mutex held.
pub fn unpublish_all() {
    let mut taken = [ptr::null_mut::<Published>(); TABLE_SIZE];
    for (entry, t) in TABLE.iter().zip(&mut taken) {
        *t = entry.swap(ptr::null_mut(), Ordering::AcqRel);
    }
    ffi::synchronize_rcu();
    for p in taken.into_iter().filter(|p| !p.is_null()) {
        // SAFETY: as in `unpublish`: from `Box::into_raw`, unreachable, past a grace period.
        drop(unsafe { Box::from_raw(p) });
    }
}

const SLOT_SHIFT: u32 = 32;
const GENERATION_SHIFT: u32 = 16;

fn handle(slot: usize, generation: u16, export: usize) -> i64 {
    ((slot as i64) << SLOT_SHIFT) | (i64::from(generation) << GENERATION_SHIFT) | export as i64
}

/// Splits a handle into slot, generation and export index.
fn parse(handle: i64) -> Option<(usize, u16, usize)> {
    if handle < 0 {
        return None;
    }
    let slot = (handle >> SLOT_SHIFT) as usize;
    let generation = (handle >> GENERATION_SHIFT) as u16;
    let export = (handle & 0xffff) as usize;
    (slot < TABLE_SIZE).then_some((slot, generation, export))
}

/// A name as BPF passes it: cut at the first NUL, so `sizeof("name")` works.
fn name(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == 0).next().unwrap_or_default()
}

fn lookup(module: &[u8], function: &[u8]) -> i64 {
    let (module, function) = (name(module), name(function));
    let rcu = RcuReadGuard::new();
    for slot in 0..TABLE_SIZE {
        let Some(p) = rcu.get(slot) else { continue };
        if p.module.name().as_bytes() != module {
            continue;
        }
        return match p.module.export_index(function) {
            Some(i) if i <= 0xffff => handle(slot, p.generation, i),
            _ => -i64::from(errno::ENOENT),
        };
    }
    -i64::from(errno::ENOENT)
}

/// Runs `f` on the module a handle names.
///
/// # Safety
///
/// The caller is inside an RCU read-side critical section (the shim's kfunc entry, which ends
/// it even when the call is abandoned: nothing here may own it).
unsafe fn with_module<R>(
    handle: i64,
    f: impl FnOnce(&Module, usize) -> Result<R, RawError>,
) -> Result<R, i32> {
    let (slot, generation, export) = parse(handle).ok_or(errno::ENOENT)?;
    // SAFETY: guaranteed by the caller.
    let rcu = unsafe { RcuReadGuard::held() };
    let p = rcu
        .get(slot)
        .filter(|p| p.generation == generation)
        .ok_or(errno::ENOENT)?;
    f(&p.module, export).map_err(RawError::errno)
}

/// Builds a byte slice from a kfunc's pointer and size.
///
/// # Safety
///
/// `ptr` is valid for `len` bytes for `'a` (the verifier checked the memory and size), or
/// `len` is 0.
unsafe fn bytes<'a>(ptr: *const c_void, len: u32) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(ptr.cast(), len as usize) }
}

/// Mutable version of [`bytes`].
///
/// # Safety
///
/// As [`bytes`], and nothing else accesses the memory during `'a`.
unsafe fn bytes_mut<'a>(ptr: *mut c_void, len: u32) -> &'a mut [u8] {
    if len == 0 || ptr.is_null() {
        return &mut [];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts_mut(ptr.cast(), len as usize) }
}

/// `bpf_wasm_lookup`: a handle for `module`'s export `function`, or `-ENOENT`.
///
/// # Safety
///
/// The pointers are valid for their lengths (the verifier checked them).
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_bpf_lookup(
    module: *const c_void,
    module_len: u32,
    function: *const c_void,
    function_len: u32,
) -> i64 {
    // SAFETY: guaranteed by the caller.
    let (module, function) = unsafe { (bytes(module, module_len), bytes(function, function_len)) };
    lookup(module, function)
}

/// `bpf_wasm_call`: arguments and results are arrays of 8-byte values (read and written
/// unaligned: packet memory need not be aligned). Returns the number of results or `-errno`.
///
/// # Safety
///
/// The pointers are valid for their lengths and `results` is writable; the caller is inside
/// an RCU read-side critical section.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_bpf_call(
    handle: i64,
    args: *const c_void,
    args_len: u32,
    results: *mut c_void,
    results_len: u32,
) -> i32 {
    // SAFETY: guaranteed by the caller.
    let (args, results) = unsafe { (bytes(args, args_len), bytes_mut(results, results_len)) };
    // Both are arrays of 8-byte lanes, used in place (they need not be aligned).
    let (args, rest) = args.as_chunks::<8>();
    if !rest.is_empty() || args.len() > MAX_VALUES {
        return -errno::EINVAL;
    }
    let (results, _) = results.as_chunks_mut::<8>();
    let capacity = results.len().min(MAX_VALUES);
    // SAFETY: the caller is inside an RCU read-side critical section.
    let called = unsafe {
        with_module(handle, |m, export| {
            m.call_raw(ffi::this_cpu(), export, args, &mut results[..capacity])
        })
    };
    match called {
        Ok(n) => n as i32,
        Err(e) => -e,
    }
}

/// `bpf_wasm_call_buf`: copies `buf` in and out of the guest's buffer around the call.
/// Returns 0 with the function's result in `*result`, or `-errno`.
///
/// # Safety
///
/// `buf` is valid and writable for `len` bytes, `result` for 8 bytes; the caller is inside an
/// RCU read-side critical section.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_bpf_call_buf(
    handle: i64,
    buf: *mut c_void,
    len: u32,
    result: *mut i64,
) -> i32 {
    // SAFETY: guaranteed by the caller.
    let buf = unsafe { bytes_mut(buf, len) };
    // SAFETY: the caller is inside an RCU read-side critical section.
    let called = unsafe {
        with_module(handle, |m, export| {
            m.call_buffer(ffi::this_cpu(), export, buf)
        })
    };
    match called {
        Ok(v) => {
            if !result.is_null() {
                // SAFETY: the verifier checked 8 writable bytes; they may be unaligned.
                unsafe { result.write_unaligned(v) };
            }
            0
        }
        Err(e) => -e,
    }
}
