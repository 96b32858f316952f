//! The known `__multi3`s become a call of `wasm_native.mul128`: run on wasmi, with a host
//! `mul128` that multiplies `u128`s, the instrumented module stores what the original stores,
//! in the same order, and traps where it traps.

use wasm_aot::fuel::{self, FUEL_GLOBAL, IMPORT_MODULE, REFUEL_FUNC};
use wasm_aot::multi3::MUL128_FUNC;
use wasmi::{Engine, Extern, Global, Linker, Memory, Module, Mutability, Store, Val};

/// compiler-builtins' `__multi3` as rustc 1.95 builds it for wasm32 (the benchmark guest's).
const COMPILER_BUILTINS: &str = "(local i64 i64 i64 i64 i64 i64)
        local.get 0 local.get 3 i64.const 4294967295 i64.and local.tee 5 local.get 1 i64.const
        4294967295 i64.and local.tee 6 i64.mul local.tee 7 local.get 3 i64.const 32 i64.shr_u
        local.tee 8 local.get 6 i64.mul local.tee 6 local.get 5 local.get 1 i64.const 32
        i64.shr_u local.tee 9 i64.mul i64.add local.tee 5 i64.const 32 i64.shl i64.add
        local.tee 10 i64.store local.get 0 local.get 8 local.get 9 i64.mul local.get 5
        local.get 6 i64.lt_u i64.extend_i32_u i64.const 32 i64.shl local.get 5 i64.const 32
        i64.shr_u i64.or i64.add local.get 10 local.get 7 i64.lt_u i64.extend_i32_u i64.add
        local.get 4 local.get 1 i64.mul local.get 3 local.get 2 i64.mul i64.add i64.add
        i64.store offset=8";

/// compiler-rt's `__multi3` as wasi-sdk's clang builds it (the C++ and Lua guests').
const COMPILER_RT: &str = "(local i64)
        local.get 0 local.get 4 local.get 1 i64.mul local.get 2 local.get 3 i64.mul i64.add
        local.get 3 i64.const 32 i64.shr_u local.tee 4 local.get 1 i64.const 32 i64.shr_u
        local.tee 2 i64.mul i64.add local.get 3 i64.const 4294967295 i64.and local.tee 3
        local.get 1 i64.const 4294967295 i64.and local.tee 1 i64.mul local.tee 5 i64.const 32
        i64.shr_u local.get 3 local.get 2 i64.mul i64.add local.tee 3 i64.const 32 i64.shr_u
        i64.add local.get 3 i64.const 4294967295 i64.and local.get 4 local.get 1 i64.mul
        i64.add local.tee 3 i64.const 32 i64.shr_u i64.add i64.store offset=8 local.get 0
        local.get 3 i64.const 32 i64.shl local.get 5 i64.const 4294967295 i64.and i64.or
        i64.store";

/// A module with `body` as its function `$multi3`, called by the export `mul`.
fn module(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
            (memory (export "memory") 1)
            (func $multi3 (param i32 i64 i64 i64 i64) {body})
            (func (export "mul") (param i32 i64 i64 i64 i64)
              (call $multi3 (local.get 0) (local.get 1) (local.get 2) (local.get 3)
                (local.get 4))))"#
    ))
    .unwrap()
}

/// Whether `wasm` imports `module.name`.
fn imports(wasm: &[u8], module: &str, name: &str) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .any(|payload| match payload.unwrap() {
            wasmparser::Payload::ImportSection(reader) => reader.into_imports().any(|import| {
                let import = import.unwrap();
                (import.module, import.name) == (module, name)
            }),
            _ => false,
        })
}

/// Instantiates `wasm` (instrumented or not) with the host's fuel and `mul128`.
fn instantiate(wasm: &[u8]) -> (Store<()>, wasmi::Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).unwrap();
    let mut store = Store::new(&engine, ());
    let mut linker = Linker::<()>::new(&engine);
    let fuel = Global::new(&mut store, Val::I64(1 << 40), Mutability::Var);
    linker
        .define(IMPORT_MODULE, FUEL_GLOBAL, Extern::Global(fuel))
        .unwrap();
    linker.func_wrap(IMPORT_MODULE, REFUEL_FUNC, || {}).unwrap();
    linker
        .func_wrap(
            IMPORT_MODULE,
            MUL128_FUNC,
            |a_lo: i64, a_hi: i64, b_lo: i64, b_hi: i64| {
                let wide = |lo: i64, hi: i64| u128::from(hi as u64) << 64 | u128::from(lo as u64);
                let product = wide(a_lo, a_hi).wrapping_mul(wide(b_lo, b_hi));
                (product as i64, (product >> 64) as i64)
            },
        )
        .unwrap();
    let instance = linker.instantiate_and_start(&mut store, &module).unwrap();
    (store, instance)
}

/// Calls `mul(at, a, b)` and returns whether it trapped and the 16 bytes at `at`.
fn mul(wasm: &[u8], at: u32, a: u128, b: u128) -> (bool, Vec<u8>) {
    let (mut store, instance) = instantiate(wasm);
    let memory: Memory = instance.get_memory(&store, "memory").unwrap();
    let args = [
        at as i32 as i64,
        a as i64,
        (a >> 64) as i64,
        b as i64,
        (b >> 64) as i64,
    ];
    let args: Vec<Val> = core::iter::once(Val::I32(args[0] as i32))
        .chain(args[1..].iter().map(|&v| Val::I64(v)))
        .collect();
    let func = instance.get_func(&store, "mul").unwrap();
    let trapped = func.call(&mut store, &args, &mut []).is_err();
    let end = (at as usize + 16).min(65536);
    (trapped, memory.data(&store)[at as usize..end].to_vec())
}

/// Operands: edges of the halves and quarters, and a pseudo-random run.
fn operands() -> Vec<u128> {
    let mut values = vec![
        0,
        1,
        2,
        10,
        u128::from(u32::MAX),
        1 << 32,
        u128::from(u64::MAX),
    ];
    values.extend([
        1 << 64,
        u128::MAX,
        u128::MAX / 3,
        i128::MIN as u128,
        i128::MAX as u128,
    ]);
    let mut x: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C834;
    for _ in 0..24 {
        x = x
            .wrapping_mul(0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645)
            .wrapping_add(1);
        values.push(x);
    }
    values
}

#[test]
fn both_known_bodies_call_mul128_and_store_the_same_product() {
    for body in [COMPILER_BUILTINS, COMPILER_RT] {
        let original = module(body);
        let instrumented = fuel::instrument(&original).unwrap();
        assert!(imports(&instrumented, IMPORT_MODULE, MUL128_FUNC));
        for &a in &operands() {
            for &b in &operands() {
                let (trapped, stored) = mul(&instrumented, 16, a, b);
                assert!(!trapped);
                assert_eq!(stored, a.wrapping_mul(b).to_le_bytes(), "{a:#x} * {b:#x}");
                assert_eq!((trapped, stored), mul(&original, 16, a, b));
            }
        }
    }
}

#[test]
fn a_store_out_of_bounds_traps_with_the_same_half_written_before_it() {
    let (a, b) = (u128::MAX / 3, 0x1234_5678_9ABC_DEF0_0FED_CBA9_8765_4321);
    for (body, low_written) in [(COMPILER_BUILTINS, true), (COMPILER_RT, false)] {
        let original = module(body);
        let instrumented = fuel::instrument(&original).unwrap();
        let (trapped, stored) = mul(&instrumented, 65536 - 8, a, b);
        assert!(trapped);
        assert_eq!((trapped, stored.clone()), mul(&original, 65536 - 8, a, b));
        let low = (a.wrapping_mul(b) as u64).to_le_bytes();
        assert_eq!(stored == low, low_written);
    }
}

#[test]
fn any_other_body_is_kept() {
    let changed = COMPILER_BUILTINS.replacen("i64.const 32", "i64.const 31", 1);
    let instrumented = fuel::instrument(&module(&changed)).unwrap();
    assert!(!imports(&instrumented, IMPORT_MODULE, MUL128_FUNC));
    let (_, stored) = mul(&instrumented, 16, 3, 5);
    assert_eq!(stored, mul(&module(&changed), 16, 3, 5).1);
}
