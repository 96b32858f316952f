//! A guest whose linear memory cannot grow (it has no `memory.grow`): the native tier checks
//! its loads and stores against a constant size (`crates/aot`, rewrite 6), and the VM tests
//! probe that constant's edges on both tiers. Addresses are any `usize`; Wasm checks them.
#![no_std]

/// Room past the shadow stack, which wasm-ld puts first with its top at 1 MiB: with it the
/// memory ends above the stack, and the last bytes the scenarios write are nobody else's.
#[no_mangle]
pub static ROOM: [u8; 256] = [0; 256];

/// The size of linear memory in bytes.
#[no_mangle]
pub extern "C" fn size() -> usize {
    core::arch::wasm32::memory_size(0) * 65536
}

/// Reads the `i32` at `addr`.
#[no_mangle]
pub extern "C" fn peek(addr: usize) -> i32 {
    // SAFETY: deliberately any address: Wasm checks it against the memory's size.
    unsafe { core::ptr::read_volatile(addr as *const i32) }
}

/// Reads the byte at `addr`.
#[no_mangle]
pub extern "C" fn peek8(addr: usize) -> i32 {
    // SAFETY: as in `peek`.
    i32::from(unsafe { core::ptr::read_volatile(addr as *const u8) })
}

/// Writes `value` as an `i64` at `addr`, then reads it back in a function of its own: the
/// store and the load are checked on either side of a call.
#[no_mangle]
pub extern "C" fn poke(addr: usize, value: i64) -> i64 {
    // SAFETY: as in `peek`.
    unsafe { core::ptr::write_volatile(addr as *mut i64, value) };
    read(core::hint::black_box(addr))
}

/// The `i64` at `addr`, kept a call of its own.
#[inline(never)]
fn read(addr: usize) -> i64 {
    // SAFETY: as in `peek`.
    unsafe { core::ptr::read_volatile(addr as *const i64) }
}

/// Writes 1, 2, 3... to the `len` bytes from `addr`, then returns their sum read back: two
/// loops of checked accesses, the first trapping at the first byte past the end.
#[no_mangle]
pub extern "C" fn fill_sum(addr: usize, len: usize) -> i32 {
    let bytes = addr..addr.wrapping_add(len);
    for (at, value) in bytes.clone().zip(1u8..) {
        // SAFETY: as in `peek`.
        unsafe { core::ptr::write_volatile(at as *mut u8, value) };
    }
    bytes.map(|at| peek8(at)).sum()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
