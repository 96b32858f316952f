//! libFuzzer entry: see `wasm_fuzz::load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_fuzz::load(data));
