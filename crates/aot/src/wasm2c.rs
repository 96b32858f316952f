//! What the build changes in wasm2c's output (`m.c`), and why.
//!
//! wabt 1.0.32's `wasm2c` writes C for user space with guard pages; four of its habits cost
//! the kernel's bounds-checked code most of its speed, and [`adapt`] rewrites them:
//!
//! 1. **Every function's instance is `restrict`.** Linear memory is a separate allocation that
//!    never overlaps the instance (wasm.ko allocates both), but a store into linear memory is a
//!    `memcpy` through a `u8 *`, which may alias anything: without the qualifier the compiler
//!    reloads the memory's base and size, the globals and the fuel counter after every store.
//!    Everything else that changes the instance's state (`memory.grow`, imports, `refuel`) is
//!    a call, which the compiler treats as clobbering memory anyway.
//! 2. **The fuel counter is the head's field**, reached from the instance by a constant
//!    offset (`WASM_NATIVE_HEAD`), rather than through the pointer the imported global is in
//!    wasm2c's instance: a load less at every function entry and loop header, and, with (1),
//!    a counter the compiler keeps in a register between calls.
//! 3. **Loads are not forced into general-purpose registers.** wasm2c ends every load with
//!    `asm("" :: "r"(result))`, so that a load whose value is unused still happens and faults
//!    on a guard page; here every access is checked before it happens, so the statement only
//!    costs moves (an `f64` load went through an integer register).
//! 4. **The bounds check compares the address with the size less the access's length**, in
//!    signed 64-bit arithmetic, instead of the address plus the length with the size: the
//!    same test (addresses, lengths and sizes are all below 2^34, so nothing wraps), but
//!    `size - len` is one value per access width that the compiler keeps in a register, where
//!    `address + len` had to be computed at every access.
//!
//! Each rewrite must find what it rewrites, so a wasm2c whose output differs is reported
//! rather than silently left slow.

use crate::fuel::{FUEL_GLOBAL, IMPORT_MODULE};
use crate::glue::PREFIX;
use core::fmt;

/// A rewrite that found nothing to rewrite: the output is not wabt 1.0.32's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wasm2c's output has no {} (wabt 1.0.32's wasm2c is expected)",
            self.0
        )
    }
}

impl std::error::Error for Error {}

/// `source` (wasm2c's `m.c`) with the rewrites of the module documentation.
///
/// # Errors
///
/// A rewrite found nothing to rewrite.
pub fn adapt(source: &str) -> Result<String, Error> {
    let param = format!("(Z_{PREFIX}_instance_t* instance");
    let fuel = format!("(*instance->Z_{IMPORT_MODULE}Z_{FUEL_GLOBAL})");
    let rewrites = [
        (
            param.clone(),
            format!("(Z_{PREFIX}_instance_t* restrict instance"),
        ),
        (fuel, "WASM_NATIVE_HEAD(instance)->fuel".to_string()),
        (r#"wasm_asm("" ::"r"(result));"#.to_string(), String::new()),
        (
            "if (UNLIKELY(offset + (uint64_t)len > mem->size))".to_string(),
            "if (UNLIKELY((s64)(offset) > (s64)mem->size - (s64)(len)))".to_string(),
        ),
    ];
    let mut out = source.to_string();
    for (from, to) in &rewrites {
        if !out.contains(from.as_str()) {
            return Err(Error(format!("`{from}`")));
        }
        out = out.replace(from.as_str(), to);
    }
    Ok(out)
}
