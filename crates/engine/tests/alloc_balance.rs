//! Allocation behaviour, checked with a counting global allocator: unloading returns every
//! allocation, and steady-state raw calls (the eBPF path) allocate nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use wasm_engine::{Host, Limits, LoadSpec, LoadedModule, Registry, Value};

struct Counting;

thread_local! {
    /// Live allocations made by this thread (each test runs on a thread of its own).
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// Allocations ever made by this thread.
    static MADE: Cell<u64> = const { Cell::new(0) };
}

fn live() -> i64 {
    LIVE.with(Cell::get)
}

fn made() -> u64 {
    MADE.with(Cell::get)
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.with(|l| l.set(l.get() + 1));
        MADE.with(|m| m.set(m.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.with(|l| l.set(l.get() - 1));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

struct QuietHost;
impl Host for QuietHost {
    fn log(_: &[u8]) {}
    fn cpu_count() -> usize {
        2
    }
    fn between_slices() -> bool {
        true
    }
    fn now_ns() -> u64 {
        0
    }
    fn realtime_ns() -> u64 {
        0
    }
    fn random(buf: &mut [u8]) {
        buf.fill(0);
    }
}

#[test]
fn load_call_unload_leaves_nothing_behind() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 2) (global $g (mut i32) (i32.const 0))
            (func (export "main") (result i32) (global.set $g (i32.const 1)) (i32.const 0))
            (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
            (func (export "spin") (loop $l (br $l))))"#,
    )
    .unwrap();
    let mut reg = Registry::<LoadedModule<QuietHost>>::new();
    let limits = Limits {
        fuel: 3_000_000,
        bpf_fuel: 0,
        memory: 0,
        instances: 0,
    };
    let spec = LoadSpec {
        name: "m",
        wasm: &wasm,
        entrypoint: None,
        limits,
        args: &[],
        env: &[],
        ..Default::default()
    };
    let before = live();
    for _ in 0..3 {
        let m = reg.load(&spec).unwrap();
        assert_eq!(
            m.call(0, "add", &[Value::I32(1), Value::I32(2)])
                .unwrap()
                .results,
            vec![Value::I32(3)]
        );
        assert!(m.call(1, "spin", &[]).is_err());
        assert!(reg.load(&spec).is_err());
        drop(m);
        reg.remove("m").unwrap();
        assert_eq!(live(), before, "allocations left after unload");
    }
}

#[test]
fn steady_state_raw_calls_do_not_allocate() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
            (func (export "bpf_buffer") (result i32) (i32.const 0))
            (func (export "bpf_buffer_size") (result i32) (i32.const 256))
            (func $fib (export "fib") (param i64) (result i64)
              (if (result i64) (i64.lt_u (local.get 0) (i64.const 2)) (then (local.get 0))
                (else (i64.add (call $fib (i64.sub (local.get 0) (i64.const 1)))
                               (call $fib (i64.sub (local.get 0) (i64.const 2)))))))
            (func (export "len") (param i32) (result i32) (local.get 0)))"#,
    )
    .unwrap();
    let mut reg = Registry::<LoadedModule<QuietHost>>::new();
    let spec = LoadSpec {
        name: "m",
        wasm: &wasm,
        entrypoint: None,
        limits: Limits::default(),
        args: &[],
        env: &[],
        ..Default::default()
    };
    let m = reg.load(&spec).unwrap();
    let (fib, len) = (
        m.export_index(b"fib").unwrap(),
        m.export_index(b"len").unwrap(),
    );
    let mut res = [[0u8; 8]; 1];
    let arg = [15u64.to_ne_bytes()];
    let mut buf = [7u8; 200];
    // The first call at a new depth may grow the cached stack; after that, nothing.
    for cpu in [0, 1] {
        m.call_raw(cpu, fib, &arg, &mut res).unwrap();
    }
    let before = made();
    for cpu in [0, 1] {
        for _ in 0..100 {
            assert_eq!(m.call_raw(cpu, fib, &arg, &mut res), Ok(1));
            assert_eq!(u64::from_ne_bytes(res[0]), 610);
            assert_eq!(m.call_buffer(cpu, len, &mut buf), Ok(200));
        }
    }
    assert_eq!(made(), before, "raw calls allocated");
}
