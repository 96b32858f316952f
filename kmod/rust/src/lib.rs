//! The Rust half of `wasm.ko`.
//!
//! The C shim (`wasm_main.c`) owns the kernel objects (module init/exit, the `/dev/wasm` misc
//! device) and calls the `wasm_rs_*` functions below; everything the Rust side needs from the
//! kernel goes through [`ffi`]. The engine itself is the shared `wasm-engine` crate, driven by
//! [`host::KernelHost`].
#![no_std]

extern crate alloc;

mod alloc_kernel;
mod bpf;
mod ffi;
mod guard;
mod host;
mod maps;
mod module;
mod native;
mod session;
mod trust;

use core::ffi::{c_char, c_void};
use core::fmt::Write;
use ffi::UserPtr;
use session::Session;

/// Called by the shim's module init, before `/dev/wasm` exists: `memory_cap` is the
/// `memory_cap_mb` module parameter, in bytes; `kfuncs` what `wasm_kfuncs_register()`
/// returned; `require_signature` and `trusted_keys` the parameters of those names.
///
/// # Safety
///
/// `trusted_keys` is a NUL-terminated string (or null).
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_init(
    memory_cap: u64,
    kfuncs: i32,
    require_signature: bool,
    trusted_keys: *const c_char,
) -> i32 {
    // SAFETY: guaranteed by the caller.
    let keys = core::str::from_utf8(unsafe { ffi::c_bytes(trusted_keys) });
    let set = keys
        .map_err(|_| alloc::string::String::from("not ASCII"))
        .and_then(|keys| trust::set(require_signature, keys));
    let (keys, required) = match set {
        Ok(set) => set,
        Err(e) => {
            host::log_fmt(format_args!("wasm: bad trusted_keys parameter: {e}"));
            return -wasm_proto::errno::EINVAL;
        }
    };
    session::set_memory_cap(memory_cap);
    bpf::set_kfuncs(kfuncs);
    ffi::clock_init();
    host::log_fmt(format_args!(
        "wasm: module loaded, protocol v{}, {} possible cpus, linear memory cap {} MiB",
        wasm_proto::PROTOCOL_VERSION,
        ffi::possible_cpus(),
        memory_cap >> 20
    ));
    if keys > 0 || required {
        host::log_fmt(format_args!(
            "wasm: {keys} trusted keys, signatures {}",
            if required {
                "required"
            } else {
                "checked when given"
            }
        ));
    }
    let kfuncs = bpf::kfuncs();
    if !kfuncs.available() {
        host::log_fmt(format_args!("wasm: eBPF calls {kfuncs}; /dev/wasm works"));
    }
    0
}

/// Called by the shim's module exit, after `/dev/wasm` is gone: frees every Wasm module and
/// reports allocations still live (there must be none).
#[no_mangle]
pub extern "C" fn wasm_rs_exit() {
    let freed = session::unload_all();
    let (count, bytes) = alloc_kernel::live();
    host::log_fmt(format_args!(
        "wasm: module unloaded, {freed} wasm modules freed, {count} live allocations ({bytes} bytes)"
    ));
}

/// `open(2)`: returns a new session, or null when out of memory.
#[no_mangle]
pub extern "C" fn wasm_rs_open() -> *mut c_void {
    Session::new_boxed().map_or(core::ptr::null_mut(), |s| s.into_raw())
}

/// `release`: frees the session.
///
/// # Safety
///
/// `session` comes from [`wasm_rs_open`] and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_release(session: *mut c_void) {
    // SAFETY: guaranteed by the caller (the shim's `release`, called once per open file).
    drop(unsafe { Session::from_raw(session) });
}

/// `write(2)`: one request frame. Returns `len`, or a negative errno (the response, readable
/// with `read(2)`, then says why).
///
/// # Safety
///
/// `session` comes from [`wasm_rs_open`] and is live; `buf` is a user pointer.
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_write(
    session: *mut c_void,
    buf: *mut c_void,
    len: usize,
) -> isize {
    // SAFETY: guaranteed by the caller.
    let session = unsafe { Session::borrow(session) };
    session.write(UserPtr(buf), len)
}

/// `read(2)`: the pending response, from where the last read stopped.
///
/// # Safety
///
/// As [`wasm_rs_write`].
#[no_mangle]
pub unsafe extern "C" fn wasm_rs_read(session: *mut c_void, buf: *mut c_void, len: usize) -> isize {
    // SAFETY: guaranteed by the caller.
    let session = unsafe { Session::borrow(session) };
    session.read(UserPtr(buf), len)
}

/// A panic inside a `/dev/wasm` request abandons that request ([`guard`]), one inside a kfunc
/// call makes that call return `-ENOMEM` (its instance stays taken: it is lost until the
/// module is unloaded); anywhere else it ends in `BUG()`, as Rust-for-Linux's handler does. Logging here does not allocate: the
/// panic may come from a failed allocation.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = host::FixedLine::new();
    let _ = match info.location() {
        Some(at) => write!(line, "wasm: Rust panic at {at}: {}", info.message()),
        None => write!(line, "wasm: Rust panic: {}", info.message()),
    };
    ffi::log(line.as_bytes());
    guard::abandon_current();
    ffi::bpf_abandon();
    ffi::bug()
}
