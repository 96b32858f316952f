//! libFuzzer entry: see `wasm_fuzz::wasi`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasm_fuzz::wasi(data));
