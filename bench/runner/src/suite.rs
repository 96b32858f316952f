//! The workloads of one benchmark run and how a result is checked.

use anyhow::{bail, Result};

/// A value a workload returns: compared bit for bit with the native build's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// An integer result (`i32` results are sign-extended).
    Int(i64),
    /// The bits of an `f64` result.
    F64(u64),
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Int(v) => write!(f, "{v}"),
            Out::F64(b) => write!(f, "{:?}", f64::from_bits(*b)),
        }
    }
}

/// The type of an export of the benchmark guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// `(i32) -> i32`
    I32ToI32,
    /// `(i32) -> i64`
    I32ToI64,
    /// `(i32) -> f64`
    I32ToF64,
    /// `(i32, i32) -> i32`
    I32I32ToI32,
}

/// The signature of `function` in the benchmark guest (`samples/bench`).
pub fn sig(function: &str) -> Result<Sig> {
    Ok(match function {
        "fill" | "json_setup" => Sig::I32ToI32,
        "fib" | "int_loop" | "sha256" | "json_parse" => Sig::I32ToI64,
        "nbody" => Sig::I32ToF64,
        "add" => Sig::I32I32ToI32,
        _ => bail!("the benchmark guest has no export {function}"),
    })
}

/// One timed workload: an optional untimed setup call whose result becomes the argument, then
/// `calls` timed calls of `function`.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Name in the results table.
    pub name: &'static str,
    /// The export to time.
    pub function: &'static str,
    /// Its arguments (the first is replaced by the setup's result, if any).
    pub args: [i32; 2],
    /// An export to call first, with its argument.
    pub setup: Option<(&'static str, i32)>,
    /// Calls per measurement; the figure is the time of one call.
    pub calls: u32,
}

/// How big the workloads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// The figures of the performance issue: seconds of interpretation each.
    Full,
    /// Tiny: checks that every engine runs every workload (the test suite's smoke run).
    Smoke,
}

/// The workloads at `scale`.
pub fn workloads(scale: Scale) -> Vec<Workload> {
    let full = scale == Scale::Full;
    let pick = |f: i32, s: i32| if full { f } else { s };
    vec![
        Workload {
            name: "fib",
            function: "fib",
            args: [pick(30, 15), 0],
            setup: None,
            calls: 1,
        },
        Workload {
            name: "int_loop",
            function: "int_loop",
            args: [pick(10_000_000, 10_000), 0],
            setup: None,
            calls: 1,
        },
        Workload {
            name: "sha256",
            function: "sha256",
            args: [0, 0],
            setup: Some(("fill", pick(4 << 20, 4096))),
            calls: 1,
        },
        Workload {
            name: "nbody",
            function: "nbody",
            args: [pick(100_000, 100), 0],
            setup: None,
            calls: 1,
        },
        Workload {
            name: "json",
            function: "json_parse",
            args: [0, 0],
            setup: Some(("json_setup", pick(20_000, 10))),
            calls: 1,
        },
        Workload {
            name: "add",
            function: "add",
            args: [40, 2],
            setup: None,
            calls: if full { 10_000 } else { 10 },
        },
    ]
}
