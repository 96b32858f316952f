//! Every call into the C shim (`wasm_main.c`), behind safe wrappers.
//!
//! This is the only module that declares foreign functions; the rest of the crate is safe Rust.

use core::ffi::c_void;

mod raw {
    use core::ffi::c_void;

    extern "C" {
        pub fn wasm_shim_alloc(size: usize) -> *mut c_void;
        pub fn wasm_shim_free(ptr: *mut c_void);
        pub fn wasm_shim_log(msg: *const u8, len: usize);
        pub fn wasm_shim_possible_cpus() -> u32;
        pub fn wasm_shim_this_cpu() -> u32;
        pub fn wasm_shim_between_slices() -> bool;
        pub fn wasm_shim_now_ns() -> u64;
        pub fn wasm_shim_realtime_ns() -> u64;
        pub fn wasm_shim_random_bytes(buf: *mut c_void, len: usize);
        pub fn wasm_shim_registry_lock();
        pub fn wasm_shim_registry_unlock();
        pub fn wasm_shim_copy_from_user(to: *mut c_void, from: *const c_void, n: usize) -> usize;
        pub fn wasm_shim_copy_to_user(to: *mut c_void, from: *const c_void, n: usize) -> usize;
        pub fn wasm_shim_stack_paint();
        pub fn wasm_shim_stack_peak() -> usize;
        pub fn wasm_shim_stack_size() -> usize;
        /// Never returns (`BUG()`); declared returning so that [`super::bug`] can end the
        /// path visibly for objtool.
        pub fn wasm_shim_bug();
        pub fn wasm_shim_on_work_stack(job: *mut c_void, peak: *mut usize) -> i32;
        /// Never returns; declared returning for the same reason as `wasm_shim_bug`.
        pub fn wasm_shim_abandon(tos: *mut c_void);
        pub fn wasm_shim_request_context() -> bool;
        pub fn wasm_shim_bpf_abandon();
        pub fn wasm_shim_current() -> *mut c_void;
        pub fn wasm_shim_inject_alloc_failure() -> bool;
        pub fn wasm_shim_work_stack_size() -> usize;
        pub fn wasm_shim_rcu_read_lock();
        pub fn wasm_shim_rcu_read_unlock();
        pub fn wasm_shim_synchronize_rcu();
    }
}

/// Allocates `size` bytes; null on failure. In process context `kvmalloc` charged to the
/// caller's memory cgroup, failing rather than invoking the OOM killer; in atomic context
/// `kmalloc(GFP_ATOMIC)`; never in NMI context.
pub fn alloc(size: usize) -> *mut u8 {
    // SAFETY: the shim accepts any size and returns null or a fresh allocation.
    unsafe { raw::wasm_shim_alloc(size).cast() }
}

/// Frees memory from [`alloc`].
///
/// # Safety
///
/// `ptr` must come from [`alloc`] and not have been freed.
pub unsafe fn free(ptr: *mut u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { raw::wasm_shim_free(ptr.cast()) }
}

/// Writes one line to the kernel log at `KERN_INFO`, verbatim.
pub fn log(line: &[u8]) {
    // SAFETY: the pointer and length describe a live slice; the shim only reads it.
    unsafe { raw::wasm_shim_log(line.as_ptr(), line.len()) }
}

/// `nr_cpu_ids`: the number of possible CPU ids.
pub fn possible_cpus() -> usize {
    // SAFETY: reads a kernel variable.
    unsafe { raw::wasm_shim_possible_cpus() as usize }
}

/// The CPU the caller runs on now (it may move right after).
pub fn this_cpu() -> usize {
    // SAFETY: `raw_smp_processor_id()` has no preconditions.
    unsafe { raw::wasm_shim_this_cpu() as usize }
}

/// `cond_resched()`, then whether the current task may go on (no fatal signal pending).
pub fn between_slices() -> bool {
    // SAFETY: called only from process context (the `/dev/wasm` write path).
    unsafe { raw::wasm_shim_between_slices() }
}

/// `ktime_get_ns()`.
pub fn now_ns() -> u64 {
    // SAFETY: no preconditions.
    unsafe { raw::wasm_shim_now_ns() }
}

/// `ktime_get_real_ns()`.
pub fn realtime_ns() -> u64 {
    // SAFETY: no preconditions.
    unsafe { raw::wasm_shim_realtime_ns() }
}

/// `get_random_bytes()`: fills `buf` from the kernel RNG (any context).
pub fn random_bytes(buf: &mut [u8]) {
    // SAFETY: `buf` is a live, writable buffer of that length.
    unsafe { raw::wasm_shim_random_bytes(buf.as_mut_ptr().cast(), buf.len()) }
}

/// Whether the caller runs a `/dev/wasm` request: task context, not inside a kfunc.
pub fn request_context() -> bool {
    // SAFETY: reads the preempt count and a per-CPU counter.
    unsafe { raw::wasm_shim_request_context() }
}

/// The current task (`current`), as a number that identifies it while it runs.
pub fn current_task() -> usize {
    // SAFETY: `current` is always valid in task context; only compared, never dereferenced.
    unsafe { raw::wasm_shim_current() as usize }
}

/// Whether this allocation is the one the `fail_alloc` module parameter asks to fail.
pub fn inject_alloc_failure() -> bool {
    // SAFETY: counts down a module parameter atomically.
    unsafe { raw::wasm_shim_inject_alloc_failure() }
}

/// Holds the shim's registry mutex; released on drop.
///
/// # Invariants
///
/// While a `RegistryLock` exists, the current task holds `wasm_registry_lock`.
pub struct RegistryLock(());

impl RegistryLock {
    /// Takes the registry mutex, sleeping if needed. Process context only.
    pub fn lock() -> Self {
        // SAFETY: process context; the matching unlock is in `drop`.
        unsafe { raw::wasm_shim_registry_lock() };
        crate::guard::registry_held(true);
        RegistryLock(())
    }
}

impl Drop for RegistryLock {
    fn drop(&mut self) {
        crate::guard::registry_held(false);
        // SAFETY: by the invariant this task holds the mutex.
        unsafe { raw::wasm_shim_registry_unlock() }
    }
}

/// Releases the registry mutex held by a [`RegistryLock`] of an abandoned request (whose
/// `drop` will never run).
pub fn registry_unlock_abandoned() {
    // SAFETY: called once by `guard::recover` when the abandoned request held the mutex, from
    // the same task.
    unsafe { raw::wasm_shim_registry_unlock() }
}

/// A user-space address handed to `read(2)` or `write(2)`; only the shim dereferences it.
#[derive(Clone, Copy)]
pub struct UserPtr(pub *mut c_void);

/// Copies `to.len()` bytes from user space. Returns `false` if some were not accessible.
pub fn copy_from_user(to: &mut [u8], from: UserPtr) -> bool {
    // SAFETY: `to` is a live, writable kernel buffer of that length; `copy_from_user` checks
    // the user range itself.
    unsafe { raw::wasm_shim_copy_from_user(to.as_mut_ptr().cast(), from.0, to.len()) == 0 }
}

/// Copies `from` to user space. Returns `false` if some bytes could not be written.
pub fn copy_to_user(to: UserPtr, from: &[u8]) -> bool {
    // SAFETY: `from` is a live kernel buffer; `copy_to_user` checks the user range itself.
    unsafe { raw::wasm_shim_copy_to_user(to.0, from.as_ptr().cast(), from.len()) == 0 }
}

/// Fills the unused part of the current task's stack with a pattern, for [`stack_peak`].
pub fn stack_paint() {
    // SAFETY: process context; the shim writes only below its own frame.
    unsafe { raw::wasm_shim_stack_paint() }
}

/// Deepest stack use since the last [`stack_paint`], in bytes from the stack's top.
pub fn stack_peak() -> usize {
    // SAFETY: process context; reads the current task's stack.
    unsafe { raw::wasm_shim_stack_peak() }
}

/// `THREAD_SIZE`.
pub fn stack_size() -> usize {
    // SAFETY: returns a constant.
    unsafe { raw::wasm_shim_stack_size() }
}

/// `BUG()`: ends the current task with an oops. Only for a Rust panic, which cannot unwind.
pub fn bug() -> ! {
    // SAFETY: always allowed; never returns.
    unsafe { raw::wasm_shim_bug() };
    // SAFETY: not reached (BUG() does not return). `ud2` ends the function where objtool can
    // see it, since objtool cannot know that the shim's function does not return.
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

/// Where [`abandon`] returns to: the top of a dedicated stack, where the shim saved the task
/// stack pointer.
#[derive(Clone, Copy)]
pub struct AbandonPoint(*mut c_void);

/// Why [`on_work_stack`] has no result.
pub enum WorkStackError {
    /// The stack could not be allocated.
    NoMemory,
    /// The work was abandoned ([`abandon`]).
    Abandoned,
}

/// The job [`on_work_stack`] hands through the shim.
type Job<'a> = &'a mut dyn FnMut(AbandonPoint);

/// Runs `f` on a dedicated, freshly allocated kernel stack of [`work_stack_size`] bytes (the
/// task stack is too small for wasmi's parser and compiler). `f` gets the point from which
/// [`abandon`] ends it early. Returns `f`'s result and the deepest use of that stack.
pub fn on_work_stack<R>(f: impl FnOnce(AbandonPoint) -> R) -> Result<(R, usize), WorkStackError> {
    let mut f = Some(f);
    let mut result = None;
    let mut run = |abandon| {
        if let Some(f) = f.take() {
            result = Some(f(abandon));
        }
    };
    let mut job: Job<'_> = &mut run;
    let mut peak = 0usize;
    // SAFETY: `job` points to a live `Job` for the duration of the call; the shim calls
    // `wasm_rs_on_work_stack` with it exactly once, synchronously, before returning.
    let rc = unsafe { raw::wasm_shim_on_work_stack((&raw mut job).cast(), &mut peak) };
    match rc {
        0 => result.map(|r| (r, peak)).ok_or(WorkStackError::Abandoned),
        1 => Err(WorkStackError::Abandoned),
        _ => Err(WorkStackError::NoMemory),
    }
}

/// Entry point of the dedicated stack, called by the shim.
///
/// # Safety
///
/// `job` is the pointer [`on_work_stack`] passed to the shim, `tos` the stack's top slot.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_on_work_stack(job: *mut c_void, tos: *mut c_void) {
    // SAFETY: guaranteed by the caller: a live `Job`, used by this call only.
    let job = unsafe { &mut *job.cast::<Job<'_>>() };
    job(AbandonPoint(tos));
}

/// Ends the work running on a dedicated stack: [`on_work_stack`] returns
/// [`WorkStackError::Abandoned`] at once. Nothing of the work's frames runs again (no
/// destructor either).
///
/// # Safety
///
/// The caller runs on the dedicated stack of `point`, inside its `on_work_stack` call.
pub unsafe fn abandon(point: AbandonPoint) -> ! {
    // SAFETY: guaranteed by the caller: the shim's saved state at `point.0` is live.
    unsafe { raw::wasm_shim_abandon(point.0) };
    // SAFETY: not reached; `ud2` ends the path where objtool sees it (as in `bug`).
    unsafe { core::arch::asm!("ud2", options(noreturn)) }
}

/// Ends the kfunc call running on this CPU, if any (it returns `-ENOMEM` to its program);
/// returns only when there is none. Called by the panic handler.
pub fn bpf_abandon() {
    // SAFETY: the shim jumps back to the innermost kfunc entry of this CPU, whose frames are
    // all below the current one; nothing of them runs again (panic = abort: no destructor
    // was going to run either).
    unsafe { raw::wasm_shim_bpf_abandon() }
}

/// Size of the stack [`on_work_stack`] uses.
pub fn work_stack_size() -> usize {
    // SAFETY: returns a constant.
    unsafe { raw::wasm_shim_work_stack_size() }
}

/// `rcu_read_lock()`. Pair with [`rcu_read_unlock`] on the same CPU and task.
pub fn rcu_read_lock() {
    // SAFETY: allowed in any context.
    unsafe { raw::wasm_shim_rcu_read_lock() }
}

/// `rcu_read_unlock()`, ending a section opened by [`rcu_read_lock`].
pub fn rcu_read_unlock() {
    // SAFETY: callers pair it with `rcu_read_lock` (see `bpf::RcuReadGuard`).
    unsafe { raw::wasm_shim_rcu_read_unlock() }
}

/// `synchronize_rcu()`: waits for every RCU reader that started before. Process context.
pub fn synchronize_rcu() {
    // SAFETY: called only from process context, outside RCU read-side sections.
    unsafe { raw::wasm_shim_synchronize_rcu() }
}
