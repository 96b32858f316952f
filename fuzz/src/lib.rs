//! Fuzz targets for the code `wasm.ko` runs on user input, built here in user space from the
//! same crates: the `/dev/wasm` frame decoder, module loading from arbitrary bytes and from
//! `wasm-smith` modules (then calls with fuel), and the WASI layer.
//!
//! Each target is a function of the input bytes that must not panic, whatever they are; the
//! binaries in `fuzz_targets/` hand libFuzzer's inputs to them. The tests below run every
//! input of `corpus/` and `regressions/` through them, so a crash once found stays fixed.

use arbitrary::Unstructured;
use wasm_engine::{Host, Limits, LoadSpec, LoadedModule, MemoryBudget, Value};
use wasm_proto::{Request, Response, ValType};

/// The engine's host for fuzzing: no output, one instance, a deterministic clock and RNG.
pub struct FuzzHost;

impl Host for FuzzHost {
    fn log(line: &[u8]) {
        std::hint::black_box(line);
    }
    fn cpu_count() -> usize {
        1
    }
    fn between_slices() -> bool {
        true
    }
    fn now_ns() -> u64 {
        1_000_000
    }
    fn realtime_ns() -> u64 {
        1_700_000_000_000_000_000
    }
    fn random(buf: &mut [u8]) {
        buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    }
}

/// Linear memory the fuzzed modules may hold together.
static BUDGET: MemoryBudget = MemoryBudget::new(64 << 20);

/// Small limits, so that one input runs in milliseconds.
const LIMITS: Limits = Limits {
    fuel: 200_000,
    bpf_fuel: 200_000,
    memory: 4 << 20,
    instances: 1,
};

/// Loads `wasm` (running `entrypoint` if given) and calls every export whose parameters are
/// all numbers with zero arguments. Errors are fine; panics are not.
fn load_and_call(wasm: &[u8], entrypoint: Option<&str>) {
    let spec = LoadSpec {
        name: "fuzz",
        wasm,
        entrypoint,
        limits: LIMITS,
        args: &["one", "two words"],
        env: &["A=1"],
        ..Default::default()
    };
    let Ok(mut module) = LoadedModule::<FuzzHost>::load(&spec, &BUDGET) else {
        return;
    };
    if module.run_entrypoint().is_err() {
        return;
    }
    let exports = module.exports().to_vec();
    for export in exports {
        let args: Option<Vec<Value>> = export
            .params
            .iter()
            .map(|t| match t {
                ValType::I32 => Some(Value::I32(0)),
                ValType::I64 => Some(Value::I64(0)),
                ValType::F32 => Some(Value::F32(0)),
                ValType::F64 => Some(Value::F64(0)),
                ValType::Other => None,
            })
            .collect();
        if let Some(args) = args {
            let _ = module.call(0, &export.name, &args);
            let lanes: Vec<[u8; 8]> = args.iter().map(|_| [0; 8]).collect();
            let mut results = [[0u8; 8]; wasm_proto::MAX_VALUES];
            if let Some(i) = module.export_index(export.name.as_bytes()) {
                let _ = module.call_raw(0, i, &lanes, &mut results);
            }
        }
    }
}

/// The frame decoder: any bytes as a request and as a response; what decodes must encode
/// back to the same frame.
pub fn frames(data: &[u8]) {
    if let Ok(req) = wasm_proto::decode::<Request<'_>>(data) {
        let again = wasm_proto::encode(&req).expect("a decoded request encodes");
        assert_eq!(
            wasm_proto::decode::<Request<'_>>(&again).expect("re-encoded request decodes"),
            req
        );
    }
    if let Ok(resp) = wasm_proto::decode::<Response>(data) {
        let again = wasm_proto::encode(&resp).expect("a decoded response encodes");
        assert_eq!(
            wasm_proto::decode::<Response>(&again).expect("re-encoded response decodes"),
            resp
        );
    }
}

/// Module load from arbitrary bytes, then calls.
pub fn load(data: &[u8]) {
    load_and_call(data, Some(""));
}

/// A valid module made by `wasm-smith` from the input, then calls with fuel.
pub fn smith(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mut config) = u.arbitrary::<wasm_smith::Config>() else {
        return;
    };
    config.max_memory32_bytes = 1 << 20;
    config.memory64_enabled = false;
    config.threads_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.canonicalize_nans = false;
    let Ok(module) = wasm_smith::Module::new(config, &mut u) else {
        return;
    };
    load_and_call(&module.to_bytes(), Some(""));
}

/// WASI preview 1 functions the engine provides, with their parameter types.
const WASI: &[(&str, &[wasm_encoder::ValType], bool)] = {
    use wasm_encoder::ValType::{I32, I64};
    &[
        ("fd_write", &[I32, I32, I32, I32], true),
        ("fd_read", &[I32, I32, I32, I32], true),
        ("fd_fdstat_get", &[I32, I32], true),
        ("fd_close", &[I32], true),
        ("fd_seek", &[I32, I64, I32, I32], true),
        ("fd_prestat_get", &[I32, I32], true),
        ("fd_prestat_dir_name", &[I32, I32, I32], true),
        ("args_sizes_get", &[I32, I32], true),
        ("args_get", &[I32, I32], true),
        ("environ_sizes_get", &[I32, I32], true),
        ("environ_get", &[I32, I32], true),
        ("clock_time_get", &[I32, I64, I32], true),
        ("clock_res_get", &[I32, I32], true),
        ("random_get", &[I32, I32], true),
        ("sched_yield", &[], true),
        ("poll_oneoff", &[I32, I32, I32, I32], true),
        ("proc_exit", &[I32], false),
    ]
};

/// The WASI layer: a program whose `_start` makes up to 16 WASI calls with arguments from the
/// input, on a memory that starts with the input's remaining bytes.
pub fn wasi(data: &[u8]) {
    use wasm_encoder::{
        CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
        FunctionSection, ImportSection, Instruction, MemorySection, MemoryType, Module,
        TypeSection, ValType as T,
    };
    let mut u = Unstructured::new(data);
    let mut body = Function::new([]);
    for _ in 0..u.int_in_range(0..=16u8).unwrap_or(0) {
        let Ok(f) = u.choose_index(WASI.len()) else {
            break;
        };
        for p in WASI[f].1 {
            let ins = match p {
                T::I64 => Instruction::I64Const(u.arbitrary().unwrap_or(0)),
                _ => Instruction::I32Const(u.arbitrary::<u16>().unwrap_or(0).into()),
            };
            body.instruction(&ins);
        }
        body.instruction(&Instruction::Call(f as u32));
        if WASI[f].2 {
            body.instruction(&Instruction::Drop);
        }
    }
    body.instruction(&Instruction::End);

    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, (name, params, result)) in WASI.iter().enumerate() {
        let results: &[T] = if *result { &[T::I32] } else { &[] };
        types
            .ty()
            .function(params.iter().copied(), results.iter().copied());
        imports.import(
            "wasi_snapshot_preview1",
            name,
            EntityType::Function(i as u32),
        );
    }
    types.ty().function([], []);
    let start = WASI.len() as u32;
    let mut functions = FunctionSection::new();
    functions.function(start);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: Some(1),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("_start", ExportKind::Func, start);
    exports.export("memory", ExportKind::Memory, 0);
    let mut code = CodeSection::new();
    code.function(&body);
    let rest = u.take_rest();
    let mut datas = DataSection::new();
    datas.active(
        0,
        &ConstExpr::i32_const(0),
        rest[..rest.len().min(65536)].iter().copied(),
    );

    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&memories)
        .section(&exports)
        .section(&code)
        .section(&datas);
    load_and_call(&module.finish(), Some("_start"));
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs every file of `corpus/TARGET` and `regressions/TARGET` through `target`.
    fn replay(name: &str, target: fn(&[u8])) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                target(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n > 0, "no inputs for {name}");
    }

    #[test]
    fn frames_corpus_and_regressions() {
        replay("frames", super::frames);
    }

    #[test]
    fn load_corpus_and_regressions() {
        replay("load", super::load);
    }

    #[test]
    fn smith_corpus_and_regressions() {
        replay("smith", super::smith);
    }

    #[test]
    fn wasi_corpus_and_regressions() {
        replay("wasi", super::wasi);
    }
}
