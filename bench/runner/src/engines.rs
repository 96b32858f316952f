//! The engines under comparison, each behind [`Guest`]: load once, then call exports.

use crate::kernel_build::InProcess;
use crate::protocol::{Device, Session};
use crate::suite::{sig, Out, Sig};
use anyhow::{anyhow, bail, Context, Result};
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use wasm_engine::{Host, LoadSpec, LoadedModule, Registry, Value};

/// A loaded benchmark guest.
pub trait Guest {
    /// Calls `function` with `args` `times` times; returns the last result.
    fn call(&mut self, function: &str, args: &[i32], times: u32) -> Result<Out>;
}

/// The engines, in the order of the results table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// The workloads compiled natively (Rust, `-O3`): the baseline.
    Native,
    /// `wasm.ko` itself, through `/dev/wasm` (inside the VM).
    WasmKo,
    /// The guest compiled into a native module (`wasmctl compile`), inserted with `insmod`
    /// (timed as the load) and called through `/dev/wasm` (inside the VM).
    WasmKoNative,
    /// `wasm.ko`'s Rust half, built for `x86_64-unknown-none` with the kernel's flags, driven
    /// through its `/dev/wasm` entry points in user space.
    KernelBuild,
    /// The same engine crate built for user space, as `wasmctl run` uses it.
    UserBuild,
    /// wasm3, the interpreter of the original C module.
    Wasm3,
    /// wasmtime with Cranelift: a JIT, for reference.
    Wasmtime,
}

impl Engine {
    /// Every engine that runs in user space.
    pub const USER: [Engine; 5] = [
        Engine::Native,
        Engine::KernelBuild,
        Engine::UserBuild,
        Engine::Wasm3,
        Engine::Wasmtime,
    ];

    /// The name in results.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Native => "native",
            Engine::WasmKo => "wasm.ko",
            Engine::WasmKoNative => "wasm.ko-native",
            Engine::KernelBuild => "kernel-build",
            Engine::UserBuild => "user-build",
            Engine::Wasm3 => "wasm3",
            Engine::Wasmtime => "wasmtime",
        }
    }

    /// Loads `wasm` (timed) and hands the guest to `body` with the load's duration. The
    /// native tier inserts `native_ko` instead, the same guest compiled for this kernel.
    pub fn open(
        self,
        wasm: &[u8],
        native_ko: Option<&Path>,
        body: &mut dyn FnMut(Duration, &mut dyn Guest) -> Result<()>,
    ) -> Result<()> {
        let started = Instant::now();
        match self {
            Engine::Native => body(started.elapsed(), &mut Native::new()),
            Engine::WasmKo => {
                let mut s = Session::new(Device::open()?);
                s.load("bench", wasm, 1)?;
                body(started.elapsed(), &mut s)
            }
            Engine::WasmKoNative => {
                let ko = native_ko.context("the native tier needs --native-ko")?;
                run_tool(
                    Command::new("insmod")
                        .arg(ko)
                        .arg("instances=1")
                        .arg(format!("fuel={FUEL}")),
                )?;
                let load = started.elapsed();
                let mut s = Session::new(Device::open()?);
                s.attach(NATIVE_NAME);
                let result = body(load, &mut s);
                s.unload()?;
                let module = ko.file_stem().context("module name")?;
                run_tool(Command::new("rmmod").arg(module))?;
                result
            }
            Engine::KernelBuild => {
                let mut s = Session::new(InProcess::open()?);
                s.load("bench", wasm, 1)?;
                body(started.elapsed(), &mut s)
            }
            Engine::UserBuild => {
                let mut registry = Registry::<LoadedModule<BenchHost>>::new();
                let module = registry.load(&spec(wasm)).map_err(|e| anyhow!("{e}"))?;
                body(started.elapsed(), &mut EngineGuest(&module))
            }
            Engine::Wasm3 => {
                let env = wasm3::Environment::new().map_err(|e| anyhow!("wasm3: {e}"))?;
                let runtime = env
                    .create_runtime(WASM3_STACK_SLOTS)
                    .map_err(|e| anyhow!("wasm3: {e}"))?;
                let module = runtime
                    .parse_and_load_module(wasm)
                    .map_err(|e| anyhow!("wasm3: {e}"))?;
                body(started.elapsed(), &mut Wasm3Guest(module))
            }
            Engine::Wasmtime => {
                let engine = wasmtime::Engine::default();
                let module = wt(wasmtime::Module::new(&engine, wasm))?;
                let mut store = wasmtime::Store::new(&engine, ());
                let instance = wt(wasmtime::Instance::new(&mut store, &module, &[]))?;
                body(started.elapsed(), &mut WasmtimeGuest { store, instance })
            }
        }
    }
}

/// The registry name the benchmark's native module registers under (`wasmctl compile --name`).
pub const NATIVE_NAME: &str = "bench-native";

fn run_tool(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// wasm3's value stack, in slots: deep enough for fib's recursion.
const WASM3_STACK_SLOTS: u32 = 1 << 20;

/// Fuel for one call: far beyond any workload (the engines meter, they do not stop).
const FUEL: u64 = 1 << 40;

/// The load request both builds of the engine get: one instance, fuel to spare.
pub fn spec(wasm: &[u8]) -> LoadSpec<'_> {
    LoadSpec {
        name: "bench",
        wasm,
        entrypoint: Some(""),
        limits: wasm_proto::Limits {
            fuel: FUEL,
            bpf_fuel: 0,
            memory: 0,
            instances: 1,
        },
        args: &[],
        env: &[],
        ..Default::default()
    }
}

/// Converts an engine's result for the check.
pub fn out_of(v: &Value) -> Result<Out> {
    Ok(match *v {
        Value::I32(x) => Out::Int(i64::from(x)),
        Value::I64(x) => Out::Int(x),
        Value::F64(b) => Out::F64(b),
        Value::F32(_) => bail!("no benchmark returns f32"),
    })
}

/// The engine's arguments for `args` as `function` takes them.
pub fn values(function: &str, args: &[i32]) -> Result<Vec<Value>> {
    let n = if sig(function)? == Sig::I32I32ToI32 {
        2
    } else {
        1
    };
    Ok(args.iter().take(n).map(|a| Value::I32(*a)).collect())
}

/// The workloads called directly.
struct Native {
    buf: Vec<u8>,
}

impl Native {
    fn new() -> Self {
        Native {
            buf: vec![0; 4 << 20],
        }
    }

    fn once(&mut self, function: &str, a: i32, b: i32) -> Result<Out> {
        use bench_workloads as w;
        let n = (a.max(0) as usize).min(self.buf.len());
        Ok(match function {
            "add" => Out::Int(i64::from(black_box(a).wrapping_add(black_box(b)))),
            "fib" => Out::Int(w::fib(black_box(a) as u32) as i64),
            "int_loop" => Out::Int(w::int_loop(black_box(a) as u32) as i64),
            "fill" => {
                w::fill(&mut self.buf[..n]);
                Out::Int(n as i64)
            }
            "sha256" => Out::Int(w::digest_prefix(&w::sha256(black_box(&self.buf[..n]))) as i64),
            "nbody" => Out::F64(w::nbody(black_box(a) as u32).to_bits()),
            "json_setup" => Out::Int(w::json_generate(&mut self.buf, a as u32) as i64),
            "json_parse" => Out::Int(w::json_sum(black_box(&self.buf[..n])).unwrap_or(-1)),
            _ => bail!("no workload {function}"),
        })
    }
}

impl Guest for Native {
    fn call(&mut self, function: &str, args: &[i32], times: u32) -> Result<Out> {
        let (a, b) = (args[0], args.get(1).copied().unwrap_or(0));
        let mut last = Out::Int(0);
        for _ in 0..times {
            last = self.once(function, a, b)?;
        }
        Ok(last)
    }
}

/// User space as the engine's host, for benchmarks: no output, one CPU.
pub struct BenchHost;

impl Host for BenchHost {
    fn log(line: &[u8]) {
        eprintln!("guest: {}", String::from_utf8_lossy(line));
    }
    fn cpu_count() -> usize {
        1
    }
    fn between_slices() -> bool {
        true
    }
    fn now_ns() -> u64 {
        0
    }
    fn realtime_ns() -> u64 {
        0
    }
    fn random(buf: &mut [u8]) {
        buf.fill(4);
    }
}

struct EngineGuest<'a>(&'a wasm_engine::LoadedModule<BenchHost>);

impl Guest for EngineGuest<'_> {
    fn call(&mut self, function: &str, args: &[i32], times: u32) -> Result<Out> {
        let values = values(function, args)?;
        let mut last = Out::Int(0);
        for _ in 0..times {
            let outcome = self
                .0
                .call(0, function, &values)
                .map_err(|e| anyhow!("{function}: {e}"))?;
            last = out_of(outcome.results.first().context("no result")?)?;
        }
        Ok(last)
    }
}

struct Wasm3Guest<'rt>(wasm3::Module<'rt>);

impl Guest for Wasm3Guest<'_> {
    fn call(&mut self, function: &str, args: &[i32], times: u32) -> Result<Out> {
        let e = |e: wasm3::error::Error| anyhow!("wasm3 {function}: {e}");
        let a = args[0];
        let mut last = Out::Int(0);
        match sig(function)? {
            Sig::I32ToI32 => {
                let f = self.0.find_function::<i32, i32>(function).map_err(e)?;
                for _ in 0..times {
                    last = Out::Int(i64::from(f.call(a).map_err(e)?));
                }
            }
            Sig::I32ToI64 => {
                let f = self.0.find_function::<i32, i64>(function).map_err(e)?;
                for _ in 0..times {
                    last = Out::Int(f.call(a).map_err(e)?);
                }
            }
            Sig::I32ToF64 => {
                let f = self.0.find_function::<i32, f64>(function).map_err(e)?;
                for _ in 0..times {
                    last = Out::F64(f.call(a).map_err(e)?.to_bits());
                }
            }
            Sig::I32I32ToI32 => {
                let f = self
                    .0
                    .find_function::<(i32, i32), i32>(function)
                    .map_err(e)?;
                for _ in 0..times {
                    last = Out::Int(i64::from(f.call(a, args[1]).map_err(e)?));
                }
            }
        }
        Ok(last)
    }
}

/// wasmtime's errors as `anyhow` errors.
fn wt<T>(r: wasmtime::Result<T>) -> Result<T> {
    r.map_err(|e| anyhow!("wasmtime: {e:?}"))
}

struct WasmtimeGuest {
    store: wasmtime::Store<()>,
    instance: wasmtime::Instance,
}

impl Guest for WasmtimeGuest {
    fn call(&mut self, function: &str, args: &[i32], times: u32) -> Result<Out> {
        let (store, instance) = (&mut self.store, self.instance);
        let a = args[0];
        let mut last = Out::Int(0);
        match sig(function)? {
            Sig::I32ToI32 => {
                let f = wt(instance.get_typed_func::<i32, i32>(&mut *store, function))?;
                for _ in 0..times {
                    last = Out::Int(i64::from(wt(f.call(&mut *store, a))?));
                }
            }
            Sig::I32ToI64 => {
                let f = wt(instance.get_typed_func::<i32, i64>(&mut *store, function))?;
                for _ in 0..times {
                    last = Out::Int(wt(f.call(&mut *store, a))?);
                }
            }
            Sig::I32ToF64 => {
                let f = wt(instance.get_typed_func::<i32, f64>(&mut *store, function))?;
                for _ in 0..times {
                    last = Out::F64(wt(f.call(&mut *store, a))?.to_bits());
                }
            }
            Sig::I32I32ToI32 => {
                let f = wt(instance.get_typed_func::<(i32, i32), i32>(&mut *store, function))?;
                for _ in 0..times {
                    last = Out::Int(i64::from(wt(f.call(&mut *store, (a, args[1])))?));
                }
            }
        }
        Ok(last)
    }
}
