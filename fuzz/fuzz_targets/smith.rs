//! libFuzzer entry: see `wasm_fuzz::smith`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_fuzz::smith(data));
