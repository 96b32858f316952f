//! The benchmark guest: each export runs one workload of `bench/workloads` and returns a value
//! the benchmark checks against the native build. `fill` and `json_setup` prepare the shared
//! buffer outside the timed calls.
#![no_std]

use bench_workloads as w;
use core::cell::UnsafeCell;

/// Bytes of the shared input buffer (sha256 input, JSON text).
const BUF_SIZE: usize = 4 << 20;

struct Buffer(UnsafeCell<[u8; BUF_SIZE]>);

// SAFETY: a Wasm instance runs one call at a time; nothing else touches the buffer.
unsafe impl Sync for Buffer {}

static BUF: Buffer = Buffer(UnsafeCell::new([0; BUF_SIZE]));

fn buf() -> &'static mut [u8; BUF_SIZE] {
    // SAFETY: one call at a time (see `Buffer`), and no export holds the borrow past its return.
    unsafe { &mut *BUF.0.get() }
}

fn len(n: i32) -> usize {
    (n.max(0) as usize).min(BUF_SIZE)
}

/// Call overhead: `a + b`.
#[no_mangle]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

/// Recursive Fibonacci.
#[no_mangle]
pub extern "C" fn fib(n: i32) -> i64 {
    w::fib(n as u32) as i64
}

/// A tight integer loop of `n` rounds.
#[no_mangle]
pub extern "C" fn int_loop(n: i32) -> i64 {
    w::int_loop(n as u32) as i64
}

/// Fills the first `n` bytes of the buffer (the SHA-256 input); returns how many.
#[no_mangle]
pub extern "C" fn fill(n: i32) -> i32 {
    let n = len(n);
    w::fill(&mut buf()[..n]);
    n as i32
}

/// SHA-256 of the first `n` bytes of the buffer: the digest's first 8 bytes.
#[no_mangle]
pub extern "C" fn sha256(n: i32) -> i64 {
    w::digest_prefix(&w::sha256(&buf()[..len(n)])) as i64
}

/// n-body energy after `steps` steps.
#[no_mangle]
pub extern "C" fn nbody(steps: i32) -> f64 {
    w::nbody(steps as u32)
}

/// Writes a JSON document of `records` records into the buffer; returns its length.
#[no_mangle]
pub extern "C" fn json_setup(records: i32) -> i32 {
    w::json_generate(buf(), records as u32) as i32
}

/// Parses the first `n` bytes of the buffer as JSON: its checksum, or -1 if it is not JSON.
#[no_mangle]
pub extern "C" fn json_parse(n: i32) -> i64 {
    w::json_sum(&buf()[..len(n)]).unwrap_or(-1)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
