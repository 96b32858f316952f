//! libFuzzer entry: see `wasm_fuzz::frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_fuzz::frames(data));
