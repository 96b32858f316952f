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

/// The line after the first line of `source` that contains `what`.
fn line_after<'a>(source: &'a str, what: &str) -> &'a str {
    let mut lines = source.lines().skip_while(|line| !line.contains(what));
    assert!(lines.next().is_some(), "no `{what}` in:\n{source}");
    lines.next().unwrap().trim()
}

#[test]
fn functions_read_their_memory_again_after_calls_that_may_grow_it() {
    let source = translate(
        r#"(module
            (import "env" "f" (func $f (param i32)))
            (memory 1)
            (table 1 funcref)
            (type $t (func (param i32) (result i32)))
            (func $id (param i32) (result i32) (local.get 0))
            (func (export "g") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
              (result i32)
              (i32.store (local.get 0) (i32.const 1))
              (drop (memory.grow (i32.const 1)))
              (call $f (i32.load (local.get 0)))
              (drop (call_indirect (type $t) (i32.const 0) (i32.const 0)))
              (drop (call $id (i32.const 0)))
              (loop $l (br_if $l (i32.load8_u (local.get 0))))
              (i32.load offset=8 (local.get 0))))"#,
        "cache",
    );
    let adapted = wasm2c::adapt(&source).unwrap();
    let read = "wasm_native_mem = instance->w2c_M0;";
    // The parameters are more than wasm2c writes on one line; the body is rewritten anyway.
    assert!(
        adapted.contains("u32 w2c_p7, \n    u32 w2c_p8, "),
        "{adapted}"
    );
    assert_eq!(
        adapted.matches(&format!("wasm_rt_memory_t {read}")).count(),
        1
    );
    for access in ["i32_store(", "i32_load(", "i32_load8_u("] {
        assert!(
            adapted.contains(&format!("{access}&wasm_native_mem, ")),
            "{access}"
        );
        assert!(
            !adapted.contains(&format!("{access}&instance->")),
            "{access}"
        );
    }
    assert!(adapted.contains("wasm_rt_grow_memory(&instance->w2c_M0, "));
    for call in [
        "= wasm_rt_grow_memory(",
        "(*Z_envZ_f)(",
        "= CALL_INDIRECT(",
        "= w2c_id(",
    ] {
        assert_eq!(line_after(&adapted, call), read, "after {call}");
    }
    assert_eq!(adapted.matches(read).count(), 5);
    assert_ne!(line_after(&adapted, "(*Z_wasm_nativeZ_refuel)("), read);
}

#[test]
fn a_function_with_a_call_inside_an_expression_keeps_a_memory_that_grows_in_the_instance() {
    let source = translate(
        r#"(module
            (memory 1)
            (func $id (param i32) (result i32) (local.get 0))
            (func (export "more") (result i32) (memory.grow (i32.const 1)))
            (func (export "g") (param i32) (result i32)
              (i32.load (call $id (local.get 0)))))"#,
        "uncached",
    );
    let call = "w2c_i0 = w2c_id(instance, w2c_i0);";
    assert!(source.contains(call), "{source}");
    let other = source.replace(call, "if (w2c_id(instance, w2c_i0)) {}");
    let adapted = wasm2c::adapt(&other).unwrap();
    assert!(!adapted.contains("wasm_native_mem"));
    assert!(adapted.contains("i32_load(&instance->w2c_M0, "));
    assert!(wasm2c::adapt(&source)
        .unwrap()
        .contains("i32_load(&wasm_native_mem, "));
}

#[test]
fn a_memory_that_cannot_grow_has_a_constant_size_and_is_never_read_again() {
    let source = translate(
        r#"(module
            (memory 2)
            (func $id (param i32) (result i32) (local.get 0))
            (func (export "g") (param i32) (result i32)
              (drop (call $id (i32.load (local.get 0))))
              (i32.load offset=4 (call $id (local.get 0)))))"#,
        "fixed",
    );
    assert_eq!(wasm2c::fixed_sizes(&source), [("w2c_M0", 2 * 65536)]);
    // A call inside an expression, which a memory that may grow would not allow.
    let call = "w2c_i0 = w2c_id(instance, w2c_i0);";
    let nested = source.replace(call, "w2c_i0 = w2c_id(instance, w2c_id(instance, w2c_i0));");
    for source in [&source, &nested] {
        let adapted = wasm2c::adapt(source).unwrap();
        let declared = "  wasm_rt_memory_t wasm_native_mem = instance->w2c_M0;\n  \
                        wasm_native_mem.size = 131072ull;\n";
        assert_eq!(adapted.matches(declared).count(), 1, "{adapted}");
        assert_eq!(adapted.matches("wasm_native_mem = instance->").count(), 1);
        assert!(adapted.contains("i32_load_fixed(&wasm_native_mem, (u64)(w2c_i0) + 4u)"));
        assert!(!adapted.contains("i32_load(&instance->"));
        // The copies check unsigned, then the helpers of other memories check as before.
        let copies = adapted
            .split_once("DEFINE_STORE(i64_store32, u32, u64)\n#undef MEMCHECK\n")
            .unwrap()
            .1;
        let (check, rest) = copies
            .split_once("DEFINE_LOAD(i32_load_fixed, u32, u32, u32)")
            .unwrap();
        assert!(
            check.contains("if (UNLIKELY((a) > mem->size - sizeof(t) || mem->size < sizeof(t)))")
        );
        assert!(rest.contains(
            "DEFINE_STORE(i64_store32_fixed, u32, u64)\n#undef MEMCHECK\n\
                               #define MEMCHECK(mem, a, t) RANGE_CHECK(mem, a, sizeof(t))\n"
        ));
    }
}

#[test]
fn a_memory_grown_only_up_to_its_initial_size_is_fixed_and_one_that_grows_is_not() {
    let memory = |limits: &str, name: &str| {
        translate(
            &format!(
                r#"(module
                    (memory {limits})
                    (func (export "g") (result i32)
                      (drop (memory.grow (i32.const 1)))
                      (i32.load (i32.const 0))))"#
            ),
            name,
        )
    };
    let capped = memory("3 3", "capped");
    assert_eq!(wasm2c::fixed_sizes(&capped), [("w2c_M0", 3 * 65536)]);
    let adapted = wasm2c::adapt(&capped).unwrap();
    assert!(adapted.contains("wasm_native_mem.size = 196608ull;"));
    assert!(adapted.contains("i32_load_fixed(&wasm_native_mem, "));
    let grows = memory("3 4", "grows");
    assert!(wasm2c::fixed_sizes(&grows).is_empty());
    let adapted = wasm2c::adapt(&grows).unwrap();
    assert!(!adapted.contains("wasm_native_mem.size"));
    assert!(!adapted.contains("_fixed"));
    assert_eq!(
        line_after(&adapted, "= wasm_rt_grow_memory("),
        "wasm_native_mem = instance->w2c_M0;"
    );
}
