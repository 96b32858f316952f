//! Loading and unloading returns every allocation: checked with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
use wasm_engine::{Host, Limits, LoadSpec, Registry, Value};

struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(1, SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(1, SeqCst);
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
    let mut reg = Registry::<QuietHost>::new();
    let spec = LoadSpec {
        name: "m",
        wasm: &wasm,
        entrypoint: None,
        limits: Limits {
            fuel: 3_000_000,
            memory: 0,
        },
    };
    let before = LIVE.load(SeqCst);
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
        assert_eq!(LIVE.load(SeqCst), before, "allocations left after unload");
    }
}
