//! Ahead-of-time compilation of Wasm modules for wasm.ko's native tier.
//!
//! A native module is a Wasm module translated to C and built into a kernel module that
//! registers itself with wasm.ko (the contract is `kmod/wasm_native.h`). The steps:
//! [`fuel::instrument`] makes the module meter its own execution (and has the C compiler do
//! its [`multi3`] 128-bit multiplications), wabt's `wasm2c` translates
//! it, [`wasm2c::adapt`] rewrites what would make the translation slow in the kernel,
//! [`glue::generate`] writes the C that joins the translation to wasm.ko, and
//! [`compile::compile`] runs them all and Kbuild.

pub mod compile;
pub mod fuel;
pub mod glue;
pub mod multi3;
pub mod wasm2c;
