//! `wasmctl run`: the kernel's engine in user space, for developing modules without a kernel.

use crate::{args, output::Output};
use anyhow::{anyhow, Context, Result};
use std::io::{Read, Write};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasm_engine::{Host, LoadSpec, LoadedModule, Registry};

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
    fn realtime_ns() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
    fn random(buf: &mut [u8]) {
        let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
        if filled.is_err() {
            // No random device: a time-seeded xorshift keeps guests running.
            let mut x = Self::realtime_ns() | 1;
            for b in buf {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
        }
    }
}

/// Loads a module as `spec` says, runs its entrypoint and optionally one more export. A
/// non-zero entrypoint result (or `proc_exit` code) becomes the process's exit status.
pub fn run(
    out: &Output,
    spec: &LoadSpec<'_>,
    invoke: Option<&str>,
    call_args: &[String],
) -> Result<()> {
    let mut registry = Registry::<LoadedModule<UserHost>>::new();
    let module = registry.load(spec).map_err(|e| anyhow!("{e}"))?;
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
        out.called(
            &outcome.results,
            outcome.fuel_used,
            outcome.cpu,
            outcome.exit,
            None,
        );
    } else if let Some(code) = module.entry_result() {
        if code != 0 {
            std::process::exit(code);
        }
    }
    Ok(())
}
