//! `wasm.ko`'s Rust half in user space: the very staticlib the module links (built for
//! `x86_64-unknown-none` with the kernel's code-generation flags), driven through the entry
//! points the C shim calls for `/dev/wasm`, with the shim's functions implemented here.
//!
//! The kernel's retpoline and return thunks are defined as the kernel patches them on a CPU
//! that needs no mitigation (`jmp *%reg`, `ret`), so the figures show the engine's own cost.

use crate::protocol::Transport;
use anyhow::{bail, Result};
use core::ffi::c_void;
use std::sync::Once;

extern "C" {
    fn wasm_rs_init(
        memory_cap: u64,
        kfuncs: i32,
        require_signature: bool,
        trusted_keys: *const core::ffi::c_char,
    ) -> i32;
    fn wasm_rs_open() -> *mut c_void;
    fn wasm_rs_release(session: *mut c_void);
    fn wasm_rs_write(session: *mut c_void, buf: *mut c_void, len: usize) -> isize;
    fn wasm_rs_read(session: *mut c_void, buf: *mut c_void, len: usize) -> isize;
    fn wasm_rs_on_work_stack(job: *mut c_void);
}

std::arch::global_asm!(
    ".macro thunk reg",
    ".globl __x86_indirect_thunk_\\reg",
    "__x86_indirect_thunk_\\reg:",
    "jmp *%\\reg",
    ".endm",
    "thunk rax",
    "thunk rbx",
    "thunk rcx",
    "thunk rdx",
    "thunk rsi",
    "thunk rdi",
    "thunk rbp",
    "thunk r8",
    "thunk r9",
    "thunk r10",
    "thunk r11",
    "thunk r12",
    "thunk r13",
    "thunk r14",
    "thunk r15",
    ".globl __x86_return_thunk",
    "__x86_return_thunk:",
    "ret",
    "int3",
    options(att_syntax)
);

/// Linear memory all modules may hold (the module parameter `memory_cap_mb`).
const MEMORY_CAP: u64 = 1 << 30;

/// The in-process "device": the entry points `wasm_main.c` calls on `write(2)` and `read(2)`.
pub struct InProcess {
    session: *mut c_void,
}

impl InProcess {
    /// Opens a session (initialising the Rust side on first use).
    pub fn open() -> Result<Self> {
        static INIT: Once = Once::new();
        // SAFETY: called once, before any session exists (as the shim's module init does),
        // with kfuncs registered (0), no signature required and no trusted key (null).
        INIT.call_once(|| unsafe {
            wasm_rs_init(MEMORY_CAP, 0, false, core::ptr::null());
        });
        // SAFETY: `wasm_rs_open` has no preconditions; a null session is handled.
        let session = unsafe { wasm_rs_open() };
        if session.is_null() {
            bail!("out of memory opening a session");
        }
        Ok(InProcess { session })
    }
}

impl Transport for InProcess {
    fn write(&mut self, frame: &mut [u8]) -> isize {
        // SAFETY: the session is live; `frame` is valid for its length ("user" memory here).
        unsafe { wasm_rs_write(self.session, frame.as_mut_ptr().cast(), frame.len()) }
    }

    fn read(&mut self, buf: &mut [u8]) -> isize {
        // SAFETY: the session is live; `buf` is valid and writable for its length.
        unsafe { wasm_rs_read(self.session, buf.as_mut_ptr().cast(), buf.len()) }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // SAFETY: the session came from `wasm_rs_open` and is not used after this.
        unsafe { wasm_rs_release(self.session) };
    }
}

/// The shim's functions (`kmod/wasm_shim.h`) for user space.
mod shim {
    use super::{c_void, wasm_rs_on_work_stack};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    #[no_mangle]
    extern "C" fn wasm_shim_alloc(size: usize) -> *mut c_void {
        // kvmalloc aligns a power-of-two size to itself, up to a page; the Rust side relies
        // on that for alignments above 8.
        let align = if size.is_power_of_two() {
            size.clamp(16, 4096)
        } else {
            16
        };
        let mut p = core::ptr::null_mut();
        // SAFETY: `align` is a power of two and a multiple of the pointer size.
        match unsafe { libc::posix_memalign(&mut p, align, size) } {
            0 => p,
            _ => core::ptr::null_mut(),
        }
    }

    #[no_mangle]
    unsafe extern "C" fn wasm_shim_free(ptr: *mut c_void) {
        // SAFETY: `ptr` came from `wasm_shim_alloc` (the Rust side's contract).
        unsafe { libc::free(ptr) }
    }

    #[no_mangle]
    unsafe extern "C" fn wasm_shim_log(msg: *const u8, len: usize) {
        // SAFETY: the Rust side passes a valid byte slice.
        let line = unsafe { core::slice::from_raw_parts(msg, len) };
        eprintln!("kernel-build: {}", String::from_utf8_lossy(line));
    }

    #[no_mangle]
    extern "C" fn wasm_shim_possible_cpus() -> u32 {
        1
    }

    #[no_mangle]
    extern "C" fn wasm_shim_this_cpu() -> u32 {
        0
    }

    #[no_mangle]
    extern "C" fn wasm_shim_between_slices() -> bool {
        true
    }

    #[no_mangle]
    extern "C" fn wasm_shim_now_ns() -> u64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    /// No TSC rate: call latencies are timed with `wasm_shim_now_ns`.
    #[no_mangle]
    extern "C" fn wasm_shim_clock_mult() -> u32 {
        0
    }

    #[no_mangle]
    extern "C" fn wasm_shim_realtime_ns() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    #[no_mangle]
    unsafe extern "C" fn wasm_shim_random_bytes(buf: *mut c_void, len: usize) {
        // SAFETY: the Rust side passes a valid, writable buffer.
        unsafe { core::ptr::write_bytes(buf.cast::<u8>(), 4, len) };
    }

    #[no_mangle]
    extern "C" fn wasm_shim_registry_lock() {}

    #[no_mangle]
    extern "C" fn wasm_shim_registry_unlock() {}

    /// `copy_{from,to}_user`: "user" memory is ordinary memory here. Returns the bytes not
    /// copied (none).
    ///
    /// # Safety
    ///
    /// Both pointers are valid for `n` bytes and the regions do not overlap.
    unsafe fn copy(to: *mut c_void, from: *const c_void, n: usize) -> usize {
        // SAFETY: guaranteed by the caller.
        unsafe { core::ptr::copy_nonoverlapping(from.cast::<u8>(), to.cast::<u8>(), n) };
        0
    }

    #[no_mangle]
    unsafe extern "C" fn wasm_shim_copy_from_user(
        to: *mut c_void,
        from: *const c_void,
        n: usize,
    ) -> usize {
        // SAFETY: the Rust side passes buffers valid for `n` bytes.
        unsafe { copy(to, from, n) }
    }

    #[no_mangle]
    unsafe extern "C" fn wasm_shim_copy_to_user(
        to: *mut c_void,
        from: *const c_void,
        n: usize,
    ) -> usize {
        // SAFETY: as in `wasm_shim_copy_from_user`.
        unsafe { copy(to, from, n) }
    }

    #[no_mangle]
    extern "C" fn wasm_shim_stack_paint() {}

    #[no_mangle]
    extern "C" fn wasm_shim_stack_peak() -> usize {
        0
    }

    #[no_mangle]
    extern "C" fn wasm_shim_stack_size() -> usize {
        16 << 10
    }

    #[no_mangle]
    extern "C" fn wasm_shim_bug() -> ! {
        std::process::abort()
    }

    #[no_mangle]
    unsafe extern "C" fn wasm_shim_on_work_stack(job: *mut c_void, peak: *mut usize) -> i32 {
        // SAFETY: `job` is what the Rust side passed; the thread's stack is large enough.
        unsafe {
            wasm_rs_on_work_stack(job);
            *peak = 0;
        }
        0
    }

    /// Requests run without the kernel's out-of-memory guard here: user space has no
    /// allocation failures to recover from, so nothing is tracked.
    #[no_mangle]
    extern "C" fn wasm_shim_request_context() -> bool {
        false
    }

    #[no_mangle]
    extern "C" fn wasm_shim_current() -> *mut c_void {
        thread_local!(static TASK: u8 = const { 0 });
        TASK.with(|t| (t as *const u8).cast_mut().cast())
    }

    #[no_mangle]
    extern "C" fn wasm_shim_inject_alloc_failure() -> bool {
        false
    }

    #[no_mangle]
    extern "C" fn wasm_shim_abandon(_tos: *mut c_void) -> ! {
        std::process::abort()
    }

    /// No kfunc runs in user space: nothing to return to (the panic handler then aborts).
    #[no_mangle]
    extern "C" fn wasm_shim_bpf_abandon() {}

    #[no_mangle]
    extern "C" fn wasm_shim_work_stack_size() -> usize {
        64 << 10
    }

    #[no_mangle]
    extern "C" fn wasm_shim_rcu_read_lock() {}

    #[no_mangle]
    extern "C" fn wasm_shim_rcu_read_unlock() {}

    #[no_mangle]
    extern "C" fn wasm_shim_synchronize_rcu() {}

    /// No native module registers in user space (registration comes from a kernel module's
    /// init), so no native call is ever made.
    #[no_mangle]
    extern "C" fn wasm_shim_native_call(_call: *mut c_void) -> i32 {
        std::process::abort()
    }

    #[no_mangle]
    extern "C" fn wasm_shim_module_get(_owner: *mut c_void) -> bool {
        false
    }

    #[no_mangle]
    extern "C" fn wasm_shim_module_put(_owner: *mut c_void) {}

    /// The benchmark gives no BPF maps: no descriptor is one.
    #[no_mangle]
    extern "C" fn wasm_shim_map_get(_fd: i32, _out: *mut c_void) -> i32 {
        -9
    }

    /// Never reached: no map is ever taken.
    #[no_mangle]
    extern "C" fn wasm_shim_map_put(_map: *mut c_void) {
        std::process::abort()
    }

    /// Never reached: no map is ever taken.
    #[no_mangle]
    extern "C" fn wasm_shim_map_lookup(_map: *mut c_void, _k: *const u8, _v: *mut u8) -> i32 {
        std::process::abort()
    }

    /// Never reached: no map is ever taken.
    #[no_mangle]
    extern "C" fn wasm_shim_map_update(
        _map: *mut c_void,
        _k: *const u8,
        _v: *const u8,
        _flags: u64,
    ) -> i32 {
        std::process::abort()
    }

    /// Never reached: no map is ever taken.
    #[no_mangle]
    extern "C" fn wasm_shim_map_delete(_map: *mut c_void, _k: *const u8) -> i32 {
        std::process::abort()
    }

    #[no_mangle]
    extern "C" fn wasm_shim_trace_load(_name: *const u8, _version: u32, _instances: u32) {}

    #[no_mangle]
    extern "C" fn wasm_shim_trace_unload(_name: *const u8) {}

    #[no_mangle]
    extern "C" fn wasm_shim_trace_call_failed(
        _name: *const u8,
        _cpu: u32,
        _bpf: bool,
        _err: i32,
        _fuel: u64,
        _out_of_fuel: bool,
    ) {
    }
}
