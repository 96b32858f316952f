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

    fn realtime_ns() -> u64 {
        ffi::realtime_ns()
    }

    fn random(buf: &mut [u8]) {
        ffi::random_bytes(buf)
    }
}

/// Logs one formatted line.
pub fn log_fmt(args: core::fmt::Arguments<'_>) {
    let mut line = String::new();
    if line.write_fmt(args).is_ok() {
        KernelHost::log(line.as_bytes());
    }
}
