//! Hello world for `wasm.ko`: `main` logs one line through the host's `env._debug`.
#![no_std]

#[link(wasm_import_module = "env")]
extern "C" {
    /// Logs `len` bytes at `ptr` as one kernel log line. Imported as `_debug(i32, i32) -> i32`.
    fn _debug(ptr: *const u8, len: usize) -> i32;
}

/// The entrypoint `wasm.ko` calls on every instance at load.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: i32) -> i32 {
    let msg = "Hello, world!";
    // SAFETY: the pointer and length describe a live string in linear memory.
    unsafe { _debug(msg.as_ptr(), msg.len()) };
    0
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
