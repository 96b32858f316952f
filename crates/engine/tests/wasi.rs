//! The WASI preview1 subset, under a user-space host that records log lines.

mod common;

use common::{logs, TestHost};
use wasm_engine::{Limits, LoadSpec, LoadedModule, Registry, Value};

/// One instance: the tests look at a single instance's output.
const ONE: Limits = Limits {
    fuel: 0,
    bpf_fuel: 0,
    memory: 0,
    instances: 1,
};

/// A WASI command: writes "hi\npartial" to stdout, "err\n" to stderr, copies argv and environ
/// to memory for inspection, reads the clocks and random bytes, calls an unimplemented WASI
/// function (stub), and exits with code 3.
const COMMAND: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hi\npartial")
  (data (i32.const 120) "err\n")
  ;; iovecs at 0 (stdout) and 16 (stderr)
  (data (i32.const 0) "\64\00\00\00\0a\00\00\00")
  (data (i32.const 16) "\78\00\00\00\04\00\00\00")
  (global $status (export "status") (mut i32) (i32.const 0))
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 40)))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 44)))
    (drop (call $args_sizes (i32.const 200) (i32.const 204)))
    (drop (call $args_get (i32.const 300) (i32.const 400)))
    (drop (call $env_sizes (i32.const 208) (i32.const 212)))
    (drop (call $env_get (i32.const 500) (i32.const 600)))
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 700)))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 708)))
    (drop (call $random (i32.const 716) (i32.const 4)))
    (i32.store (i32.const 720) (call $prestat (i32.const 3) (i32.const 800)))
    (i32.store (i32.const 724)
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                       (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))
    (i32.store (i32.const 728) (call $seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 800)))
    (call $exit (i32.const 3))
    unreachable)
  (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "peek64") (param i32) (result i64) (i64.load (local.get 0)))
  (func (export "byte") (param i32) (result i32) (i32.load8_u (local.get 0))))"#;

#[test]
fn a_wasi_command_runs_and_exits_with_its_code() {
    let wasm = wat::parse_str(COMMAND).unwrap();
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let spec = LoadSpec {
        name: "cmd",
        wasm: &wasm,
        entrypoint: None,
        limits: ONE,
        args: &["one", "two words"],
        env: &["A=1"],
        ..Default::default()
    };
    let m = reg.load(&spec).unwrap();
    assert_eq!(m.entrypoint(), "_start");
    assert_eq!(
        m.entry_result(),
        Some(3),
        "proc_exit code is the entry result"
    );
    // Whole lines as they come, the partial line when the call ends; stderr separately.
    assert_eq!(logs(), vec!["cmd: hi", "cmd: err", "cmd: partial"]);
    let peek = |addr: i32| match m.call(0, "peek", &[Value::I32(addr)]).unwrap().results[..] {
        [Value::I32(v)] => v,
        _ => unreachable!(),
    };
    let byte = |addr: i32| match m.call(0, "byte", &[Value::I32(addr)]).unwrap().results[..] {
        [Value::I32(v)] => v as u8,
        _ => unreachable!(),
    };
    let string = |ptr: i32| -> String {
        let mut s = Vec::new();
        let mut at = ptr;
        while byte(at) != 0 {
            s.push(byte(at));
            at += 1;
        }
        String::from_utf8(s).unwrap()
    };
    assert_eq!((peek(40), peek(44)), (10, 4), "nwritten");
    assert_eq!(
        (peek(200), peek(204)),
        (3, 18),
        "argc and argv bytes: cmd\\0one\\0two words\\0"
    );
    assert_eq!(
        (string(peek(300)), string(peek(304)), string(peek(308))),
        ("cmd".into(), "one".into(), "two words".into())
    );
    assert_eq!((peek(208), string(peek(500))), (1, "A=1".into()));
    let clock = |addr: i32| match m.call(0, "peek64", &[Value::I32(addr)]).unwrap().results[..] {
        [Value::I64(v)] => v,
        _ => unreachable!(),
    };
    assert_eq!((clock(700), clock(708)), (1_700_000_000_123_456_789, 5));
    assert_eq!(peek(716) as u32, 0xabab_abab);
    assert_eq!(peek(720), 8, "fd_prestat_get: EBADF, no preopens");
    assert_eq!(
        peek(724),
        52,
        "unimplemented WASI functions are ENOSYS stubs"
    );
    assert_eq!(peek(728), 70, "stdout is not seekable: ESPIPE");
}

#[test]
fn exit_from_a_call_is_reported() {
    let wasm = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (func (export "quit") (param i32) (result i32) (call $exit (local.get 0)) (i32.const 9)))"#,
    )
    .unwrap();
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let spec = LoadSpec {
        name: "q",
        wasm: &wasm,
        entrypoint: None,
        limits: ONE,
        args: &[],
        env: &[],
        ..Default::default()
    };
    let m = reg.load(&spec).unwrap();
    let out = m.call(0, "quit", &[Value::I32(4)]).unwrap();
    assert_eq!((out.exit, out.results.len()), (Some(4), 0));
    assert_eq!(m.info().instances[0].traps(), 0, "an exit is not a trap");
}

#[test]
fn long_lines_are_split_not_dropped() {
    let wasm = wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "\10\00\00\00\e8\03\00\00")
          (func (export "main") (result i32)
            (memory.fill (i32.const 16) (i32.const 120) (i32.const 1000))
            (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))"#,
    )
    .unwrap();
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let spec = LoadSpec {
        name: "long",
        wasm: &wasm,
        entrypoint: None,
        limits: ONE,
        args: &[],
        env: &[],
        ..Default::default()
    };
    reg.load(&spec).unwrap();
    let lines = logs();
    let total: usize = lines
        .iter()
        .map(|l| l.trim_start_matches("long: ").len())
        .sum();
    assert_eq!(total, 1000);
    assert!(
        lines.len() >= 3 && lines.iter().all(|l| l.starts_with("long: xxx")),
        "{lines:?}"
    );
}
