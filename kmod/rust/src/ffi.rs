//! Every call into the C shim (`wasm_main.c`), behind safe wrappers.
//!
//! This is the only module that declares foreign functions; the rest of the crate is safe Rust.

use core::ffi::{c_char, c_void, CStr};
use core::ptr;
use core::sync::atomic::{AtomicU32, Ordering};
use wasm_engine::maps::MapRef;

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
        pub fn wasm_shim_clock_mult() -> u32;
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
        pub fn wasm_shim_map_get(fd: i32, out: *mut super::ShimMap) -> i32;
        pub fn wasm_shim_map_put(map: *mut c_void);
        pub fn wasm_shim_map_lookup(map: *mut c_void, key: *const u8, value: *mut u8) -> i32;
        pub fn wasm_shim_map_update(
            map: *mut c_void,
            key: *const u8,
            value: *const u8,
            flags: u64,
        ) -> i32;
        pub fn wasm_shim_map_delete(map: *mut c_void, key: *const u8) -> i32;
        pub fn wasm_shim_trace_load(name: *const u8, version: u32, instances: u32);
        pub fn wasm_shim_trace_unload(name: *const u8);
        pub fn wasm_shim_trace_call_failed(
            name: *const u8,
            cpu: u32,
            bpf: bool,
            err: i32,
            fuel: u64,
            out_of_fuel: bool,
        );
        pub fn wasm_shim_native_call(call: *mut super::NativeCall) -> i32;
        pub fn wasm_shim_module_get(owner: *mut c_void) -> bool;
        pub fn wasm_shim_module_put(owner: *mut c_void);
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

/// `WASM_SHIM_CLOCK_SHIFT`.
const CLOCK_SHIFT: u32 = 22;
/// TSC ticks to nanoseconds, scaled by 2^[`CLOCK_SHIFT`]; 0 to use [`now_ns`].
static CLOCK_MULT: AtomicU32 = AtomicU32::new(0);

/// Reads the TSC's rate for [`clock_ns`]. Module init.
pub fn clock_init() {
    // SAFETY: reads `tsc_khz`; no preconditions.
    CLOCK_MULT.store(unsafe { raw::wasm_shim_clock_mult() }, Ordering::Relaxed);
}

/// The TSC in nanoseconds: a few instructions, monotonic on one CPU (for call latencies);
/// [`now_ns`] if the TSC was not calibrated.
pub fn clock_ns() -> u64 {
    let mult = CLOCK_MULT.load(Ordering::Relaxed);
    if mult == 0 {
        return now_ns();
    }
    // SAFETY: `rdtsc` has no preconditions (the kernel never disables it for itself).
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    ((u128::from(tsc) * u128::from(mult)) >> CLOCK_SHIFT) as u64
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

/// `struct wasm_shim_map`.
#[repr(C)]
pub struct ShimMap {
    map: *mut c_void,
    id: u32,
    kind: u32,
    key_size: u32,
    value_size: u32,
}

/// Takes a reference on the BPF map behind `fd` (of the calling process) and describes it:
/// its handle (the `struct bpf_map` pointer) and sizes, as [`MapRef`]. Process context.
///
/// # Errors
///
/// A negative errno: `-EBADF` (not a map), `-EOPNOTSUPP` (a type or value the guests may not
/// use), `-E2BIG` (key longer than 512 bytes).
pub fn map_get(fd: i32) -> Result<MapRef, i32> {
    let mut out = ShimMap {
        map: ptr::null_mut(),
        id: 0,
        kind: 0,
        key_size: 0,
        value_size: 0,
    };
    // SAFETY: `out` is a valid, writable `struct wasm_shim_map`; any fd is accepted.
    match unsafe { raw::wasm_shim_map_get(fd, &mut out) } {
        0 => Ok(MapRef {
            handle: out.map as u64,
            id: out.id,
            kind: out.kind,
            key_size: out.key_size,
            value_size: out.value_size,
        }),
        e => Err(e),
    }
}

/// Gives back a reference from [`map_get`].
///
/// # Safety
///
/// `map` is the handle of a [`MapRef`] from [`map_get`] whose reference was not given back.
pub unsafe fn map_put(map: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { raw::wasm_shim_map_put(map as *mut c_void) }
}

/// `bpf.map_lookup`: copies the value of `key` into `value`. 0 or a negative errno.
///
/// # Safety
///
/// `map` is the handle of a live [`MapRef`]; `key` and `value` have its key and value sizes.
pub unsafe fn map_lookup(map: u64, key: &[u8], value: &mut [u8]) -> i32 {
    // SAFETY: guaranteed by the caller: the map is referenced and the buffers are its sizes.
    unsafe { raw::wasm_shim_map_lookup(map as *mut c_void, key.as_ptr(), value.as_mut_ptr()) }
}

/// `bpf.map_update`. 0 or a negative errno.
///
/// # Safety
///
/// As [`map_lookup`].
pub unsafe fn map_update(map: u64, key: &[u8], value: &[u8], flags: u64) -> i32 {
    // SAFETY: as in `map_lookup`.
    unsafe { raw::wasm_shim_map_update(map as *mut c_void, key.as_ptr(), value.as_ptr(), flags) }
}

/// `bpf.map_delete`. 0 or a negative errno.
///
/// # Safety
///
/// As [`map_lookup`], for the key.
pub unsafe fn map_delete(map: u64, key: &[u8]) -> i32 {
    // SAFETY: as in `map_lookup`.
    unsafe { raw::wasm_shim_map_delete(map as *mut c_void, key.as_ptr()) }
}

/// A registry name made NUL-terminated for a tracepoint (cut at 64 bytes, the longest name).
struct TraceName([u8; wasm_proto::MAX_NAME_LEN + 1]);

impl TraceName {
    fn new(name: &str) -> Self {
        let mut n = [0u8; wasm_proto::MAX_NAME_LEN + 1];
        let len = name.len().min(wasm_proto::MAX_NAME_LEN);
        n[..len].copy_from_slice(&name.as_bytes()[..len]);
        TraceName(n)
    }
}

/// Fires the `wasm:wasm_load` tracepoint (a load or a replace).
pub fn trace_load(name: &str, version: u32, instances: u32) {
    let name = TraceName::new(name);
    // SAFETY: `name` is NUL-terminated and outlives the call; the shim only reads it.
    unsafe { raw::wasm_shim_trace_load(name.0.as_ptr(), version, instances) }
}

/// Fires the `wasm:wasm_unload` tracepoint.
pub fn trace_unload(name: &str) {
    let name = TraceName::new(name);
    // SAFETY: as in `trace_load`.
    unsafe { raw::wasm_shim_trace_unload(name.0.as_ptr()) }
}

/// Fires `wasm:wasm_fuel_exhausted` or `wasm:wasm_trap` for a failed call of module `name` on
/// the instance of `cpu`, with its errno and fuel budget. Any context.
pub fn trace_call_failed(name: &str, cpu: usize, bpf: bool, errno: i32, fuel: u64) {
    let out_of_fuel = errno == wasm_proto::errno::ETIME;
    let name = TraceName::new(name);
    // SAFETY: as in `trace_load`; tracepoints may fire in any context but NMI, which the
    // kfuncs refuse.
    unsafe {
        raw::wasm_shim_trace_call_failed(name.0.as_ptr(), cpu as u32, bpf, errno, fuel, out_of_fuel)
    }
}

/// A native module's entry: `wasm_native_entry_t`.
type EntryFn = unsafe extern "C" fn(inst: *mut c_void, lanes: *mut u64);
/// A native module's instantiation and release functions.
type InitFn = unsafe extern "C" fn(inst: *mut c_void);

/// `struct wasm_native_func` (`kmod/wasm_native.h`).
#[repr(C)]
struct RawNativeFunc {
    module: *const c_char,
    name: *const c_char,
    params: *const c_char,
    results: *const c_char,
    entry: Option<EntryFn>,
}

/// `struct wasm_native_module` (`kmod/wasm_native.h`).
#[repr(C)]
pub struct RawNativeModule {
    abi: u32,
    flags: u32,
    name: *const c_char,
    owner: *mut c_void,
    wasm_size: u64,
    instance_size: usize,
    instantiate: Option<InitFn>,
    release: Option<InitFn>,
    exports: *const RawNativeFunc,
    nr_exports: u32,
    imports: *const RawNativeFunc,
    nr_imports: u32,
    instances: u32,
    fuel: u64,
    bpf_fuel: u64,
    memory: u64,
}

/// `struct wasm_native_memory`.
#[repr(C)]
struct RawNativeMemory {
    data: *mut u8,
    size: u64,
    pages: u32,
    max_pages: u32,
}

/// The head of `struct wasm_native_instance`.
#[repr(C)]
struct RawNativeInstance {
    fuel: i64,
    stack_floor: usize,
    memory: *mut RawNativeMemory,
}

/// `struct wasm_shim_native_call` (`wasm_shim.h`).
#[repr(C)]
pub struct NativeCall {
    entry: Option<EntryFn>,
    init: Option<InitFn>,
    inst: *mut c_void,
    lanes: *mut u64,
    fuel: u64,
    owner: *const c_void,
    cpu: u32,
    flags: u32,
    fuel_used: u64,
    trap: i32,
    prev: *mut NativeCall,
    sp: usize,
    fuel_left: u64,
}

/// `WASM_KFUNCS_NO_BTF`: `wasm_kfuncs_register()` found no module BTF.
pub const KFUNCS_NO_BTF: i32 = 1;
/// `WASM_KFUNCS_UNRESOLVED`: the kfunc set's BTF ids were never resolved.
pub const KFUNCS_UNRESOLVED: i32 = 2;

/// `WASM_NATIVE_FPU`: the code uses floating point.
const NATIVE_FPU: u32 = 0x1;
/// `WASM_SHIM_NATIVE_MAY_SLEEP`.
const CALL_MAY_SLEEP: u32 = 0x2;

/// The bytes of a C string (empty for null).
///
/// # Safety
///
/// `s` is null or a NUL-terminated string that outlives `'a`.
pub unsafe fn c_bytes<'a>(s: *const c_char) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(s) }.to_bytes()
}

/// A function of a native module's description.
pub struct NativeFunc<'a> {
    /// The import module (empty for exports).
    pub module: &'a [u8],
    /// The name.
    pub name: &'a [u8],
    /// Parameter types, one letter each (`i I f F`).
    pub params: &'a [u8],
    /// Result types.
    pub results: &'a [u8],
}

/// A native module's description, as its kernel module registered it.
///
/// # Invariants
///
/// `raw` points to a `struct wasm_native_module` (with its strings, arrays and code) that
/// stays valid while this value lives: the kernel module that holds it is in its init or
/// exit function (which called wasm.ko), or pinned by a reference ([`NativeDesc::pin`]).
#[derive(Clone, Copy)]
pub struct NativeDesc {
    raw: *const RawNativeModule,
}

// SAFETY: the description is immutable once registered; its code may run on any CPU.
unsafe impl Send for NativeDesc {}
// SAFETY: as for `Send`: nothing in it changes.
unsafe impl Sync for NativeDesc {}

impl NativeDesc {
    /// Wraps the description passed to `wasm_native_register` or `wasm_native_unregister`.
    ///
    /// # Safety
    ///
    /// `raw` is the argument of one of those calls, made by the module's init or exit
    /// function, and the value is used only during that call or while [`Self::pin`]ned.
    pub unsafe fn new(raw: *const RawNativeModule) -> Self {
        NativeDesc { raw }
    }

    fn raw(&self) -> &RawNativeModule {
        // SAFETY: valid by the type invariant.
        unsafe { &*self.raw }
    }

    /// Whether `other` describes the same module.
    pub fn same(&self, other: &NativeDesc) -> bool {
        ptr::eq(self.raw, other.raw)
    }

    /// The registry name.
    pub fn name(&self) -> &[u8] {
        // SAFETY: a NUL-terminated string of the description (type invariant).
        unsafe { c_bytes(self.raw().name) }
    }

    /// Size of the Wasm module it was compiled from.
    pub fn wasm_size(&self) -> u64 {
        self.raw().wasm_size
    }

    /// Whether its code uses floating point.
    pub fn fpu(&self) -> bool {
        self.raw().flags & NATIVE_FPU != 0
    }

    /// The limits its parameters ask for: instances, fuel, eBPF fuel, memory (0: default).
    pub fn limits(&self) -> (u32, u64, u64, u64) {
        let r = self.raw();
        (r.instances, r.fuel, r.bpf_fuel, r.memory)
    }

    fn funcs(&self, table: *const RawNativeFunc, n: u32) -> impl Iterator<Item = NativeFunc<'_>> {
        (0..n as usize).map(move |i| {
            // SAFETY: `table` has `n` entries, with NUL-terminated strings (type invariant).
            unsafe {
                let f = &*table.add(i);
                NativeFunc {
                    module: c_bytes(f.module),
                    name: c_bytes(f.name),
                    params: c_bytes(f.params),
                    results: c_bytes(f.results),
                }
            }
        })
    }

    /// The exports, in order.
    pub fn exports(&self) -> impl Iterator<Item = NativeFunc<'_>> {
        self.funcs(self.raw().exports, self.raw().nr_exports)
    }

    /// The imports, in the order of `wasm_native_import`'s indices.
    pub fn imports(&self) -> impl Iterator<Item = NativeFunc<'_>> {
        self.funcs(self.raw().imports, self.raw().nr_imports)
    }

    /// Takes a reference on the kernel module that holds the description, so that it stays
    /// loaded; `false` if it is going away.
    pub fn pin(&self) -> bool {
        // SAFETY: `owner` is the module's `THIS_MODULE`, live by the type invariant.
        unsafe { raw::wasm_shim_module_get(self.raw().owner) }
    }

    /// Drops the reference [`Self::pin`] took.
    ///
    /// # Safety
    ///
    /// Pairs with one successful `pin`; the description is not used afterwards unless
    /// another reference keeps it valid.
    pub unsafe fn unpin(&self) {
        // SAFETY: guaranteed by the caller.
        unsafe { raw::wasm_shim_module_put(self.raw().owner) }
    }
}

/// How a native call runs out.
pub enum NativeOutcome {
    /// It returned; the fuel it used.
    Returned(u64),
    /// It trapped (a `WASM_NATIVE_TRAP_*` or `wasm_rt_trap_t` code); the fuel it used.
    Trapped(i32, u64),
    /// It could not start: the FPU is not usable in this context.
    Busy,
}

/// One instance of a native module: its zeroed memory of `instance_size` bytes, instantiated.
///
/// # Invariants
///
/// `mem` holds `instance_size` bytes of `desc`, aligned for its head, instantiated by `desc`'s
/// code (until [`NativeInstance::release`]); only the holder of `&mut self` uses it.
pub struct NativeInstance {
    mem: *mut u8,
    layout: core::alloc::Layout,
}

// SAFETY: an instance belongs to no CPU or task; whoever holds it exclusively may call it.
unsafe impl Send for NativeInstance {}

impl NativeInstance {
    /// Allocates and instantiates an instance of `desc` (memories, tables, data, start
    /// function), as a call with `fuel` from process context, `owner` answering its host
    /// calls.
    ///
    /// # Errors
    ///
    /// `Err(None)` when out of memory, `Err(Some(trap))` when the instantiation trapped (its
    /// partial state released).
    pub fn new(
        desc: &NativeDesc,
        cpu: u32,
        fuel: u64,
        owner: *const c_void,
    ) -> Result<Self, Option<i32>> {
        let size = desc
            .raw()
            .instance_size
            .max(core::mem::size_of::<RawNativeInstance>());
        let layout = core::alloc::Layout::from_size_align(size, 16).map_err(|_| None)?;
        // SAFETY: the layout has a non-zero size.
        let mem = unsafe { alloc::alloc::alloc_zeroed(layout) };
        if mem.is_null() {
            return Err(None);
        }
        let inst = NativeInstance { mem, layout };
        match inst.run(
            desc.raw().instantiate,
            None,
            ptr::null_mut(),
            fuel,
            CALL_MAY_SLEEP,
            cpu,
            owner,
        ) {
            NativeOutcome::Returned(_) => Ok(inst),
            NativeOutcome::Trapped(trap, _) => {
                inst.release(desc, cpu, owner);
                Err(Some(trap))
            }
            NativeOutcome::Busy => {
                inst.release(desc, cpu, owner);
                Err(None)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        init: Option<InitFn>,
        entry: Option<EntryFn>,
        lanes: *mut u64,
        fuel: u64,
        flags: u32,
        cpu: u32,
        owner: *const c_void,
    ) -> NativeOutcome {
        let mut call = NativeCall {
            entry,
            init,
            inst: self.mem.cast(),
            lanes,
            fuel,
            owner,
            cpu,
            flags,
            fuel_used: 0,
            trap: 0,
            prev: ptr::null_mut(),
            sp: 0,
            fuel_left: 0,
        };
        // SAFETY: `call` is fully initialised and lives across the call; `inst` is an
        // instance of the module whose function `init` or `entry` is (type invariant), and
        // `lanes` holds as many lanes as that function's parameters and results (callers).
        match unsafe { raw::wasm_shim_native_call(&mut call) } {
            0 => NativeOutcome::Returned(call.fuel_used),
            trap if trap > 0 => NativeOutcome::Trapped(trap, call.fuel_used),
            _ => NativeOutcome::Busy,
        }
    }

    /// Calls export `index` of `desc` with `lanes` (arguments in, results out) and `fuel`.
    /// `may_sleep`: process context, where slices end with `cond_resched()`.
    ///
    /// # Safety
    ///
    /// `lanes` has room for the export's parameters and results; `desc` is this instance's
    /// module and `index` one of its exports.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn call(
        &mut self,
        desc: &NativeDesc,
        index: usize,
        lanes: &mut [u64],
        fuel: u64,
        may_sleep: bool,
        cpu: u32,
        owner: *const c_void,
    ) -> NativeOutcome {
        let r = desc.raw();
        // SAFETY: `index` is below `nr_exports` (caller).
        let entry = unsafe { (*r.exports.add(index)).entry };
        let mut flags = if may_sleep { CALL_MAY_SLEEP } else { 0 };
        if desc.fpu() {
            flags |= NATIVE_FPU;
        }
        self.run(None, entry, lanes.as_mut_ptr(), fuel, flags, cpu, owner)
    }

    /// The instance's linear memory 0, if it has one.
    pub fn memory(&mut self) -> Option<&mut [u8]> {
        // SAFETY: the head is the start of the instance (type invariant); its memory, once
        // set, points into the instance, and `data`/`size` describe the allocation the
        // runtime made through `wasm_rs_native_resize`.
        unsafe { memory_of(self.mem.cast()) }
    }

    /// Frees the instance's memories and tables (`desc`'s release function) and the instance.
    pub fn release(self, desc: &NativeDesc, cpu: u32, owner: *const c_void) {
        let this = core::mem::ManuallyDrop::new(self);
        let flags = CALL_MAY_SLEEP | if desc.fpu() { NATIVE_FPU } else { 0 };
        this.run(
            desc.raw().release,
            None,
            ptr::null_mut(),
            u64::MAX,
            flags,
            cpu,
            owner,
        );
        // SAFETY: allocated in `new` with this layout, released above, never used again.
        unsafe { alloc::alloc::dealloc(this.mem, this.layout) };
    }
}

/// The linear memory of the instance whose head is at `inst`.
///
/// # Safety
///
/// `inst` points to a live instance head that nothing else accesses meanwhile.
pub unsafe fn memory_of<'a>(inst: *mut c_void) -> Option<&'a mut [u8]> {
    // SAFETY: guaranteed by the caller.
    unsafe {
        let head = &*inst.cast::<RawNativeInstance>();
        let mem = head.memory.as_ref()?;
        if mem.data.is_null() {
            return Some(&mut []);
        }
        Some(core::slice::from_raw_parts_mut(mem.data, mem.size as usize))
    }
}
