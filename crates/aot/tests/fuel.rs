//! The instrumented modules run on wasmi with a host that plays the kernel's part: it counts
//! the refuel calls, refills the counter with a slice, and traps when the budget is spent.

use wasm_aot::fuel::{self, Error, FUEL_GLOBAL, IMPORT_MODULE, REFUEL_FUNC};
use wasmi::{Caller, Engine, Extern, Global, Linker, Module, Mutability, Store, TrapCode, Val};

/// The host's side of the metering.
struct Host {
    /// The fuel counter the module imports.
    fuel: Option<Global>,
    /// Fuel given per slice.
    slice: i64,
    /// Slices the budget allows; the next refuel traps.
    slices_left: u32,
    /// Refuel calls seen.
    refuels: u32,
}

fn refuel(mut caller: Caller<'_, Host>) -> Result<(), wasmi::Error> {
    caller.data_mut().refuels += 1;
    if caller.data().slices_left == 0 {
        return Err(wasmi::Error::from(TrapCode::OutOfFuel));
    }
    caller.data_mut().slices_left -= 1;
    let (global, slice) = (caller.data().fuel.unwrap(), caller.data().slice);
    global.set(&mut caller, Val::I64(slice)).unwrap();
    Ok(())
}

/// Instantiates the instrumented `wat` with `slices` slices of `slice` fuel.
fn instantiate(wat: &str, slice: i64, slices: u32) -> (Store<Host>, wasmi::Instance) {
    let wasm = fuel::instrument(&wat::parse_str(wat).unwrap()).unwrap();
    let engine = Engine::default();
    let module = Module::new(&engine, &wasm).unwrap();
    let mut store = Store::new(
        &engine,
        Host {
            fuel: None,
            slice,
            slices_left: slices,
            refuels: 0,
        },
    );
    let global = Global::new(&mut store, Val::I64(slice), Mutability::Var);
    store.data_mut().fuel = Some(global);
    let mut linker = Linker::<Host>::new(&engine);
    linker
        .define(IMPORT_MODULE, FUEL_GLOBAL, Extern::Global(global))
        .unwrap();
    linker
        .func_wrap(IMPORT_MODULE, REFUEL_FUNC, refuel)
        .unwrap();
    linker.func_wrap("env", "twice", |x: i32| x * 2).unwrap();
    linker
        .define(
            "env",
            "base",
            Extern::Global(Global::new(&mut store, Val::I32(100), Mutability::Const)),
        )
        .unwrap();
    let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
    (store, instance)
}

fn fuel_left(store: &Store<Host>) -> i64 {
    match store.data().fuel.unwrap().get(store) {
        Val::I64(v) => v,
        other => panic!("fuel is {other:?}"),
    }
}

const ENDLESS: &str = r#"(module (func (export "spin") (loop $l (br $l))))"#;

#[test]
fn an_endless_loop_reaches_refuel_every_slice_and_traps_when_the_budget_is_spent() {
    let (mut store, instance) = instantiate(ENDLESS, 1000, 5);
    let spin = instance.get_typed_func::<(), ()>(&store, "spin").unwrap();
    let err = spin.call(&mut store, ()).unwrap_err();
    assert_eq!(err.as_trap_code(), Some(TrapCode::OutOfFuel));
    // 5 slices refilled, the 6th refuel trapped.
    assert_eq!(store.data().refuels, 6);
    assert!(fuel_left(&store) < 0);
}

#[test]
fn endless_recursion_is_metered_at_function_entry() {
    let wat = r#"(module (func $f (export "f") (call $f)))"#;
    let (mut store, instance) = instantiate(wat, 50, 0);
    let f = instance.get_typed_func::<(), ()>(&store, "f").unwrap();
    let err = f.call(&mut store, ()).unwrap_err();
    // Fuel runs out long before wasmi's call stack does.
    assert_eq!(err.as_trap_code(), Some(TrapCode::OutOfFuel));
    assert_eq!(store.data().refuels, 1);
}

#[test]
fn results_are_unchanged_and_fuel_is_charged_per_region() {
    // Imports before and after the inserted ones keep their meaning: an imported function and
    // an imported global shift the defined ones.
    let wat = r#"(module
        (import "env" "twice" (func $twice (param i32) (result i32)))
        (import "env" "base" (global $base i32))
        (global $acc (mut i32) (i32.const 0))
        (func $add (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
        (func (export "sum_to") (param $n i32) (result i32) (local $i i32)
            (global.set $acc (global.get $base))
            (block $done
                (loop $next
                    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (global.set $acc (call $add (global.get $acc) (local.get $i)))
                    (br $next)))
            (call $twice (global.get $acc)))
        (table funcref (elem $add))
        (func (export "indirect") (param i32 i32) (result i32)
            (call_indirect (param i32 i32) (result i32) (local.get 0) (local.get 1) (i32.const 0))))"#;
    let (mut store, instance) = instantiate(wat, 1_000_000, 0);
    let sum_to = instance
        .get_typed_func::<i32, i32>(&store, "sum_to")
        .unwrap();
    assert_eq!(sum_to.call(&mut store, 10).unwrap(), (100 + 55) * 2);
    let after_10 = 1_000_000 - fuel_left(&store);
    assert_eq!(sum_to.call(&mut store, 20).unwrap(), (100 + 210) * 2);
    let after_20 = 1_000_000 - fuel_left(&store) - after_10;
    // Ten more iterations, each a loop header and a call of $add.
    assert!(after_20 > after_10 + 10 * 2, "{after_10} then {after_20}");
    let indirect = instance
        .get_typed_func::<(i32, i32), i32>(&store, "indirect")
        .unwrap();
    assert_eq!(indirect.call(&mut store, (40, 2)).unwrap(), 42);
    assert_eq!(store.data().refuels, 0);
}

#[test]
fn a_module_without_types_or_imports_gets_both() {
    let (mut store, instance) = instantiate(r#"(module (memory (export "m") 1))"#, 1, 0);
    assert!(instance.get_memory(&mut store, "m").is_some());
}

#[test]
fn guests_may_not_import_the_reserved_module() {
    let wat = r#"(module (import "wasm_native" "refuel" (func)))"#;
    let err = fuel::instrument(&wat::parse_str(wat).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::ReservedImport(ref n) if n == "refuel"),
        "{err}"
    );
}

#[test]
fn invalid_modules_and_unsupported_features_are_refused() {
    let err = fuel::instrument(b"\0asm\x01\0\0\0\x01").unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let simd = r#"(module (func (result v128) (v128.const i64x2 1 2)))"#;
    let err = fuel::instrument(&wat::parse_str(simd).unwrap()).unwrap_err();
    assert!(err.to_string().contains("SIMD"), "{err}");
}

/// How often each defined function of the instrumented `wat` sets the fuel counter (global 0
/// in a module that imports no global).
fn charges(wat: &str) -> Vec<usize> {
    let wasm = fuel::instrument(&wat::parse_str(wat).unwrap()).unwrap();
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
            let sets = body
                .get_operators_reader()
                .unwrap()
                .into_iter()
                .filter(|op| {
                    matches!(
                        op.as_ref().unwrap(),
                        wasmparser::Operator::GlobalSet { global_index: 0 }
                    )
                })
                .count();
            out.push(sets);
        }
    }
    out
}

#[test]
fn only_entries_that_can_recur_or_are_entered_from_outside_are_metered() {
    let wat = r#"(module
        (func $leaf (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
        (func $middle (param i32) (result i32) (call $leaf (i32.add (local.get 0) (call $leaf (local.get 0)))))
        (func $self (param i32) (result i32)
            (if (result i32) (local.get 0)
                (then (call $self (i32.sub (local.get 0) (i32.const 1))))
                (else (i32.const 0))))
        (func $ping (param i32) (result i32) (call $pong (local.get 0)))
        (func $pong (param i32) (result i32)
            (if (result i32) (local.get 0)
                (then (call $ping (i32.sub (local.get 0) (i32.const 1))))
                (else (i32.const 0))))
        (func $tabled (result i32) (i32.const 7))
        (func $looping (param i32) (loop $l (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))))
        (table funcref (elem $tabled))
        (func (export "run") (result i32) (call $middle (i32.const 3))))"#;
    // leaf, middle: called directly only, no cycle: charged at the call sites. self, ping,
    // pong: on cycles. tabled: callable through the table. looping: its loop header only.
    // run: exported.
    assert_eq!(charges(wat), vec![0, 0, 1, 1, 1, 1, 1, 1]);
}

#[test]
fn unmetered_entries_are_charged_where_they_are_called() {
    let wat = r#"(module
        (func $leaf (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
        (func $middle (param i32) (result i32) (call $leaf (call $leaf (local.get 0))))
        (func (export "called") (result i32) (call $middle (i32.const 3))))"#;
    let (mut store, instance) = instantiate(wat, 1_000_000, 0);
    let called = instance
        .get_typed_func::<(), i32>(&store, "called")
        .unwrap();
    assert_eq!(called.call(&mut store, ()).unwrap(), 81);
    let charged = 1_000_000 - fuel_left(&store);
    // run's own 3 operators, middle's 4, leaf's 4 twice.
    assert_eq!(charged, 3 + 4 + 2 * 4);
}

#[test]
fn recursion_through_a_table_is_metered() {
    let wat = r#"(module
        (type $t (func))
        (table funcref (elem $f))
        (func $f (call_indirect (type $t) (i32.const 0)))
        (func (export "go") (call $f)))"#;
    let (mut store, instance) = instantiate(wat, 50, 0);
    let go = instance.get_typed_func::<(), ()>(&store, "go").unwrap();
    let err = go.call(&mut store, ()).unwrap_err();
    assert_eq!(err.as_trap_code(), Some(TrapCode::OutOfFuel));
}

#[test]
fn endless_mutual_recursion_is_metered() {
    let wat = r#"(module
        (func $a (call $b))
        (func $b (call $c))
        (func $c (call $a))
        (func (export "go") (call $a)))"#;
    let (mut store, instance) = instantiate(wat, 50, 0);
    let go = instance.get_typed_func::<(), ()>(&store, "go").unwrap();
    let err = go.call(&mut store, ()).unwrap_err();
    assert_eq!(err.as_trap_code(), Some(TrapCode::OutOfFuel));
}
