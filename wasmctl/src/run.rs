//! `wasmctl run`: the kernel's engine in user space, for developing modules without a kernel.

use crate::{args, output::Output};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;
use wasm_engine::{Host, Limits, LoadSpec, Registry};

/// User space as the engine's host: one instance, `_debug` to stdout.
struct UserHost;

impl Host for UserHost {
    fn log(line: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line).and_then(|()| out.write_all(b"\n"));
    }
    fn cpu_count() -> usize {
        1
    }
    fn between_slices() -> bool {
        true
    }
    fn now_ns() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Loads `wasm`, runs its entrypoint and optionally one more export.
pub fn run(
    out: &Output,
    wasm: &[u8],
    entrypoint: Option<&str>,
    invoke: Option<&str>,
    call_args: &[String],
    limits: Limits,
) -> Result<()> {
    let mut registry = Registry::<UserHost>::new();
    let spec = LoadSpec {
        name: "run",
        wasm,
        entrypoint,
        limits,
    };
    let module = registry.load(&spec).map_err(|e| anyhow!("{e}"))?;
    if let Some(function) = invoke {
        let sig = module
            .exports()
            .iter()
            .find(|e| e.name == function)
            .with_context(|| format!("the module exports no function '{function}'"))?;
        let values = args::parse_values(sig, call_args)?;
        let outcome = module
            .call(0, function, &values)
            .map_err(|e| anyhow!("{e}"))?;
        out.called(&outcome.results, outcome.fuel_used, outcome.cpu);
    } else if let Some(code) = module.entry_result() {
        if code != 0 {
            std::process::exit(code);
        }
    }
    Ok(())
}
