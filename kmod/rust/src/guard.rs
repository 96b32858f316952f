//! Containment of failures inside a request: a request runs under a [`Guard`], and when
//! something in it cannot go on (in practice: an allocation failed inside the engine, whose
//! `Vec`s and `Box`es have no way to report it, so Rust panics), the panic handler abandons
//! the request instead of crashing the kernel.
//!
//! Abandoning switches back from the request's dedicated stack to the task stack, as if the
//! work had returned (the shim saved every register the caller keeps), then gives back every
//! allocation the request made and still held: the allocator links each block allocated under
//! a guard into the guard's list ([`crate::alloc_kernel::Header`]). The request then fails
//! with `ENOMEM`, and nothing it did remains.
//!
//! That is only sound while the request's new blocks are private to it. So:
//! - a request [`commit`]s its list (unlinks every block, which it then keeps) right before it
//!   makes something reachable from shared state, such as the registry, and its code that
//!   changes shared state does not fail half-way (fallible allocations only);
//! - code that runs on a shared instance (a call) runs in a [`shared`] section, which commits
//!   at its end: a request abandoned inside keeps its blocks (the instance may own some) and
//!   the instance stays taken, so it is never used again; both are freed with the module at
//!   unload;
//! - the registry mutex, if the request held it, is released, a module it used through
//!   [`holding`] is dropped, and the BPF map references it took and still held
//!   ([`track_map`]) are given back.
//!
//! Outside a guard (module init and exit, eBPF calls), a panic still ends in `BUG()`.

use crate::alloc_kernel::Header;
use crate::ffi::{self, AbandonPoint, WorkStackError};
use crate::host::FixedLine;
use alloc::sync::Arc;
use core::any::Any;
use core::cell::Cell;
use core::fmt::Write;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use wasm_engine::maps::MAX_MAPS;

/// Most requests under a guard at once; more get `EBUSY`.
pub const MAX_GUARDS: usize = 64;

/// Tasks running a guarded request (their `current` pointers), and their guards.
static OWNERS: [AtomicUsize; MAX_GUARDS] = [const { AtomicUsize::new(0) }; MAX_GUARDS];
static GUARDS: [AtomicPtr<Guard>; MAX_GUARDS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; MAX_GUARDS];

/// Requests abandoned, blocks they gave back, and blocks kept for an instance lost to it.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);
static FREED: AtomicUsize = AtomicUsize::new(0);

/// One request's state for containment.
///
/// # Invariants
///
/// Only the task that registered the guard (its owner in [`OWNERS`]) touches it; `head` is an
/// initialised list head while the guard is registered.
struct Guard {
    head: Header,
    held: Cell<Option<Arc<dyn Any + Send + Sync>>>,
    abandon: Cell<Option<AbandonPoint>>,
    shared: Cell<usize>,
    registry_held: Cell<bool>,
    /// BPF map references the request holds (their handles), given back if it is abandoned.
    maps: [Cell<u64>; MAX_MAPS],
}

/// Why a guarded request did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// [`MAX_GUARDS`] requests are running.
    Busy,
    /// No memory for the dedicated stack.
    NoStack,
    /// The request was abandoned (out of memory).
    Abandoned,
}

/// The guard of the current task, if it runs a guarded request in process context.
fn current() -> Option<&'static Guard> {
    if !ffi::request_context() {
        return None;
    }
    let me = ffi::current_task();
    let i = OWNERS
        .iter()
        .position(|o| o.load(Ordering::Relaxed) == me)?;
    // SAFETY: slot `i` belongs to the current task, which registered a live guard there and
    // unregisters it before the guard goes away (see `run`).
    unsafe { GUARDS[i].load(Ordering::Relaxed).as_ref() }
}

/// Links a newly allocated block into the current guard's list, if any.
///
/// # Safety
///
/// `header` is the unlinked header of a block just allocated by the current task.
pub unsafe fn track(header: *mut Header) {
    if let Some(g) = current() {
        // SAFETY: the guard's head is initialised (invariant) and `header` is unlinked.
        unsafe { Header::push((&raw const g.head).cast_mut(), header) };
    }
}

/// Unlinks every block of the current guard: the request keeps them (they become reachable
/// from shared state, or outlive the request).
pub fn commit() {
    if let Some(g) = current() {
        // SAFETY: the current task owns the guard and its list.
        unsafe { Header::detach_all((&raw const g.head).cast_mut()) };
        g.maps.iter().for_each(|m| m.set(0));
    }
}

/// Notes that the current request took a reference on the BPF map `handle`: if the request
/// is abandoned before it [`commit`]s, the reference is given back.
pub fn track_map(handle: u64) {
    if let Some(slot) = current().and_then(|g| g.maps.iter().find(|m| m.get() == 0)) {
        slot.set(handle);
    }
}

/// Notes that the reference on `handle` was given back (or handed to shared state).
pub fn untrack_map(handle: u64) {
    if let Some(slot) = current().and_then(|g| g.maps.iter().find(|m| m.get() == handle)) {
        slot.set(0);
    }
}

/// Runs `f` as code on a shared instance (see the module documentation). Commits when `f`
/// returns, while the instance is still the caller's: blocks it now owns may be freed by the
/// next caller, on another task.
pub fn shared<R>(f: impl FnOnce() -> R) -> R {
    let g = current();
    if let Some(g) = g {
        g.shared.set(g.shared.get() + 1);
    }
    let r = f();
    if let Some(g) = g {
        g.shared.set(g.shared.get() - 1);
        commit();
    }
    r
}

/// Runs `f` on `value` while the current guard holds the only reference this request has to
/// it, so that an abandoned request still drops it (a reference left in an abandoned frame
/// would keep it alive for ever).
pub fn holding<T: Send + Sync + 'static, R>(value: Arc<T>, f: impl FnOnce(&T) -> R) -> R {
    let Some(g) = current() else {
        return f(&value);
    };
    let ptr = Arc::as_ptr(&value);
    g.held.set(Some(value));
    // SAFETY: the guard keeps the `Arc` alive until after `f` returns, and nothing takes it
    // out meanwhile (requests do not nest).
    let r = f(unsafe { &*ptr });
    drop(g.held.take());
    r
}

/// Notes that the current task took (`true`) or released the registry mutex.
pub fn registry_held(held: bool) {
    if let Some(g) = current() {
        g.registry_held.set(held);
    }
}

/// Requests abandoned since the module was loaded.
pub fn abandoned() -> usize {
    ABANDONED.load(Ordering::Relaxed)
}

/// Blocks abandoned requests gave back.
pub fn freed() -> usize {
    FREED.load(Ordering::Relaxed)
}

/// Registers the current task's guard; `None` if all slots are taken.
fn register(guard: &Guard) -> Option<usize> {
    let me = ffi::current_task();
    let i = OWNERS.iter().position(|o| {
        o.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })?;
    GUARDS[i].store((guard as *const Guard).cast_mut(), Ordering::Relaxed);
    Some(i)
}

fn unregister(i: usize) {
    GUARDS[i].store(ptr::null_mut(), Ordering::Relaxed);
    OWNERS[i].store(0, Ordering::Release);
}

/// Runs `f` on a dedicated stack under a guard. Returns its result and the stack's peak use.
///
/// # Errors
///
/// [`Failure`]: every allocation `f` held is given back when it was abandoned (see the module
/// documentation for what is kept).
pub fn run<R>(f: impl FnOnce() -> R) -> Result<(R, usize), Failure> {
    let guard = Guard {
        head: Header::new(),
        held: Cell::new(None),
        abandon: Cell::new(None),
        shared: Cell::new(0),
        registry_held: Cell::new(false),
        maps: [const { Cell::new(0) }; MAX_MAPS],
    };
    let head = (&raw const guard.head).cast_mut();
    // SAFETY: `guard` stays at this address until this function returns, after `unregister`.
    unsafe { Header::init_list(head) };
    let slot = register(&guard).ok_or(Failure::Busy)?;
    let outcome = ffi::on_work_stack(|abandon| {
        guard.abandon.set(Some(abandon));
        f()
    });
    let result = match outcome {
        Ok(r) => {
            // SAFETY: the current task owns the guard's list.
            unsafe { Header::detach_all(head) };
            Ok(r)
        }
        Err(WorkStackError::NoMemory) => Err(Failure::NoStack),
        Err(WorkStackError::Abandoned) => {
            recover(&guard);
            Err(Failure::Abandoned)
        }
    };
    unregister(slot);
    result
}

/// After abandoning: gives back the request's blocks (or keeps them for a lost instance) and
/// the registry mutex.
fn recover(guard: &Guard) {
    let head = (&raw const guard.head).cast_mut();
    if guard.registry_held.get() {
        ffi::registry_unlock_abandoned();
    }
    let (mut freed, mut kept) = (0, 0);
    if guard.shared.get() > 0 {
        // SAFETY: the current task owns the list.
        kept = unsafe { Header::detach_all(head) };
    } else {
        // SAFETY: the request's code will never run again, and none of its blocks is
        // reachable from shared state (it commits before publishing), so nothing uses them.
        while let Some(h) = unsafe { Header::first(head) } {
            // SAFETY: as above; `h` is linked in this task's list.
            unsafe { Header::free_block(h) };
            freed += 1;
        }
    }
    drop(guard.held.take());
    for m in guard.maps.iter().map(Cell::get).filter(|m| *m != 0) {
        // SAFETY: the request took this reference and neither gave it back nor handed it to
        // shared state (either untracks it), and its code will never run again.
        unsafe { ffi::map_put(m) };
    }
    ABANDONED.fetch_add(1, Ordering::Relaxed);
    FREED.fetch_add(freed, Ordering::Relaxed);
    let mut line = FixedLine::new();
    let _ = write!(
        line,
        "wasm: request abandoned (out of memory): {freed} allocations given back"
    );
    if kept > 0 {
        let _ = write!(
            line,
            "; it stopped inside a call: that instance is lost and its {kept} allocations are freed with the module"
        );
    }
    ffi::log(line.as_bytes());
}

/// Called by the panic handler: abandons the current request if it runs under a guard, on its
/// dedicated stack. Returns only when there is none (the caller then ends in `BUG()`).
pub fn abandon_current() {
    if let Some(abandon) = current().and_then(|g| g.abandon.get()) {
        // SAFETY: the current task runs the guarded request whose dedicated stack `abandon`
        // belongs to (the point is only set on that stack, inside `run`), and panics never
        // leave a stack frame that must run (panic = abort, nothing unwinds).
        unsafe { ffi::abandon(abandon) }
    }
}
