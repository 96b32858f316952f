//! `native.c`: the C that joins wasm2c's output to wasm.ko.
//!
//! wasm2c translates the (instrumented) module into `m.c` and `m.h`: an instance structure,
//! an instantiation function and one C function per export, calling one C function per
//! import. [`generate`] writes the rest of the kernel module around them, in one translation
//! unit that includes `m.c`:
//!
//! - the instance wasm.ko allocates: its head (`struct wasm_native_instance`: the fuel
//!   counter, the stack floor, memory 0) followed by wasm2c's instance;
//! - the imports: the fuel global and the refuel function of [`crate::fuel`], and every other
//!   import as a call to `wasm_native_import()` with its arguments in 64-bit lanes;
//! - one entry per export with the uniform signature `wasm_native_entry_t` (lanes in, lanes
//!   out), which is what wasm.ko calls;
//! - the descriptor (`struct wasm_native_module`) and the module's init and exit functions,
//!   which register it with wasm.ko and unregister it.
//!
//! Names come from the Wasm module and are checked against the declarations in `m.h`, so a
//! wasm2c whose output differs from what this generator expects is reported, not miscompiled.

use crate::fuel::{FUEL_GLOBAL, IMPORT_MODULE, REFUEL_FUNC};
use crate::multi3::MUL128_FUNC;
use core::fmt::{self, Write};
use wasmparser::{CompositeInnerType, Operator, Parser, Payload, TypeRef, ValType};

/// The prefix wasm2c is run with (`-n m`): the C names of the generated code start with `Z_m`.
pub const PREFIX: &str = "m";

/// Why `native.c` cannot be generated.
#[derive(Debug)]
pub enum Error {
    /// The module does not parse.
    Invalid(wasmparser::BinaryReaderError),
    /// The module uses something the native tier does not support.
    Unsupported(String),
    /// `m.h` does not declare what the generator expects: another wasm2c version.
    Header(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(e) => write!(f, "invalid module: {e}"),
            Error::Unsupported(what) => write!(f, "not supported by the native tier: {what}"),
            Error::Header(what) => write!(
                f,
                "wasm2c's header does not declare {what} (wabt 1.0.32's wasm2c is expected)"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<wasmparser::BinaryReaderError> for Error {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Error::Invalid(e)
    }
}

/// The generated `native.c` and what the build must know of the module.
#[derive(Debug)]
pub struct Glue {
    /// The source of `native.c`.
    pub source: String,
    /// Whether the code uses floating point: it is then compiled with the FPU enabled and
    /// every call runs inside `kernel_fpu_begin/end`.
    pub fpu: bool,
}

/// A function type.
#[derive(Debug, Clone)]
struct FuncType {
    params: Vec<ValType>,
    results: Vec<ValType>,
}

/// What the generator reads from the instrumented module.
#[derive(Debug, Default)]
struct Info {
    types: Vec<FuncType>,
    /// The type of every function, imports first.
    funcs: Vec<u32>,
    /// Whether the module imports [`MUL128_FUNC`] ([`crate::multi3`]).
    mul128: bool,
    /// Function imports other than the refuel and mul128 functions: module, name, type.
    imports: Vec<(String, String, u32)>,
    /// Function exports: name, function index.
    exports: Vec<(String, u32)>,
    fpu: bool,
}

/// Operators that make a float out of something else than a float: a module without them,
/// and without float types anywhere, never has a float value.
fn makes_float(op: &Operator<'_>) -> bool {
    use Operator::*;
    matches!(
        op,
        F32Const { .. }
            | F64Const { .. }
            | F32Load { .. }
            | F64Load { .. }
            | F32ConvertI32S
            | F32ConvertI32U
            | F32ConvertI64S
            | F32ConvertI64U
            | F64ConvertI32S
            | F64ConvertI32U
            | F64ConvertI64S
            | F64ConvertI64U
            | F32ReinterpretI32
            | F64ReinterpretI64
    )
}

fn is_float(ty: &ValType) -> bool {
    matches!(ty, ValType::F32 | ValType::F64)
}

impl Info {
    fn of(wasm: &[u8]) -> Result<Self, Error> {
        let mut info = Info::default();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::TypeSection(reader) => {
                    for group in reader {
                        for sub in group?.into_types() {
                            let CompositeInnerType::Func(f) = &sub.composite_type.inner else {
                                return Err(Error::Unsupported("non-function types".into()));
                            };
                            info.types.push(FuncType {
                                params: f.params().to_vec(),
                                results: f.results().to_vec(),
                            });
                        }
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        let (module, name) = (import.module, import.name);
                        match import.ty {
                            TypeRef::Func(ty) => {
                                info.funcs.push(ty);
                                if (module, name) == (IMPORT_MODULE, MUL128_FUNC) {
                                    info.mul128 = true;
                                } else if (module, name) != (IMPORT_MODULE, REFUEL_FUNC) {
                                    info.imports.push((module.into(), name.into(), ty));
                                }
                            }
                            TypeRef::Global(_)
                                if (module, name) == (IMPORT_MODULE, FUEL_GLOBAL) => {}
                            _ => {
                                return Err(Error::Unsupported(format!(
                                    "the import {module}.{name}: only functions can be imported"
                                )))
                            }
                        }
                    }
                }
                Payload::FunctionSection(reader) => {
                    for ty in reader {
                        info.funcs.push(ty?);
                    }
                }
                Payload::GlobalSection(reader) => {
                    for global in reader {
                        info.fpu |= is_float(&global?.ty.content_type);
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        if export.kind == wasmparser::ExternalKind::Func {
                            info.exports.push((export.name.into(), export.index));
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    for local in body.get_locals_reader()? {
                        info.fpu |= is_float(&local?.1);
                    }
                    for op in body.get_operators_reader()? {
                        info.fpu |= makes_float(&op?);
                    }
                }
                _ => {}
            }
        }
        info.fpu |= info
            .types
            .iter()
            .any(|t| t.params.iter().chain(&t.results).any(is_float));
        Ok(info)
    }

    fn func_type(&self, func: u32) -> Result<&FuncType, Error> {
        self.funcs
            .get(func as usize)
            .and_then(|&ty| self.types.get(ty as usize))
            .ok_or_else(|| Error::Unsupported(format!("function {func} has no type")))
    }
}

/// wasm2c's name mangling: `Z_` then the name with every byte other than an ASCII letter,
/// digit or `_`, and `Z` itself, written as `Z` and two hex digits.
fn mangle(name: &str) -> String {
    let mut out = String::from("Z_");
    for b in name.bytes() {
        if (b.is_ascii_alphanumeric() && b != b'Z') || b == b'_' {
            out.push(b as char);
        } else {
            let _ = write!(out, "Z{b:02X}");
        }
    }
    out
}

/// A C string literal of any bytes.
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'?' || b == b' ' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\{b:03o}");
        }
    }
    out.push('"');
    out
}

/// The C type of a value, or an error naming `what` for reference types.
fn c_type(ty: &ValType, what: &str) -> Result<&'static str, Error> {
    Ok(match ty {
        ValType::I32 => "u32",
        ValType::I64 => "u64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => {
            return Err(Error::Unsupported(format!(
                "{what} has a parameter or result of reference type"
            )))
        }
    })
}

/// The ABI's letter of a value type (see `kmod/wasm_native.h`).
fn abi_letter(ty: &ValType) -> char {
    match ty {
        ValType::I32 => 'i',
        ValType::I64 => 'I',
        ValType::F32 => 'f',
        _ => 'F',
    }
}

/// wasm2c's letter of a value type in multi-value structures.
fn multi_letter(ty: &ValType) -> char {
    match ty {
        ValType::I32 => 'i',
        ValType::I64 => 'j',
        ValType::F32 => 'f',
        _ => 'd',
    }
}

/// The C expression of a lane holding `value` of type `ty`.
fn to_lane(ty: &ValType, value: &str) -> String {
    match ty {
        ValType::I32 => format!("(u64)(s64)(s32){value}"),
        ValType::I64 => value.to_string(),
        ValType::F32 => format!("wasm_native_lane_f32({value})"),
        _ => format!("wasm_native_lane_f64({value})"),
    }
}

/// The C expression of the value of type `ty` in `lane`.
fn from_lane(ty: &ValType, lane: &str) -> String {
    match ty {
        ValType::I32 => format!("(u32){lane}"),
        ValType::I64 => lane.to_string(),
        ValType::F32 => format!("wasm_native_f32({lane})"),
        _ => format!("wasm_native_f64({lane})"),
    }
}

/// The C return type wasm2c gives to a function returning `results`.
fn c_result(results: &[ValType], what: &str) -> Result<String, Error> {
    Ok(match results {
        [] => "void".into(),
        [one] => c_type(one, what)?.into(),
        more => {
            for ty in more {
                c_type(ty, what)?;
            }
            format!(
                "struct wasm_multi_{}",
                more.iter().map(multi_letter).collect::<String>()
            )
        }
    })
}

/// Checks that `header` declares a function `name` returning `ret`.
fn declared(header: &str, ret: &str, name: &str) -> Result<(), Error> {
    let wanted = format!("{ret} {name}(");
    if header.lines().any(|l| l.trim_start().starts_with(&wanted)) {
        Ok(())
    } else {
        Err(Error::Header(format!("`{wanted}...)`")))
    }
}

/// The import-instance types `Z_m_instantiate` takes after the instance, in order.
fn instantiate_params(header: &str) -> Result<Vec<String>, Error> {
    let head = format!("void {}_instantiate(", mangle(PREFIX));
    let line = header
        .lines()
        .find(|l| l.starts_with(&head))
        .ok_or_else(|| Error::Header(format!("`{head}...)`")))?;
    let params = line[head.len()..].trim_end_matches(");");
    Ok(params
        .split(',')
        .skip(1)
        .map(|p| p.trim().trim_end_matches('*').trim().to_string())
        .collect())
}

/// The field of wasm2c's instance structure that holds memory 0, if the module has one.
fn memory_field(header: &str) -> Option<String> {
    let start = format!("typedef struct {}_instance_t {{", mangle(PREFIX));
    header
        .lines()
        .skip_while(|l| !l.starts_with(&start))
        .take_while(|l| !l.starts_with('}'))
        .find_map(|l| {
            l.trim()
                .strip_prefix("wasm_rt_memory_t ")
                .map(|f| f.trim_end_matches(';').to_string())
        })
}

/// Writes `native.c` for the instrumented module `wasm` (see [`crate::fuel::instrument`]) whose
/// wasm2c header (run with `-n` [`PREFIX`]) is `header`, to register as `name`;
/// `wasm_size` is the size of the original module.
///
/// # Errors
///
/// [`Error::Unsupported`] for imports other than functions and for exports with reference
/// types, [`Error::Header`] when `header` is not what wasm2c 1.0.32 writes.
pub fn generate(wasm: &[u8], header: &str, name: &str, wasm_size: u64) -> Result<Glue, Error> {
    let info = Info::of(wasm)?;
    let m = mangle(PREFIX);
    let mut c = String::new();
    // `write!` into a String cannot fail.
    let out = &mut c;
    let _ = write!(
        out,
        "// SPDX-License-Identifier: GPL-2.0\n\
         /* Generated by wasmctl compile: the native module {name}. Do not edit. */\n\
         #include <linux/container_of.h>\n\
         #include <linux/module.h>\n\
         #include \"m.h\"\n\n\
         struct wasm_native_state {{\n\
         \tstruct wasm_native_instance head;\n\
         \t{m}_instance_t w2c;\n\
         }};\n\n\
         #define WASM_NATIVE_HEAD(i) (&container_of(i, struct wasm_native_state, w2c)->head)\n\
         #define WASM_NATIVE_FUNC_TYPES {}\n\
         #define WASM_NATIVE_TYPE_LANES {}\n\n\
         #include \"m.c\"\n\
         #include \"wasm-rt-impl.h\"\n\n",
        info.types.len().max(1),
        info.types
            .iter()
            .map(|t| t.params.len() + t.results.len())
            .sum::<usize>(),
    );

    // The fuel counter and the refuel function.
    let wn = mangle(IMPORT_MODULE);
    let fuel = format!("{wn}{}", mangle(FUEL_GLOBAL));
    let refuel = format!("{wn}{}", mangle(REFUEL_FUNC));
    if !header.contains(&format!("u64* {fuel}(struct {wn}_instance_t*);")) {
        return Err(Error::Header(format!("the fuel global {fuel}")));
    }
    declared(header, "void", &refuel)?;
    let _ = write!(
        out,
        "u64 *{fuel}(struct {wn}_instance_t *head)\n{{\n\
         \treturn (u64 *)&((struct wasm_native_instance *)head)->fuel;\n}}\n\n\
         void {refuel}(struct {wn}_instance_t *head)\n{{\n\
         \twasm_native_refuel();\n}}\n\n"
    );
    if info.mul128 {
        let mul128 = format!("{wn}{}", mangle(MUL128_FUNC));
        declared(header, "struct wasm_multi_jj", &mul128)?;
        let _ = write!(
            out,
            "struct wasm_multi_jj {mul128}(struct {wn}_instance_t *head,\n\
             \t\t\t\t\tu64 a_lo, u64 a_hi, u64 b_lo, u64 b_hi)\n{{\n\
             \tunsigned __int128 a = (unsigned __int128)a_hi << 64 | a_lo;\n\
             \tunsigned __int128 b = (unsigned __int128)b_hi << 64 | b_lo;\n\
             \tunsigned __int128 product = a * b;\n\n\
             \treturn (struct wasm_multi_jj){{ (u64)product, (u64)(product >> 64) }};\n}}\n\n"
        );
    }

    // The other imports, through wasm_native_import().
    let mut import_table = String::new();
    // A function imported twice is one C function (wasm2c's), calling with the first index.
    let mut defined = std::collections::BTreeSet::new();
    for (index, (module, field, ty)) in info.imports.iter().enumerate() {
        let what = format!("the import {module}.{field}");
        let ty = info
            .types
            .get(*ty as usize)
            .ok_or_else(|| Error::Unsupported(format!("{what} has no type")))?;
        let _ = writeln!(
            import_table,
            "\t{{ .module = {}, .name = {}, .params = \"{}\", .results = \"{}\" }},",
            c_string(module),
            c_string(field),
            ty.params.iter().map(abi_letter).collect::<String>(),
            ty.results.iter().map(abi_letter).collect::<String>(),
        );
        if !defined.insert((module, field)) {
            continue;
        }
        let ret = c_result(&ty.results, &what)?;
        let cname = format!("{}{}", mangle(module), mangle(field));
        declared(header, &ret, &cname)?;
        let mut params = format!("struct {}_instance_t *inst", mangle(module));
        let mut fill = String::new();
        for (i, p) in ty.params.iter().enumerate() {
            let _ = write!(params, ", {} p{i}", c_type(p, &what)?);
            let _ = writeln!(fill, "\tlanes[{i}] = {};", to_lane(p, &format!("p{i}")));
        }
        let lanes = ty.params.len().max(ty.results.len()).max(1);
        let _ = write!(
            out,
            "{ret} {cname}({params})\n{{\n\tu64 lanes[{lanes}];\n\n{fill}\
             \twasm_native_import({index}, lanes);\n"
        );
        match &ty.results[..] {
            [] => {}
            [one] => {
                let _ = writeln!(out, "\treturn {};", from_lane(one, "lanes[0]"));
            }
            more => {
                let _ = writeln!(out, "\t{{\n\t\t{ret} r;\n");
                for (i, r) in more.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "\t\tr.{}{i} = {};",
                        multi_letter(r),
                        from_lane(r, &format!("lanes[{i}]"))
                    );
                }
                let _ = writeln!(out, "\t\treturn r;\n\t}}");
            }
        }
        let _ = write!(out, "}}\n\n");
    }

    // One entry per export.
    let mut export_table = String::new();
    for (index, (export, func)) in info.exports.iter().enumerate() {
        let what = format!("the export {export}");
        let ty = info.func_type(*func)?;
        let ret = c_result(&ty.results, &what)?;
        let cname = format!("{m}{}", mangle(export));
        declared(header, &ret, &cname)?;
        let mut args = String::from("&s->w2c");
        for (i, p) in ty.params.iter().enumerate() {
            c_type(p, &what)?;
            let _ = write!(args, ", {}", from_lane(p, &format!("lanes[{i}]")));
        }
        let _ = write!(
            out,
            "static void wasm_native_export_{index}(struct wasm_native_instance *head, u64 *lanes)\n{{\n\
             \tstruct wasm_native_state *s = container_of(head, struct wasm_native_state, head);\n"
        );
        match &ty.results[..] {
            [] => {
                let _ = writeln!(out, "\n\t{cname}({args});");
            }
            [one] => {
                let _ = writeln!(
                    out,
                    "\n\tlanes[0] = {};",
                    to_lane(one, &format!("{cname}({args})"))
                );
            }
            more => {
                let _ = writeln!(out, "\t{ret} r = {cname}({args});\n");
                for (i, r) in more.iter().enumerate() {
                    let field = format!("r.{}{i}", multi_letter(r));
                    let _ = writeln!(out, "\tlanes[{i}] = {};", to_lane(r, &field));
                }
            }
        }
        let _ = write!(out, "}}\n\n");
        let _ = writeln!(
            export_table,
            "\t{{ .name = {}, .params = \"{}\", .results = \"{}\", .entry = wasm_native_export_{index} }},",
            c_string(export),
            ty.params.iter().map(abi_letter).collect::<String>(),
            ty.results.iter().map(abi_letter).collect::<String>(),
        );
    }

    // Instantiation: every import instance is the head, which the imports above ignore or
    // (the fuel global) read.
    let mut instances = String::new();
    for ty in instantiate_params(header)? {
        let _ = write!(instances, ", ({ty} *)head");
    }
    let memory = memory_field(header)
        .map(|f| format!("\thead->memory = &s->w2c.{f};\n"))
        .unwrap_or_default();
    let table = |name: &str, rows: &str| {
        if rows.is_empty() {
            String::new()
        } else {
            format!("static const struct wasm_native_func wasm_native_{name}[] = {{\n{rows}}};\n\n")
        }
    };
    let counted = |name: &str, rows: &str| {
        if rows.is_empty() {
            format!("\t.{name} = NULL,\n\t.nr_{name} = 0,\n")
        } else {
            format!(
                "\t.{name} = wasm_native_{name},\n\t.nr_{name} = ARRAY_SIZE(wasm_native_{name}),\n"
            )
        }
    };
    let _ = write!(
        out,
        "static void wasm_native_instantiate(struct wasm_native_instance *head)\n{{\n\
         \tstruct wasm_native_state *s = container_of(head, struct wasm_native_state, head);\n\n\
         {memory}\t{m}_instantiate(&s->w2c{instances});\n}}\n\n\
         static void wasm_native_release(struct wasm_native_instance *head)\n{{\n\
         \tstruct wasm_native_state *s = container_of(head, struct wasm_native_state, head);\n\n\
         \t{m}_free(&s->w2c);\n}}\n\n\
         {}{}\
         static ulong wasm_native_fuel;\n\
         module_param_named(fuel, wasm_native_fuel, ulong, 0444);\n\
         MODULE_PARM_DESC(fuel, \"Fuel allowed to each call (0: wasm.ko's default)\");\n\
         static ulong wasm_native_bpf_fuel;\n\
         module_param_named(bpf_fuel, wasm_native_bpf_fuel, ulong, 0444);\n\
         MODULE_PARM_DESC(bpf_fuel, \"Fuel allowed to each call from eBPF (0: wasm.ko's default)\");\n\
         static ulong wasm_native_memory;\n\
         module_param_named(memory, wasm_native_memory, ulong, 0444);\n\
         MODULE_PARM_DESC(memory, \"Largest linear memory of each instance, bytes (0: wasm.ko's default)\");\n\
         static uint wasm_native_instances;\n\
         module_param_named(instances, wasm_native_instances, uint, 0444);\n\
         MODULE_PARM_DESC(instances, \"Instances to create (0: one per possible CPU)\");\n\n\
         static struct wasm_native_module wasm_native_module = {{\n\
         \t.abi = WASM_NATIVE_ABI,\n\
         \t.flags = {},\n\
         \t.name = {},\n\
         \t.owner = THIS_MODULE,\n\
         \t.wasm_size = {wasm_size},\n\
         \t.instance_size = sizeof(struct wasm_native_state),\n\
         \t.instantiate = wasm_native_instantiate,\n\
         \t.release = wasm_native_release,\n\
         {}{}}};\n\n\
         static int __init wasm_native_init(void)\n{{\n\
         \twasm_native_module.fuel = wasm_native_fuel;\n\
         \twasm_native_module.bpf_fuel = wasm_native_bpf_fuel;\n\
         \twasm_native_module.memory = wasm_native_memory;\n\
         \twasm_native_module.instances = wasm_native_instances;\n\
         \t{m}_init_module();\n\
         \treturn wasm_native_register(&wasm_native_module);\n}}\n\n\
         static void __exit wasm_native_exit(void)\n{{\n\
         \twasm_native_unregister(&wasm_native_module);\n}}\n\n\
         module_init(wasm_native_init);\n\
         module_exit(wasm_native_exit);\n\
         MODULE_LICENSE(\"GPL\");\n\
         MODULE_DESCRIPTION({});\n\
         MODULE_SOFTDEP(\"pre: wasm\");\n",
        table("exports", &export_table),
        table("imports", &import_table),
        if info.fpu { "WASM_NATIVE_FPU" } else { "0" },
        c_string(name),
        counted("exports", &export_table),
        counted("imports", &import_table),
        c_string(&format!("Wasm module {name}, compiled for wasm.ko")),
    );
    Ok(Glue {
        source: c,
        fpu: info.fpu,
    })
}
