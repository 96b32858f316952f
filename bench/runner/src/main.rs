//! `wasm-bench`: runs the benchmark guest's workloads on each engine in user space and prints
//! one `BENCH` line per engine and workload (medians over rounds, each round a fresh load),
//! after checking every result against the native build's. `cargo xtask bench` runs it on the
//! host and inside the VM next to `wasm.ko`, and turns the lines into the results table.

mod engines;
mod kernel_build;
mod protocol;
mod suite;

use anyhow::{bail, Context, Result};
use clap::Parser;
use engines::Engine;
use protocol::{Device, Session};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use suite::{Out, Scale};

#[derive(Parser)]
#[command(name = "wasm-bench", about = "Benchmark the Wasm engines")]
enum Cli {
    /// Run the workloads on each engine.
    Suite(SuiteArgs),
    /// Load a module into wasm.ko with more and more instances: load time and memory.
    Scaling {
        /// The module to load.
        #[arg(long)]
        guest: PathBuf,
        /// Instance counts; repeatable.
        #[arg(long, required = true)]
        instances: Vec<u32>,
    },
}

#[derive(clap::Args)]
struct SuiteArgs {
    /// The benchmark guest (samples/bench, bench_guest.wasm).
    #[arg(long)]
    guest: PathBuf,
    /// Workload sizes.
    #[arg(long, value_enum, default_value = "full")]
    scale: Scale,
    /// Engines to run; repeatable [default: all but wasm.ko]. Native always runs: it gives the
    /// expected results.
    #[arg(long, value_enum)]
    engine: Vec<Engine>,
    /// Rounds per engine; each loads the guest afresh. Figures are medians.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The guest compiled into a native module for the running kernel (`wasmctl compile`,
    /// registry name `bench-native`), for `--engine wasm-ko-native`.
    #[arg(long)]
    native_ko: Option<PathBuf>,
}

/// Durations of one engine's workloads, and their results.
#[derive(Default)]
struct Samples {
    times: BTreeMap<&'static str, Vec<Duration>>,
    results: BTreeMap<&'static str, Out>,
}

fn run_engine(
    engine: Engine,
    wasm: &[u8],
    native_ko: Option<&std::path::Path>,
    scale: Scale,
    rounds: u32,
) -> Result<Samples> {
    let mut samples = Samples::default();
    for _ in 0..rounds.max(1) {
        engine.open(wasm, native_ko, &mut |load, guest| {
            samples.times.entry("load").or_default().push(load);
            for w in suite::workloads(scale) {
                let mut args = w.args;
                if let Some((setup, arg)) = w.setup {
                    match guest.call(setup, &[arg], 1)? {
                        Out::Int(v) => args[0] = v as i32,
                        Out::F64(_) => bail!("{setup} returned a float"),
                    }
                }
                let started = Instant::now();
                let out = guest
                    .call(w.function, &args, w.calls)
                    .with_context(|| format!("{} on {}", w.name, engine.name()))?;
                let per_call = started.elapsed() / w.calls;
                samples.times.entry(w.name).or_default().push(per_call);
                samples.results.insert(w.name, out);
            }
            Ok(())
        })?;
    }
    Ok(samples)
}

fn main() -> Result<()> {
    match Cli::parse() {
        Cli::Suite(args) => suite(&args),
        Cli::Scaling { guest, instances } => scaling(&guest, &instances),
    }
}

/// Loads `guest` into wasm.ko once per instance count, without an entrypoint, and prints the
/// load's duration and the memory the module holds (live allocations of wasm.ko, linear
/// memory included). Stops at the number of possible CPUs, the most instances there can be.
fn scaling(guest: &std::path::Path, instances: &[u32]) -> Result<()> {
    let wasm = std::fs::read(guest).with_context(|| format!("cannot read {}", guest.display()))?;
    let mut session = Session::new(Device::open()?);
    for &n in instances {
        let before = session.stats()?;
        let started = Instant::now();
        let made = session.load("scaling", &wasm, n)?;
        let took = started.elapsed();
        let after = session.stats()?;
        session.unload()?;
        if made < n {
            println!("SCALING-LIMIT possible_cpus={made}");
            break;
        }
        println!(
            "SCALING instances={n} load_ns={} bytes={} linear_memory={}",
            took.as_nanos(),
            after.live_bytes.saturating_sub(before.live_bytes),
            after.memory_used.saturating_sub(before.memory_used),
        );
    }
    Ok(())
}

fn suite(cli: &SuiteArgs) -> Result<()> {
    let wasm = std::fs::read(&cli.guest)
        .with_context(|| format!("cannot read {}", cli.guest.display()))?;
    let mut engines = if cli.engine.is_empty() {
        Engine::USER.to_vec()
    } else {
        cli.engine.clone()
    };
    engines.retain(|e| *e != Engine::Native);
    engines.insert(0, Engine::Native);
    let mut expected = BTreeMap::new();
    for engine in engines {
        let s = run_engine(
            engine,
            &wasm,
            cli.native_ko.as_deref(),
            cli.scale,
            cli.rounds,
        )?;
        if engine == Engine::Native {
            expected = s.results.clone();
        }
        for (workload, times) in &s.times {
            let mut ns: Vec<u128> = times.iter().map(Duration::as_nanos).collect();
            ns.sort_unstable();
            let result = s.results.get(workload);
            if let (Some(got), Some(want)) = (result, expected.get(workload)) {
                if got != want {
                    bail!(
                        "{workload} on {} returned {got}, natively {want}",
                        engine.name()
                    );
                }
            }
            println!(
                "BENCH engine={} workload={workload} median_ns={} min_ns={} max_ns={} rounds={} result={}",
                engine.name(),
                ns[(ns.len() - 1) / 2],
                ns[0],
                ns[ns.len() - 1],
                ns.len(),
                result.map_or("-".to_string(), ToString::to_string),
            );
        }
    }
    Ok(())
}
