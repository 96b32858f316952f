//! Ahead-of-time compilation of Wasm modules for wasm.ko's native tier.
//!
//! A native module is a Wasm module translated to C and built into a kernel module that
//! registers itself with wasm.ko. This crate holds the steps that run in user space before
//! the translation: [`fuel::instrument`] makes the module meter its own execution.

pub mod fuel;
