//! The `wasmctl` binary: `run` on the user-space engine, and the errors people see.

use std::process::Command;

fn wasmctl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmctl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn module(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, wat::parse_str(text).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

const HELLO: &str = r#"(module
  (import "env" "_debug" (func $debug (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "Hello, world!")
  (func (export "main") (param i32 i32) (result i32)
    (drop (call $debug (i32.const 0) (i32.const 13))) (i32.const 0))
  (func (export "mix") (param i64 f64) (result i64 f64)
    (i64.add (local.get 0) (i64.const 1)) (f64.mul (local.get 1) (f64.const 2)))
  (func (export "spin") (loop $l (br $l))))"#;

#[test]
fn run_prints_guest_output_and_results() {
    let dir = tempdir();
    let file = module(&dir, "hello.wasm", HELLO);
    let (ok, out, _) = wasmctl(&["run", &file]);
    assert!(ok);
    assert_eq!(out, "Hello, world!\n");
    let (ok, out, _) = wasmctl(&[
        "run",
        &file,
        "--entrypoint",
        "",
        "--invoke",
        "mix",
        "41",
        "1.25",
    ]);
    assert!(ok);
    assert_eq!(out, "42 2.5\n");
    let (ok, out, _) = wasmctl(&[
        "--json",
        "run",
        &file,
        "--entrypoint",
        "",
        "--invoke",
        "mix",
        "-1",
        "0.5",
    ]);
    assert!(ok);
    assert!(out.contains(r#"{"type":"i64","value":0}"#), "{out}");
}

#[test]
fn run_reports_fuel_exhaustion_and_bad_modules() {
    let dir = tempdir();
    let file = module(&dir, "spin.wasm", HELLO);
    let (ok, _, err) = wasmctl(&["run", &file, "--fuel", "100000", "--invoke", "spin"]);
    assert!(!ok);
    assert!(err.contains("ran out of fuel (budget 100000)"), "{err}");
    let bad = dir.join("bad.wasm");
    std::fs::write(&bad, b"not wasm").unwrap();
    let (ok, _, err) = wasmctl(&["run", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("invalid WebAssembly module"), "{err}");
}

#[test]
fn missing_device_says_what_to_do() {
    let (ok, _, err) = wasmctl(&["--device", "/nonexistent/wasm", "list"]);
    assert!(!ok);
    assert!(
        err.contains("does not exist: load the kernel module first"),
        "{err}"
    );
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wasmctl-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
