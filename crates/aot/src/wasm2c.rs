//! What the build changes in wasm2c's output (`m.c`), and why.
//!
//! wabt 1.0.32's `wasm2c` writes C for user space with guard pages; five of its habits cost
//! the kernel's bounds-checked code most of its speed, and [`adapt`] rewrites them:
//!
//! 1. **Every function's instance is `restrict`.** Linear memory is a separate allocation that
//!    never overlaps the instance (wasm.ko allocates both), but a store into linear memory is a
//!    `memcpy` through a `u8 *`, which may alias anything: without the qualifier the compiler
//!    reloads the memory's base and size, the globals and the fuel counter after every store.
//!    Everything else that changes the instance's state (`memory.grow`, imports, `refuel`) is
//!    a call, which the compiler treats as clobbering memory anyway.
//! 2. **The fuel counter is the head's field**, reached from the instance by a constant
//!    offset (`WASM_NATIVE_HEAD`), rather than through the pointer the imported global is in
//!    wasm2c's instance: a load less at every function entry and loop header, and, with (1),
//!    a counter the compiler keeps in a register between calls.
//! 3. **Loads are not forced into general-purpose registers.** wasm2c ends every load with
//!    `asm("" :: "r"(result))`, so that a load whose value is unused still happens and faults
//!    on a guard page; here every access is checked before it happens, so the statement only
//!    costs moves (an `f64` load went through an integer register).
//! 4. **The bounds check compares the address with the size less the access's length**, in
//!    signed 64-bit arithmetic, instead of the address plus the length with the size: the
//!    same test (addresses, lengths and sizes are all below 2^34, so nothing wraps), but
//!    `size - len` is one value per access width that the compiler keeps in a register, where
//!    `address + len` had to be computed at every access.
//! 5. **Each function keeps its memory's base and size in a local** ([`MEMORY_CACHE`]), which
//!    every load and store checks against and addresses through, and which is read again
//!    from the instance after every statement that calls anything that may grow the memory:
//!    a call, an import, `call_indirect`, `memory.grow`; that is, after every call but the
//!    fuel's `refuel`, [`crate::multi3`]'s `mul128` and wasm2c's own arithmetic helpers,
//!    which cannot. The instance's
//!    fields are memory a call may change, the local is not: without it the compiler
//!    reloaded the base and size at every loop header whose body can call `refuel`, as
//!    nearly every loop's can. A function the rewrite does not understand (more than one
//!    memory, a call that is not a statement of its own) is left as wasm2c wrote it.
//! 6. **A memory that cannot grow has a constant size** ([`fixed_sizes`]): one the module
//!    never grows (no `memory.grow` on it) or whose maximum is its initial size. wasm.ko
//!    allocates its initial pages at instantiation or refuses the instance, and only
//!    `memory.grow` resizes it, so the size is the initial pages' bytes for the instance's
//!    life. The local of rewrite 5 then takes that constant for its size and is never read
//!    again after a call (nothing can move the memory either), and its loads and stores call
//!    copies of wasm2c's helpers ([`FIXED_SUFFIX`]) whose check is unsigned, `address >
//!    size - len || size < len`, which with a constant size is one comparison with an
//!    immediate (rewrite 4's signed form is right for any size but keeps the compiler from
//!    reasoning about the address's range). So the compiler folds checks of one address at
//!    nearby offsets into one, and a function keeps a register more for its own values. A
//!    function with calls inside expressions is cached too: it needs no reads after them.
//!
//! Each of the first four rewrites must find what it rewrites, so a wasm2c whose output
//! differs is reported rather than silently left slow; the last two find nothing in a module
//! without memory.

use crate::fuel::{FUEL_GLOBAL, IMPORT_MODULE, REFUEL_FUNC};
use crate::glue::PREFIX;
use crate::multi3::MUL128_FUNC;
use core::fmt;

/// A rewrite that found nothing to rewrite: the output is not wabt 1.0.32's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wasm2c's output has no {} (wabt 1.0.32's wasm2c is expected)",
            self.0
        )
    }
}

impl std::error::Error for Error {}

/// `source` (wasm2c's `m.c`) with the rewrites of the module documentation.
///
/// # Errors
///
/// A rewrite found nothing to rewrite.
pub fn adapt(source: &str) -> Result<String, Error> {
    let param = format!("(Z_{PREFIX}_instance_t* instance");
    let fuel = format!("(*instance->Z_{IMPORT_MODULE}Z_{FUEL_GLOBAL})");
    let rewrites = [
        (
            param.clone(),
            format!("(Z_{PREFIX}_instance_t* restrict instance"),
        ),
        (fuel, "WASM_NATIVE_HEAD(instance)->fuel".to_string()),
        (r#"wasm_asm("" ::"r"(result));"#.to_string(), String::new()),
        (
            "if (UNLIKELY(offset + (uint64_t)len > mem->size))".to_string(),
            "if (UNLIKELY((s64)(offset) > (s64)mem->size - (s64)(len)))".to_string(),
        ),
    ];
    let mut out = source.to_string();
    for (from, to) in &rewrites {
        if !out.contains(from.as_str()) {
            return Err(Error(format!("`{from}`")));
        }
        out = out.replace(from.as_str(), to);
    }
    let fixed = fixed_sizes(&out);
    let definitions = if fixed.is_empty() {
        Vec::new()
    } else {
        helper_definitions(&out)
    };
    let helpers: Vec<&str> = definitions.iter().map(|(_, helper)| *helper).collect();
    let mut adapted = cache_memory(&out, &fixed, &helpers);
    if let Some((last, _)) = definitions.last() {
        let line = format!("\n{last}\n");
        let at = adapted
            .find(&line)
            .ok_or_else(|| Error(format!("`{last}`")))?;
        adapted.insert_str(at + line.len(), &fixed_copies(&definitions));
    }
    Ok(adapted)
}

/// The suffix of the load and store helpers of rewrite 6 (`i32_load_fixed`).
pub const FIXED_SUFFIX: &str = "_fixed";

/// wasm2c's definitions of its load and store helpers in `source`, each with the helper it
/// defines (`DEFINE_LOAD(i32_load, u32, u32, u32)` and `i32_load`).
fn helper_definitions(source: &str) -> Vec<(&str, &str)> {
    source
        .lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("DEFINE_LOAD(")
                .or_else(|| line.strip_prefix("DEFINE_STORE("))?;
            Some((line, rest.split_once(',')?.0))
        })
        .collect()
}

/// The [`FIXED_SUFFIX`] copies of the helpers `definitions`, with rewrite 6's check, and
/// wasm2c's check restored after them.
fn fixed_copies(definitions: &[(&str, &str)]) -> String {
    let mut copies = String::from(
        "#undef MEMCHECK\n\
         #define MEMCHECK(mem, a, t) \\\n\
         \x20 if (UNLIKELY((a) > mem->size - sizeof(t) || mem->size < sizeof(t))) \\\n\
         \x20   TRAP(OOB);\n",
    );
    for (line, helper) in definitions {
        copies.push_str(&line.replacen(helper, &format!("{helper}{FIXED_SUFFIX}"), 1));
        copies.push('\n');
    }
    copies
        .push_str("#undef MEMCHECK\n#define MEMCHECK(mem, a, t) RANGE_CHECK(mem, a, sizeof(t))\n");
    copies
}

/// Rewrite 6: the memories of `source` whose size never changes, with that size in bytes.
///
/// A memory is allocated once, in the instantiation, by `wasm_rt_allocate_memory(&instance->
/// NAME, INITIAL, MAX)`; it is fixed when `source` never calls `wasm_rt_grow_memory` on it, or
/// when `MAX` is `INITIAL`. A line that does not parse names no memory (which stays as it is).
pub fn fixed_sizes(source: &str) -> Vec<(&str, u64)> {
    const ALLOCATE: &str = "wasm_rt_allocate_memory(&instance->";
    source
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(ALLOCATE)?;
            let (arguments, _) = rest.split_once(')')?;
            let mut arguments = arguments.split(',').map(str::trim);
            let name = arguments.next()?;
            let initial: u64 = arguments.next()?.parse().ok()?;
            let max: u64 = arguments.next()?.parse().ok()?;
            let grows = source.contains(&format!("wasm_rt_grow_memory(&instance->{name},"));
            (!grows || initial == max).then_some((name, initial * WASM_PAGE))
        })
        .collect()
}

/// Bytes in a Wasm page.
const WASM_PAGE: u64 = 65_536;

/// The local of rewrite 5 (a name wasm2c, whose names start `w2c_` or `Z_`, never writes).
pub const MEMORY_CACHE: &str = "wasm_native_mem";

/// Rewrites 5 and 6 on every function of `source`; `fixed` are the memories of constant size,
/// `helpers` the load and store helpers that have copies for them.
fn cache_memory(source: &str, fixed: &[(&str, u64)], helpers: &[&str]) -> String {
    /// Where a line of `source` is.
    enum At<'a> {
        /// Between functions.
        Outside,
        /// In a function's parameters, which wasm2c breaks over lines when they are many.
        Signature,
        /// In a function's body: its lines so far.
        Body(Vec<&'a str>),
    }
    let param = format!("(Z_{PREFIX}_instance_t* restrict instance");
    let mut out = String::with_capacity(source.len() + source.len() / 16);
    let mut at = At::Outside;
    for line in source.split_inclusive('\n') {
        let text = line.trim_end();
        match &mut at {
            At::Outside | At::Signature => {
                out.push_str(line);
                let starts = matches!(at, At::Signature)
                    || (!text.starts_with(' ') && text.contains(&param));
                if starts && text.ends_with(") {") {
                    at = At::Body(Vec::new());
                } else if starts {
                    at = At::Signature;
                }
            }
            At::Body(lines) if text == "}" => {
                cache_function(lines, fixed, helpers, &mut out);
                out.push_str(line);
                at = At::Outside;
            }
            At::Body(lines) => lines.push(line),
        }
    }
    if let At::Body(lines) = at {
        lines.iter().for_each(|line| out.push_str(line));
    }
    out
}

/// Appends the body `lines` of one function to `out`, with its memory in [`MEMORY_CACHE`]
/// when the function accesses exactly one memory and, unless that memory is one of the
/// `fixed` ones (whose accesses then call the `helpers`' copies), every call in it is a
/// statement.
fn cache_function(lines: &[&str], fixed: &[(&str, u64)], helpers: &[&str], out: &mut String) {
    let refuel = format!("(*Z_{IMPORT_MODULE}Z_{REFUEL_FUNC})(");
    let mul128 = format!("(*Z_{IMPORT_MODULE}Z_{MUL128_FUNC})(");
    let mut memory = None;
    let mut single = lines.iter().any(|l| l.trim() == "FUNC_PROLOGUE;");
    let mut statements = true;
    let mut reloads = Vec::with_capacity(lines.len());
    for line in lines {
        for name in accessed_memories(line) {
            single &= *memory.get_or_insert(name) == name;
        }
        let reload = !line.contains(&refuel) && !line.contains(&mul128) && calls_out(line);
        statements &= !reload || line.trim_end().ends_with(';');
        reloads.push(reload);
    }
    let Some(memory) = memory.filter(|_| single) else {
        lines.iter().for_each(|line| out.push_str(line));
        return;
    };
    let size = fixed.iter().find(|(name, _)| *name == memory).map(|f| f.1);
    if size.is_none() && !statements {
        lines.iter().for_each(|line| out.push_str(line));
        return;
    }
    let read = format!("{MEMORY_CACHE} = instance->{memory};\n");
    let mut declared = false;
    for (line, reload) in lines.iter().zip(reloads) {
        if !declared {
            out.push_str(line);
            if line.trim() == "FUNC_PROLOGUE;" {
                out.push_str(&format!("  wasm_rt_memory_t {read}"));
                if let Some(size) = size {
                    out.push_str(&format!("  {MEMORY_CACHE}.size = {size}ull;\n"));
                }
                declared = true;
            }
            continue;
        }
        let mut rest = *line;
        while let Some(access) = next_access(rest) {
            out.push_str(&rest[..access.start]);
            out.push_str(access.helper);
            if size.is_some() && helpers.contains(&access.helper) {
                out.push_str(FIXED_SUFFIX);
            }
            out.push_str("(&");
            out.push_str(MEMORY_CACHE);
            rest = &rest[access.end..];
        }
        out.push_str(rest);
        if reload && size.is_none() {
            let indent = line.len() - line.trim_start().len();
            out.push_str(&line[..indent]);
            out.push_str(&read);
        }
    }
}

/// A load or store helper called with one of the instance's memories, in a line.
struct Access<'a> {
    /// Where the helper's name starts.
    start: usize,
    /// The helper (`i32_load`).
    helper: &'a str,
    /// The memory (`w2c_M0`).
    memory: &'a str,
    /// Where the memory's name ends.
    end: usize,
}

/// The memories `line` loads from or stores to (`w2c_M0` of `i32_load(&instance->w2c_M0,`).
fn accessed_memories(mut line: &str) -> impl Iterator<Item = &str> {
    core::iter::from_fn(move || {
        let access = next_access(line)?;
        line = &line[access.end..];
        Some(access.memory)
    })
}

/// The first access in `line`.
fn next_access(line: &str) -> Option<Access<'_>> {
    const ARGUMENT: &str = "(&instance->";
    line.match_indices(ARGUMENT).find_map(|(at, _)| {
        let helper = identifier_before(&line[..at]);
        let typed = ["i32_", "i64_", "f32_", "f64_"]
            .iter()
            .any(|t| helper.starts_with(t));
        if !typed || !(helper.contains("_load") || helper.contains("_store")) {
            return None;
        }
        let name = at + ARGUMENT.len();
        let end = line[name..].find(',').map_or(line.len(), |len| name + len);
        Some(Access {
            start: at - helper.len(),
            helper,
            memory: &line[name..end],
            end,
        })
    })
}

/// Whether `line` calls anything but wasm2c's helpers that leave the memory as it is: a
/// function, an import (through a pointer), `call_indirect`, `memory.grow`, a bulk memory
/// operation.
fn calls_out(line: &str) -> bool {
    line.contains("(*")
        || line
            .match_indices('(')
            .any(|(at, _)| !keeps_memory(identifier_before(line[..at].trim_end())))
}

/// The identifier that `text` ends with ("" if it ends otherwise).
fn identifier_before(text: &str) -> &str {
    let start = text
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |at| at + 1);
    &text[start..]
}

/// Whether `name(` in a function's body is not a call, or calls one of wasm2c's helpers,
/// none of which changes a memory's base or size.
fn keeps_memory(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "",
        "if",
        "switch",
        "while",
        "for",
        "return",
        "sizeof",
        "WASM_NATIVE_HEAD",
        "LIKELY",
        "UNLIKELY",
        "TRAP",
        "DIV_S",
        "DIV_U",
        "REM_S",
        "REM_U",
        "DIVREM_U",
        "ROTL",
        "ROTR",
        "TRUNC_S",
        "TRUNC_U",
        "TRUNC_SAT_S",
        "TRUNC_SAT_U",
        "FMIN",
        "FMAX",
        "isnan",
        "signbit",
        "copysign",
        "copysignf",
        "quiet_nan",
        "quiet_nanf",
    ];
    const PREFIXES: &[&str] = &["I32_", "I64_", "i32_", "i64_", "f32_", "f64_"];
    const MATH: &[&str] = &[
        "quiet",
        "sqrt",
        "floor",
        "ceil",
        "trunc",
        "nearbyint",
        "fabs",
    ];
    NAMES.contains(&name)
        || PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        || name.strip_prefix("wasm_").is_some_and(|op| {
            MATH.contains(&op) || op.strip_suffix('f').is_some_and(|op| MATH.contains(&op))
        })
}
