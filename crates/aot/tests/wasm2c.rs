//! The rewrites of wasm2c's output, against what wabt's wasm2c (1.0.32, from
//! scripts/install-deps.sh) really writes.

mod common;

use wasm_aot::wasm2c;

/// Instruments `wat` and returns wasm2c's `m.c` for it.
fn translate(wat: &str, name: &str) -> String {
    let (_, _, dir) = common::translate(wat, &format!("wasm2c-{name}"));
    std::fs::read_to_string(dir.join("m.c")).unwrap()
}

#[test]
fn functions_get_a_restrict_instance_the_heads_fuel_and_plain_loads() {
    let source = translate(
        r#"(module
            (memory 1)
            (func (export "sum") (param i32) (result i32) (local i32)
              (loop $l
                (local.set 1 (i32.add (local.get 1) (i32.load (local.get 0))))
                (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 4)))))
              (local.get 1)))"#,
        "sum",
    );
    assert!(source.contains("(*instance->Z_wasm_nativeZ_fuel)"));
    assert!(source.contains(r#"wasm_asm("" ::"r"(result));"#));
    let adapted = wasm2c::adapt(&source).unwrap();
    assert!(!adapted.contains("(*instance->Z_wasm_nativeZ_fuel)"));
    assert!(!adapted.contains("wasm_asm(\"\" ::\"r\""));
    assert!(!adapted.contains("(Z_m_instance_t* instance"));
    assert!(adapted.contains("if (UNLIKELY((s64)(offset) > (s64)mem->size - (s64)(len)))"));
    assert!(adapted.contains("u32 w2c_sum(Z_m_instance_t* restrict instance, u32 w2c_p0)"));
    // Charged at the entry and at the loop header.
    assert_eq!(
        adapted
            .matches("WASM_NATIVE_HEAD(instance)->fuel = w2c_j0;")
            .count(),
        2
    );
    // The instantiation still points the imported global at the head's counter.
    assert!(adapted.contains("instance->Z_wasm_nativeZ_fuel"));
}

#[test]
fn output_of_another_shape_is_reported() {
    let source = translate(
        r#"(module (memory 1) (func (export "f") (result i32) (i32.load (i32.const 0))))"#,
        "shape",
    );
    let other = source.replace("wasm_asm(\"\" ::\"r\"(result));", "FORCE_READ_INT(result);");
    let err = wasm2c::adapt(&other).unwrap_err();
    assert!(err.to_string().contains("wasm_asm"), "{err}");
    assert!(err.to_string().contains("wabt 1.0.32"), "{err}");
}
