//! What the tests of the generated C share: wabt's wasm2c (1.0.32, from
//! scripts/install-deps.sh) run on an instrumented module.

use std::path::PathBuf;
use std::process::Command;
use wasm_aot::{fuel, glue};

/// Instruments `wat` and translates it with wasm2c in a directory of its own named after
/// `name`; returns the instrumented module, the size of the original and the directory
/// (`m.c`, `m.h`).
pub fn translate(wat: &str, name: &str) -> (Vec<u8>, usize, PathBuf) {
    let wasm = wat::parse_str(wat).unwrap();
    let instrumented = fuel::instrument(&wasm).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("m.wasm"), &instrumented).unwrap();
    let status = Command::new("wasm2c")
        .arg(dir.join("m.wasm"))
        .args(["-n", glue::PREFIX, "-o"])
        .arg(dir.join("m.c"))
        .status()
        .expect("wasm2c (package wabt) must be installed: scripts/install-deps.sh");
    assert!(status.success());
    (instrumented, wasm.len(), dir)
}
