//! Engine behaviour under a user-space host that records what guests log.

mod common;

use common::{allow_slices, logs, released_maps, TestHost};
use wasm_engine::{
    Error, Grants, Lane, Limits, LoadSpec, LoadedModule, MemoryBudget, RawError, Registry, Value,
};

fn spec<'a>(name: &'a str, wasm: &'a [u8]) -> LoadSpec<'a> {
    LoadSpec {
        name,
        wasm,
        entrypoint: None,
        limits: Limits::default(),
        args: &[],
        env: &[],
        ..Default::default()
    }
}

const HELLO: &str = r#"(module
  (import "env" "_debug" (func $debug (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "Hello, world!\n")
  (func (export "main") (param i32 i32) (result i32)
    (drop (call $debug (i32.const 16) (i32.const 14)))
    (i32.const 0)))"#;

const MATHS: &str = r#"(module
  (import "env" "cpu_id" (func $cpu (result i32)))
  (global $count (mut i32) (i32.const 0))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "mul64") (param i64 i64) (result i64) (i64.mul (local.get 0) (local.get 1)))
  (func (export "hyp") (param f64 f64) (result f64)
    (f64.sqrt (f64.add (f64.mul (local.get 0) (local.get 0)) (f64.mul (local.get 1) (local.get 1)))))
  (func (export "half") (param f32) (result f32) (f32.div (local.get 0) (f32.const 2)))
  (func (export "count") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1))) (global.get $count))
  (func (export "cpu") (result i32) (call $cpu))
  (func (export "spin") (loop $l (br $l)))
  (func (export "boom") (result i32) unreachable)
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func $deep (export "deep") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $deep (i32.sub (local.get 0) (i32.const 1))))))))"#;

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

#[test]
fn hello_world_logs_once_per_instance_and_returns_main_result() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(HELLO);
    let m = reg.load(&spec("hello", &bin)).unwrap();
    assert_eq!(m.instances(), 2);
    assert_eq!(m.entry_result(), Some(0));
    assert_eq!(logs(), vec!["Hello, world!", "Hello, world!"]);
    let info = &reg.list()[0];
    assert_eq!(info.name, "hello");
    assert_eq!(info.imports[0].name, "env._debug");
    assert_eq!(info.instances.len(), 2);
    assert!(info
        .instances
        .iter()
        .all(|i| i.calls() == 1 && i.traps() == 0 && i.memory == 65536));
}

#[test]
fn typed_calls_return_exact_results() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let m = reg.load(&spec("maths", &bin)).unwrap();
    let call = |f: &str, args: &[Value]| m.call(0, f, args).map(|o| o.results);
    assert_eq!(
        call("add", &[Value::I32(2), Value::I32(40)]),
        Ok(vec![Value::I32(42)])
    );
    assert_eq!(
        call("mul64", &[Value::I64(1 << 40), Value::I64(3)]),
        Ok(vec![Value::I64(3 << 40)])
    );
    assert_eq!(
        call(
            "hyp",
            &[Value::F64(3f64.to_bits()), Value::F64(4f64.to_bits())]
        ),
        Ok(vec![Value::F64(5f64.to_bits())])
    );
    assert_eq!(
        call("half", &[Value::F32(1f32.to_bits())]),
        Ok(vec![Value::F32(0.5f32.to_bits())])
    );
    assert_eq!(m.call(1, "cpu", &[]).unwrap().results, vec![Value::I32(1)]);
}

#[test]
fn each_cpu_has_its_own_instance_state() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let m = reg.load(&spec("state", &bin)).unwrap();
    assert_eq!(
        m.call_on(0, "count", &[]).unwrap().results,
        vec![Value::I32(1)]
    );
    assert_eq!(
        m.call_on(0, "count", &[]).unwrap().results,
        vec![Value::I32(2)]
    );
    assert_eq!(
        m.call_on(1, "count", &[]).unwrap().results,
        vec![Value::I32(1)]
    );
    let info = m.info();
    assert_eq!(
        (info.instances[0].calls(), info.instances[1].calls()),
        (2, 1)
    );
}

#[test]
fn wrong_arguments_and_unknown_functions_are_refused() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let m = reg.load(&spec("args", &bin)).unwrap();
    let e = m.call(0, "add", &[Value::I32(1)]).unwrap_err();
    assert_eq!(e.errno(), 22);
    assert!(e.to_string().contains("add takes (i32, i32)"), "{e}");
    assert_eq!(
        m.call(0, "nope", &[]),
        Err(Error::NoFunction("nope".into()))
    );
}

#[test]
fn endless_guest_runs_out_of_fuel_and_instance_stays_usable() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let limits = Limits {
        fuel: 5_000_000,
        bpf_fuel: 0,
        memory: 0,
        instances: 0,
    };
    let m = reg
        .load(&LoadSpec {
            limits,
            ..spec("spin", &bin)
        })
        .unwrap();
    assert_eq!(m.call(0, "spin", &[]), Err(Error::OutOfFuel(5_000_000)));
    let info = m.info();
    assert_eq!(info.instances[0].traps(), 1);
    assert_eq!(info.instances[0].fuel_used(), 5_000_000);
    assert_eq!(
        m.call(0, "add", &[Value::I32(1), Value::I32(1)])
            .unwrap()
            .results,
        vec![Value::I32(2)]
    );
}

#[test]
fn host_can_interrupt_between_slices() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let m = reg.load(&spec("intr", &bin)).unwrap();
    allow_slices(3);
    assert_eq!(m.call(0, "spin", &[]), Err(Error::Interrupted));
    allow_slices(u64::MAX);
}

#[test]
fn traps_are_reported_with_their_cause() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let m = reg.load(&spec("traps", &bin)).unwrap();
    let e = m.call(0, "boom", &[]).unwrap_err();
    assert!(matches!(e, Error::Trap(_)) && e.errno() == 14, "{e}");
    let e = m
        .call(0, "div", &[Value::I32(1), Value::I32(0)])
        .unwrap_err();
    assert!(
        e.to_string().contains("divide by zero") || e.to_string().contains("division"),
        "{e}"
    );
    let e = m.call(0, "deep", &[Value::I32(1_000_000)]).unwrap_err();
    assert!(matches!(e, Error::Trap(_)), "{e}");
    assert_eq!(
        m.call(0, "deep", &[Value::I32(5000)]).unwrap().results,
        vec![Value::I32(5000)]
    );
}

#[test]
fn bad_modules_are_refused_and_registry_is_unchanged() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    assert_eq!(
        reg.load(&spec("bad", b"\0asm\x01\0\0\0garbage"))
            .unwrap_err()
            .errno(),
        8
    );
    assert_eq!(
        reg.load(&spec("bad", b"not wasm at all"))
            .unwrap_err()
            .errno(),
        8
    );
    let imports = wasm(r#"(module (import "env" "open" (func)))"#);
    let e = reg.load(&spec("bad", &imports)).unwrap_err();
    assert!(e.to_string().contains("env.open"), "{e}");
    assert_eq!(e.errno(), 67);
    let e = reg.load(&spec("bad name!", &wasm(MATHS))).unwrap_err();
    assert_eq!(e.errno(), 22);
    assert!(reg.is_empty());
}

#[test]
fn duplicate_names_are_refused() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    reg.load(&spec("dup", &bin)).unwrap();
    assert_eq!(
        reg.load(&spec("dup", &bin)).unwrap_err(),
        Error::Exists("dup".into())
    );
    assert_eq!(reg.len(), 1);
    reg.remove("dup").unwrap();
    assert_eq!(reg.remove("dup").unwrap_err().errno(), 2);
}

#[test]
fn memory_cap_is_enforced() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let big = wasm(
        r#"(module (memory (export "memory") 4)
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    );
    let limits = Limits {
        fuel: 0,
        bpf_fuel: 0,
        memory: 2 * 65536,
        instances: 0,
    };
    let e = reg
        .load(&LoadSpec {
            limits,
            ..spec("big", &big)
        })
        .unwrap_err();
    assert_eq!(e.errno(), 12, "{e}");
    let limits = Limits {
        fuel: 0,
        bpf_fuel: 0,
        memory: 5 * 65536,
        instances: 0,
    };
    let m = reg
        .load(&LoadSpec {
            limits,
            ..spec("big", &big)
        })
        .unwrap();
    assert_eq!(
        m.call(0, "grow", &[Value::I32(1)]).unwrap().results,
        vec![Value::I32(4)]
    );
    assert_eq!(
        m.call(0, "grow", &[Value::I32(1)]).unwrap().results,
        vec![Value::I32(-1)]
    );
    assert_eq!(m.info().instances[0].memory, 5 * 65536);
}

#[test]
fn entrypoint_choice_is_honoured() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let e = reg
        .load(&LoadSpec {
            entrypoint: Some("missing"),
            ..spec("ep", &bin)
        })
        .unwrap_err();
    assert_eq!(e.errno(), 2);
    let e = reg
        .load(&LoadSpec {
            entrypoint: Some("mul64"),
            ..spec("ep", &bin)
        })
        .unwrap_err();
    assert!(e.to_string().contains("entrypoint mul64"), "{e}");
    let m = reg
        .load(&LoadSpec {
            entrypoint: Some("count"),
            ..spec("ep", &bin)
        })
        .unwrap();
    assert_eq!(m.entry_result(), Some(1));
    let hello = wasm(HELLO);
    logs();
    reg.load(&LoadSpec {
        entrypoint: Some(""),
        ..spec("quiet", &hello)
    })
    .unwrap();
    assert!(logs().is_empty());
}

#[test]
fn debug_out_of_bounds_traps() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(
        r#"(module
      (import "env" "_debug" (func $debug (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "main") (result i32) (call $debug (i32.const 65530) (i32.const 100))))"#,
    );
    let e = reg.load(&spec("oob", &bin)).unwrap_err();
    assert_eq!(e.errno(), 14, "{e}");
}

#[test]
fn functions_with_too_many_values_are_refused() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let params = "i32 ".repeat(17);
    let bin = wasm(&format!(
        r#"(module (func (export "wide") (param {params})))"#
    ));
    let m = reg.load(&spec("wide", &bin)).unwrap();
    let args = vec![Value::I32(0); 17];
    let e = m.call(0, "wide", &args).unwrap_err();
    assert!(e.to_string().contains("more than 16"), "{e}");
}

const BPF: &str = r#"(module
  (memory (export "memory") 1)
  (global $calls (mut i64) (i64.const 0))
  (func (export "bpf_buffer") (result i32) (i32.const 1024))
  (func (export "bpf_buffer_size") (result i32) (i32.const 64))
  (func (export "add") (param i32 i64) (result i64)
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1)))
  (func (export "neg") (param f64) (result f64 i32) (f64.neg (local.get 0)) (i32.const -1))
  (func (export "calls") (result i64) (global.get $calls))
  (func (export "spin") (loop $l (br $l)))
  (func (export "boom") (result i32) unreachable)
  ;; Upper-cases the buffer in place and returns its length plus 1000.
  (func (export "upper") (param $len i32) (result i32) (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (if (i32.and (i32.ge_u (i32.load8_u offset=1024 (local.get $i)) (i32.const 97))
                   (i32.le_u (i32.load8_u offset=1024 (local.get $i)) (i32.const 122)))
        (then (i32.store8 offset=1024 (local.get $i)
          (i32.sub (i32.load8_u offset=1024 (local.get $i)) (i32.const 32)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.add (local.get $len) (i32.const 1000))))"#;

/// `call_raw` with `u64` values instead of lanes.
fn call_raw(
    m: &LoadedModule<TestHost>,
    cpu: usize,
    index: usize,
    args: &[u64],
    res: &mut [u64],
) -> Result<usize, RawError> {
    let args: Vec<Lane> = args.iter().map(|a| a.to_ne_bytes()).collect();
    let mut lanes = vec![[0u8; 8]; res.len()];
    let n = m.call_raw(cpu, index, &args, &mut lanes)?;
    for (r, l) in res.iter_mut().zip(&lanes) {
        *r = u64::from_ne_bytes(*l);
    }
    Ok(n)
}

#[test]
fn raw_calls_convert_values_and_keep_per_cpu_state() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(BPF);
    let m = reg.load(&spec("bpf", &bin)).unwrap();
    let add = m.export_index(b"add").unwrap();
    let mut res = [0u64; 4];
    assert_eq!(
        call_raw(&m, 1, add, &[(-5i32) as u32 as u64, 7], &mut res),
        Ok(1)
    );
    assert_eq!(res[0], 2);
    // add and boom take the typed fast path, neg (two results) the generic one.
    assert_eq!(
        call_raw(&m, 0, add, &[(-5i32) as u32 as u64, 2], &mut res),
        Ok(1)
    );
    assert_eq!(res[0], (-3i64) as u64, "i32 results are sign-extended");
    let boom = m.export_index(b"boom").unwrap();
    assert_eq!(call_raw(&m, 0, boom, &[], &mut res), Err(RawError::Trap));
    assert_eq!(
        m.info().instances[0].traps(),
        1,
        "a trap on the fast path counts"
    );
    let neg = m.export_index(b"neg").unwrap();
    assert_eq!(call_raw(&m, 0, neg, &[1.5f64.to_bits()], &mut res), Ok(2));
    assert_eq!((f64::from_bits(res[0]), res[1] as i64), (-1.5, -1));
    let calls = m.export_index(b"calls").unwrap();
    call_raw(&m, 0, calls, &[], &mut res).unwrap();
    assert_eq!(res[0], 1, "cpu 0 ran add once");
    call_raw(&m, 1, calls, &[], &mut res).unwrap();
    assert_eq!(res[0], 1);
    assert_eq!(m.export_index(b"nope"), None);
    assert_eq!(
        call_raw(&m, 0, 99, &[], &mut res),
        Err(RawError::NoFunction)
    );
    assert_eq!(
        call_raw(&m, 0, add, &[1], &mut res),
        Err(RawError::Arguments)
    );
    assert_eq!(
        call_raw(&m, 0, neg, &[0], &mut res[..1]),
        Err(RawError::Arguments)
    );
}

#[test]
fn raw_calls_refuse_more_values_than_a_call_carries() {
    // Found by the smith fuzz target: an export with more parameters than MAX_VALUES.
    let params = "i32 ".repeat(wasm_proto::MAX_VALUES + 1);
    let bin = wasm(&format!(
        r#"(module (func (export "wide") (param {params}) (result i32) (i32.const 7)))"#
    ));
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let m = reg.load(&spec("wide", &bin)).unwrap();
    let wide = m.export_index(b"wide").unwrap();
    let mut res = [0u64; 1];
    assert_eq!(
        call_raw(&m, 0, wide, &[0; wasm_proto::MAX_VALUES + 1], &mut res),
        Err(RawError::Arguments)
    );
}

#[test]
fn raw_call_failures_are_distinct_and_counted() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(BPF);
    let limits = Limits {
        fuel: 0,
        bpf_fuel: 10_000,
        memory: 0,
        instances: 0,
    };
    let m = reg
        .load(&LoadSpec {
            limits,
            ..spec("bpf", &bin)
        })
        .unwrap();
    let mut res = [0u64; 1];
    let spin = m.export_index(b"spin").unwrap();
    assert_eq!(
        call_raw(&m, 0, spin, &[], &mut res),
        Err(RawError::OutOfFuel)
    );
    assert_eq!(RawError::OutOfFuel.errno(), 62);
    let boom = m.export_index(b"boom").unwrap();
    assert_eq!(call_raw(&m, 0, boom, &[], &mut res), Err(RawError::Trap));
    let info = m.info();
    assert_eq!(info.instances[0].traps(), 2);
    assert!(info.instances[0].fuel_used() >= 10_000);
}

#[test]
fn buffer_calls_copy_in_and_out() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(BPF);
    let m = reg.load(&spec("buf", &bin)).unwrap();
    let upper = m.export_index(b"upper").unwrap();
    let mut buf = *b"hello, kernel";
    assert_eq!(m.call_buffer(0, upper, &mut buf), Ok(1013));
    assert_eq!(&buf, b"HELLO, KERNEL");
    let mut big = [0u8; 65];
    assert_eq!(m.call_buffer(0, upper, &mut big), Err(RawError::TooBig));
    let add = m.export_index(b"add").unwrap();
    assert_eq!(m.call_buffer(0, add, &mut buf), Err(RawError::Arguments));
    let plain = wasm(MATHS);
    let p = reg.load(&spec("plain", &plain)).unwrap();
    let count = p.export_index(b"count").unwrap();
    assert_eq!(p.call_buffer(0, count, &mut buf), Err(RawError::Arguments));
}

#[test]
fn half_declared_or_misplaced_buffers_are_refused_at_load() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let half = wasm(
        r#"(module (memory (export "memory") 1)
        (func (export "bpf_buffer") (result i32) (i32.const 0)))"#,
    );
    assert_eq!(reg.load(&spec("half", &half)).unwrap_err().errno(), 22);
    let outside = wasm(
        r#"(module (memory (export "memory") 1)
        (func (export "bpf_buffer") (result i32) (i32.const 65000))
        (func (export "bpf_buffer_size") (result i32) (i32.const 1000)))"#,
    );
    let e = reg.load(&spec("outside", &outside)).unwrap_err();
    assert!(e.to_string().contains("outside linear memory"), "{e}");
}

#[test]
fn a_shared_budget_caps_all_instances_together() {
    static BUDGET: MemoryBudget = MemoryBudget::new(200 << 10);
    let mut reg = Registry::<LoadedModule<TestHost>>::with_budget(&BUDGET);
    let bin = wasm(
        r#"(module (memory (export "memory") 2)
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#,
    );
    // Two instances of 128 KiB do not fit in 200 KiB: refused, and nothing stays charged.
    let e = reg.load(&spec("two", &bin)).unwrap_err();
    assert_eq!(e.errno(), 12, "{e}");
    assert_eq!(BUDGET.used(), 0);
    // One shared instance fits; growing past the budget fails like any memory.grow.
    let limits = Limits {
        fuel: 0,
        bpf_fuel: 0,
        memory: 0,
        instances: 1,
    };
    let m = reg
        .load(&LoadSpec {
            limits,
            ..spec("one", &bin)
        })
        .unwrap();
    assert_eq!(m.instances(), 1);
    assert_eq!(BUDGET.used(), 128 << 10);
    assert_eq!(
        m.call(1, "grow", &[Value::I32(2)]).unwrap().results,
        vec![Value::I32(-1)]
    );
    assert_eq!(
        m.call(1, "grow", &[Value::I32(1)]).unwrap().results,
        vec![Value::I32(2)]
    );
    assert_eq!(BUDGET.used(), 192 << 10);
    drop(m);
    reg.remove("one").unwrap();
    assert_eq!(BUDGET.used(), 0, "unload returns the memory to the budget");
}

#[test]
fn an_import_outside_the_grants_fails_the_load_naming_it() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(HELLO);
    let grants = Grants::parse(["wasi:clocks"]).unwrap();
    let e = reg
        .load(&LoadSpec {
            grants,
            ..spec("hello", &bin)
        })
        .unwrap_err();
    assert_eq!(e.errno(), wasm_proto::errno::EACCES);
    let msg = e.to_string();
    assert!(
        msg.contains("env._debug") && msg.contains("'debug'"),
        "{msg}"
    );
    assert!(reg.is_empty());
    let m = reg
        .load(&LoadSpec {
            grants: Grants::parse(["debug"]).unwrap(),
            ..spec("hello", &bin)
        })
        .unwrap();
    assert_eq!(m.info().grants, ["debug"]);
}

/// One raw call's first result, or its error.
fn raw1(m: &LoadedModule<TestHost>, index: usize, args: &[u64]) -> Result<u64, RawError> {
    let mut res = [0u64; 1];
    call_raw(m, 0, index, args, &mut res).map(|_| res[0])
}

/// A module whose `version` returns `v` and which exports `extra` first if `extra`.
fn versioned(v: i32, extra: bool) -> Vec<u8> {
    let extra = if extra {
        r#"(func (export "extra") (result i64) (i64.const 7))"#
    } else {
        ""
    };
    wasm(&format!(
        r#"(module {extra}
  (func (export "version") (result i32) (i32.const {v}))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"#
    ))
}

#[test]
fn a_replace_keeps_export_indices_and_old_calls_finish_on_the_old_code() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let (v1, v2) = (versioned(1, false), versioned(2, true));
    let old = reg.load(&spec("policy", &v1)).unwrap();
    let version = old.export_index(b"version").unwrap();
    let new = reg.replace_with(&spec("policy", &v2)).unwrap();
    assert_eq!(new.version(), 2);
    assert_eq!(new.export_index(b"version"), Some(version));
    assert_eq!(new.export_index(b"extra"), Some(2));
    assert_eq!(raw1(&new, version, &[]), Ok(2));
    // A caller that took the old module before the replace still runs the old code.
    assert_eq!(raw1(&old, version, &[]), Ok(1));
    assert_eq!(reg.get("policy").unwrap().info().version, 2);
    assert_eq!(reg.len(), 1);
}

#[test]
fn a_replace_that_drops_or_changes_an_export_is_refused_and_changes_nothing() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let v1 = versioned(1, true);
    reg.load(&spec("policy", &v1)).unwrap();
    let dropped = versioned(2, false);
    let e = reg.replace_with(&spec("policy", &dropped)).unwrap_err();
    assert_eq!(e.errno(), wasm_proto::errno::EINVAL);
    assert!(
        e.to_string().contains("does not export extra() -> (i64)"),
        "{e}"
    );
    let changed = wasm(
        r#"(module (func (export "extra") (result i64) (i64.const 1))
  (func (export "version") (result i32) (i32.const 3))
  (func (export "add") (param i64 i64) (result i64) (i64.add (local.get 0) (local.get 1))))"#,
    );
    let e = reg.replace_with(&spec("policy", &changed)).unwrap_err();
    assert!(
        e.to_string()
            .contains("export add would change from (i32, i32) -> (i32) to (i64, i64) -> (i64)"),
        "{e}"
    );
    let m = reg.get("policy").unwrap();
    assert_eq!(
        (m.version(), m.call(0, "version", &[]).unwrap().results),
        (1, vec![Value::I32(1)])
    );
    assert_eq!(
        reg.replace_with(&spec("other", &v1)).unwrap_err().errno(),
        wasm_proto::errno::ENOENT
    );
}

#[test]
fn user_and_ebpf_calls_are_counted_apart_with_latency() {
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MATHS);
    let m = reg.load(&spec("maths", &bin)).unwrap();
    let add = m.export_index(b"add").unwrap();
    let boom = m.export_index(b"boom").unwrap();
    m.call_on(0, "add", &[Value::I32(1), Value::I32(2)])
        .unwrap();
    raw1(&m, add, &[1, 2]).unwrap();
    raw1(&m, add, &[1, 2]).unwrap();
    assert_eq!(raw1(&m, boom, &[]), Err(RawError::Trap));
    let spin = m.export_index(b"spin").unwrap();
    assert_eq!(raw1(&m, spin, &[]), Err(RawError::OutOfFuel));
    let i = &m.info().instances[0];
    assert_eq!((i.user.calls, i.user.traps), (1, 0));
    assert_eq!((i.bpf.calls, i.bpf.traps, i.bpf.out_of_fuel), (4, 2, 1));
    assert_eq!(i.bpf.latency.iter().sum::<u64>(), 4);
    assert_eq!(i.user.latency.iter().sum::<u64>(), 1);
    assert!(i.bpf.fuel_used >= wasm_engine::DEFAULT_BPF_FUEL);
}

const MAPS: &str = r#"(module
  (import "bpf" "map_lookup" (func $lookup (param i32 i32 i32 i32 i32) (result i32)))
  (import "bpf" "map_update" (func $update (param i32 i32 i32 i32 i32 i64) (result i32)))
  (import "bpf" "map_delete" (func $delete (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; key at 0 (4 bytes), value at 8 (8 bytes)
  (func (export "put") (param $map i32) (param $k i32) (param $v i64) (param $flags i64) (result i32)
    (i32.store (i32.const 0) (local.get $k))
    (i64.store (i32.const 8) (local.get $v))
    (call $update (local.get $map) (i32.const 0) (i32.const 4) (i32.const 8) (i32.const 8) (local.get $flags)))
  (func (export "get") (param $map i32) (param $k i32) (result i64)
    (local $r i32)
    (i32.store (i32.const 0) (local.get $k))
    (i64.store (i32.const 8) (i64.const -1))
    (local.set $r (call $lookup (local.get $map) (i32.const 0) (i32.const 4) (i32.const 8) (i32.const 8)))
    (if (result i64) (i32.eqz (local.get $r)) (then (i64.load (i32.const 8))) (else (i64.extend_i32_s (local.get $r)))))
  (func (export "del") (param $map i32) (param $k i32) (result i32)
    (i32.store (i32.const 0) (local.get $k))
    (call $delete (local.get $map) (i32.const 0) (i32.const 4)))
  (func (export "short_key") (result i32)
    (call $lookup (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 8) (i32.const 8)))
  (func (export "wild") (result i32)
    (call $lookup (i32.const 0) (i32.const 65534) (i32.const 4) (i32.const 8) (i32.const 8))))"#;

#[test]
fn bpf_maps_are_reached_by_index_with_sizes_checked_and_released_with_the_module() {
    use wasm_engine::maps::MapRef;
    let mut reg = Registry::<LoadedModule<TestHost>>::new();
    let bin = wasm(MAPS);
    let maps = [MapRef {
        handle: 77,
        id: 5,
        kind: 1,
        key_size: 4,
        value_size: 8,
    }];
    let e = reg
        .load(&LoadSpec {
            maps: &maps,
            entrypoint: Some(""),
            ..spec("m", &bin)
        })
        .unwrap_err();
    assert!(e.to_string().contains("'bpf-maps'"), "{e}");
    assert!(
        released_maps().is_empty(),
        "a failed load leaves the maps to the caller"
    );
    let m = reg
        .load(&LoadSpec {
            maps: &maps,
            entrypoint: Some(""),
            grants: Grants::parse(["bpf-maps"]).unwrap(),
            ..spec("m", &bin)
        })
        .unwrap();
    let i32s = |v: &[i32]| v.iter().map(|x| Value::I32(*x)).collect::<Vec<_>>();
    let call = |f: &str, args: &[Value]| m.call(0, f, args).unwrap().results;
    let put = |k: i32, v: i64, flags: i64| {
        call(
            "put",
            &[
                Value::I32(0),
                Value::I32(k),
                Value::I64(v),
                Value::I64(flags),
            ],
        )
    };
    assert_eq!(put(10, 99, 0), i32s(&[0]));
    assert_eq!(
        put(10, 1, 1),
        i32s(&[-17]),
        "BPF_NOEXIST on an existing key"
    );
    assert_eq!(call("get", &i32s(&[0, 10])), vec![Value::I64(99)]);
    assert_eq!(call("get", &i32s(&[0, 11])), vec![Value::I64(-2)]);
    assert_eq!(
        call("get", &i32s(&[1, 10])),
        vec![Value::I64(-9)],
        "no map 1"
    );
    assert_eq!(put(10, 1, 3), i32s(&[-22]), "unknown flags");
    assert_eq!(call("short_key", &[]), i32s(&[-22]));
    assert!(matches!(m.call(0, "wild", &[]), Err(Error::Trap(_))));
    assert_eq!(call("del", &i32s(&[0, 10])), i32s(&[0]));
    assert_eq!(call("del", &i32s(&[0, 10])), i32s(&[-2]));
    let info = m.info();
    assert_eq!((info.maps[0].id, info.maps[0].kind.as_str()), (5, "hash"));
    drop(m);
    reg.remove("m").unwrap();
    assert_eq!(released_maps(), [77]);
}
