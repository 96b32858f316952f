//! The engine's [`Host`] in the kernel.

use crate::ffi;
use alloc::string::String;
use core::fmt::Write;
use wasm_engine::Host;

/// Longest piece of one printk line; longer guest lines are split.
const LINE_CHUNK: usize = 512;

/// The kernel as the engine's host: printk, possible CPUs, `cond_resched`, fatal signals.
pub struct KernelHost;

impl Host for KernelHost {
    fn log(line: &[u8]) {
        if line.is_empty() {
            ffi::log(line);
        }
        for chunk in line.chunks(LINE_CHUNK) {
            ffi::log(chunk);
        }
    }

    fn cpu_count() -> usize {
        ffi::possible_cpus()
    }

    fn between_slices() -> bool {
        ffi::between_slices()
    }

    fn now_ns() -> u64 {
        ffi::now_ns()
    }

    fn timer_ns() -> u64 {
        ffi::clock_ns()
    }

    fn realtime_ns() -> u64 {
        ffi::realtime_ns()
    }

    fn random(buf: &mut [u8]) {
        ffi::random_bytes(buf)
    }

    fn on_instance<R>(f: impl FnOnce() -> R) -> R {
        crate::guard::shared(f)
    }

    fn map_lookup(map: u64, key: &[u8], value: &mut [u8]) -> i32 {
        // SAFETY: the engine passes the handle of a map its module holds (from
        // `maps::MapRefs`, released only when the module is freed) and buffers of the map's
        // key and value sizes (checked against its `MapRef`).
        unsafe { ffi::map_lookup(map, key, value) }
    }

    fn map_update(map: u64, key: &[u8], value: &[u8], flags: u64) -> i32 {
        // SAFETY: as in `map_lookup`.
        unsafe { ffi::map_update(map, key, value, flags) }
    }

    fn map_delete(map: u64, key: &[u8]) -> i32 {
        // SAFETY: as in `map_lookup`.
        unsafe { ffi::map_delete(map, key) }
    }

    fn map_release(map: u64) {
        // SAFETY: the engine releases each of its module's maps once, when the module is
        // freed; the reference came from `ffi::map_get`.
        unsafe { crate::maps::release(map) }
    }
}

/// Logs one formatted line, cut at [`LINE_CHUNK`] bytes. Does not allocate.
pub fn log_fmt(args: core::fmt::Arguments<'_>) {
    let mut line = FixedLine::new();
    if line.write_fmt(args).is_ok() {
        ffi::log(line.as_bytes());
    }
}

/// Formats a message into a `String` allocated fallibly (`None` when out of memory), cut at
/// [`LINE_CHUNK`] bytes.
pub fn try_format(args: core::fmt::Arguments<'_>) -> Option<String> {
    let mut line = FixedLine::new();
    line.write_fmt(args).ok()?;
    let text = core::str::from_utf8(line.as_bytes()).unwrap_or("(message cut inside a character)");
    let mut s = String::new();
    s.try_reserve_exact(text.len()).ok()?;
    s.push_str(text);
    Some(s)
}

/// A log line built without allocating, cut at [`LINE_CHUNK`] bytes (for paths where memory
/// may have run out).
pub struct FixedLine {
    buf: [u8; LINE_CHUNK],
    len: usize,
}

impl FixedLine {
    /// An empty line.
    pub const fn new() -> Self {
        FixedLine {
            buf: [0; LINE_CHUNK],
            len: 0,
        }
    }

    /// The line so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Write for FixedLine {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(LINE_CHUNK - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
