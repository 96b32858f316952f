//! A guest that exercises the engine: its entrypoint prints f64/f32 results (which must be
//! bit-identical in the kernel's soft-float build and in user space), and its exports cover
//! typed calls, traps, an endless loop, deep recursion and memory growth.
#![no_std]

use core::fmt::Write;

#[link(wasm_import_module = "env")]
extern "C" {
    fn _debug(ptr: *const u8, len: usize) -> i32;
    fn cpu_id() -> i32;
}

/// A fixed buffer that formats one log line.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn say(args: core::fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 256],
        len: 0,
    };
    let _ = line.write_fmt(args);
    // SAFETY: the pointer and length describe the formatted bytes in linear memory.
    unsafe { _debug(line.buf.as_ptr(), line.len) };
}

fn newton_sqrt(x: f64) -> f64 {
    let mut r = x;
    for _ in 0..60 {
        r = 0.5 * (r + x / r);
    }
    r
}

/// Prints float results; returns 0.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: i32) -> i32 {
    let basel: f64 = (1..=10_000).map(|k| 1.0 / (k as f64 * k as f64)).sum();
    let third = core::hint::black_box(1.0f32) / 3.0;
    say(format_args!(
        "probe: 0.1 + 0.2 = {:?}",
        core::hint::black_box(0.1f64) + 0.2
    ));
    say(format_args!("probe: sqrt(2) = {:?}", newton_sqrt(2.0)));
    say(format_args!("probe: basel(10000) = {:.15}", basel));
    say(format_args!(
        "probe: 1/3 f32 = {:?} bits {:#x}",
        third,
        third.to_bits()
    ));
    say(format_args!(
        "probe: 1e308 * 10 = {:?}",
        core::hint::black_box(1e308f64) * 10.0
    ));
    0
}

/// `a + b`.
#[no_mangle]
pub extern "C" fn add(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

/// `a * b` on 64 bits.
#[no_mangle]
pub extern "C" fn mul64(a: i64, b: i64) -> i64 {
    a.wrapping_mul(b)
}

/// The high 64 bits of the 128-bit product `a × b`: a call of the runtime library's
/// `__multi3` in WebAssembly, which the native tier does in one instruction.
#[no_mangle]
pub extern "C" fn mul_hi(a: i64, b: i64) -> i64 {
    ((i128::from(a) * i128::from(b)) >> 64) as i64
}

/// `x + 1`: the trivial function of the eBPF call benchmark.
#[no_mangle]
pub extern "C" fn inc(x: i64) -> i64 {
    x.wrapping_add(1)
}

/// Upper-cases the first `len` bytes of the eBPF buffer in place; returns `len`.
#[no_mangle]
pub extern "C" fn upper(len: i32) -> i32 {
    // SAFETY: instances are single-threaded; the kernel checked `len` against the buffer size.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(BUFFER) };
    for b in buf.iter_mut().take(len as usize) {
        b.make_ascii_uppercase();
    }
    len
}

static mut BUFFER: [u8; 64] = [0; 64];

/// Where the kernel copies buffers for buffer calls from eBPF.
#[no_mangle]
pub extern "C" fn bpf_buffer() -> *mut u8 {
    core::ptr::addr_of_mut!(BUFFER).cast()
}

/// Size of [`bpf_buffer`].
#[no_mangle]
pub extern "C" fn bpf_buffer_size() -> usize {
    64
}

/// `sqrt(a² + b²)`.
#[no_mangle]
pub extern "C" fn hypot(a: f64, b: f64) -> f64 {
    newton_sqrt(a * a + b * b)
}

/// `x / 4` in f32.
#[no_mangle]
pub extern "C" fn quarter(x: f32) -> f32 {
    x / 4.0
}

/// The instance's CPU.
#[no_mangle]
pub extern "C" fn cpu() -> i32 {
    // SAFETY: a host import without arguments.
    unsafe { cpu_id() }
}

static mut COUNTER: i64 = 0;

/// Increments a per-instance counter and returns it.
#[no_mangle]
pub extern "C" fn bump() -> i64 {
    // SAFETY: instances are single-threaded.
    unsafe {
        COUNTER += 1;
        COUNTER
    }
}

/// Never returns.
#[no_mangle]
pub extern "C" fn spin() {
    let mut x = 0u64;
    loop {
        x = core::hint::black_box(x.wrapping_add(1));
    }
}

/// Traps with `unreachable`.
#[no_mangle]
pub extern "C" fn boom() -> i32 {
    core::arch::wasm32::unreachable()
}

/// Reads the `i32` at `addr` in linear memory: an address past its end traps (the bounds
/// check every tier must make).
#[no_mangle]
pub extern "C" fn peek(addr: usize) -> i32 {
    // SAFETY: deliberately any address: Wasm checks it against the memory's size.
    unsafe { core::ptr::read_volatile(addr as *const i32) }
}

/// Grows linear memory by `pages` pages in a function of its own (as an allocator would),
/// then writes and reads back the last word of the grown memory, which was past the end
/// before the call: the memory's new size in bytes, or -1 if it cannot grow that much.
#[no_mangle]
pub extern "C" fn grow(pages: usize) -> i32 {
    let old = grow_by(core::hint::black_box(pages));
    if old == usize::MAX {
        return -1;
    }
    let end = (old + pages) * 65536;
    let last = (end - 4) as *mut i32;
    // SAFETY: the last word of linear memory, in bounds since the growth.
    unsafe {
        core::ptr::write_volatile(last, 0x5a5a);
        if core::ptr::read_volatile(last) != 0x5a5a {
            return -2;
        }
    }
    end as i32
}

/// `memory.grow`, kept a call of its own.
#[inline(never)]
fn grow_by(pages: usize) -> usize {
    core::arch::wasm32::memory_grow(0, pages)
}

/// Recurses `n` deep; returns `n`.
#[no_mangle]
pub extern "C" fn recurse(n: i32) -> i32 {
    if n <= 0 {
        0
    } else {
        1 + recurse(core::hint::black_box(n - 1))
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
