//! `native.c` generation against the header wabt's wasm2c (1.0.32, from scripts/install-deps.sh)
//! really writes.

mod common;

use wasm_aot::{fuel, glue};

/// Instruments `wat`, runs wasm2c on it and generates `native.c`.
fn generate(wat: &str, name: &str) -> Result<glue::Glue, glue::Error> {
    let (instrumented, size, dir) = common::translate(wat, &format!("glue-{name}"));
    let header = std::fs::read_to_string(dir.join("m.h")).unwrap();
    glue::generate(&instrumented, &header, name, size as u64)
}

#[test]
fn integer_module_gets_entries_imports_and_descriptor() {
    let glue = generate(
        r#"(module
            (import "env" "_debug" (func $d (param i32) (result i32)))
            (memory 1)
            (func (export "main") (result i32) i32.const 2 call $d)
            (func (export "add64") (param i64 i64) (result i64) local.get 0 local.get 1 i64.add)
            (func (export "Zz-weird\"name") (param i32) (result i32 i64)
                local.get 0 i64.const 7))"#,
        "hello",
    )
    .unwrap();
    let c = &glue.source;
    assert!(!glue.fpu);
    assert!(c.contains(".flags = 0,"));
    assert!(c.contains(".name = \"hello\","));
    // The import goes through wasm_native_import with its argument in lane 0.
    assert!(c.contains("u32 Z_envZ__debug(struct Z_env_instance_t *inst, u32 p0)"));
    assert!(c.contains("wasm_native_import(0, lanes);"));
    assert!(c.contains(".module = \"env\", .name = \"_debug\", .params = \"i\", .results = \"i\""));
    // Exports: i32 results sign-extended, i64 as they are, multi-value field by field.
    assert!(c.contains("lanes[0] = (u64)(s64)(s32)Z_mZ_main(&s->w2c);"));
    assert!(c.contains("lanes[0] = Z_mZ_add64(&s->w2c, lanes[0], lanes[1]);"));
    assert!(c.contains(".params = \"II\", .results = \"I\""));
    assert!(
        c.contains("struct wasm_multi_ij r = Z_mZ_Z5AzZ2DweirdZ22name(&s->w2c, (u32)lanes[0]);")
    );
    assert!(c.contains("lanes[1] = r.j1;"));
    assert!(c.contains(".name = \"Zz-weird\\042name\""));
    // Memory 0 is known to wasm.ko before the instantiation allocates it.
    assert!(c.contains("head->memory = &s->w2c.w2c_M0;"));
    assert!(c.contains(".nr_exports = ARRAY_SIZE(wasm_native_exports),"));
}

#[test]
fn floats_anywhere_make_an_fpu_module() {
    for (what, body) in [
        (
            "signature",
            "(func (export \"f\") (param f64) (result f64) local.get 0 f64.sqrt)",
        ),
        ("local", "(func (export \"f\") (local f32))"),
        (
            "constant",
            "(func (export \"f\") (result i32) f32.const 1.5 i32.trunc_f32_s)",
        ),
        ("global", "(global f64 (f64.const 0)) (func (export \"f\"))"),
    ] {
        let glue = generate(&format!("(module {body})"), what).unwrap();
        assert!(glue.fpu, "{what}");
        assert!(glue.source.contains(".flags = WASM_NATIVE_FPU,"), "{what}");
    }
}

#[test]
fn module_without_memory_or_imports() {
    let glue = generate("(module (func (export \"nop\")))", "bare").unwrap();
    assert!(!glue.source.contains("head->memory"));
    assert!(glue.source.contains(".imports = NULL,"));
    assert!(glue.source.contains("\tZ_mZ_nop(&s->w2c);"));
}

#[test]
fn imports_other_than_functions_are_refused() {
    let err = generate(r#"(module (import "env" "mem" (memory 1)))"#, "mem").unwrap_err();
    assert!(matches!(err, glue::Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("env.mem"), "{err}");
}

#[test]
fn a_header_of_another_shape_is_reported() {
    let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let instrumented = fuel::instrument(&wasm).unwrap();
    let err = glue::generate(&instrumented, "/* nothing */", "x", 0).unwrap_err();
    assert!(matches!(err, glue::Error::Header(_)), "{err}");
}

#[test]
fn a_function_imported_twice_is_defined_once_and_listed_twice() {
    let glue = generate(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_close" (func $a (param i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_close" (func $b (param i32) (result i32)))
            (func (export "f") (result i32) (i32.add (call $a (i32.const 3)) (call $b (i32.const 4)))))"#,
        "twice",
    )
    .unwrap();
    let c = &glue.source;
    let definition = "u32 Z_wasi_snapshot_preview1Z_fd_close(";
    assert_eq!(c.matches(definition).count(), 1, "{c}");
    assert!(c.contains("wasm_native_import(0, lanes);"));
    let entry = ".module = \"wasi_snapshot_preview1\", .name = \"fd_close\", .params = \"i\"";
    assert_eq!(c.matches(entry).count(), 2);
}
