//! `cargo xtask bench`: the benchmark guest on every engine, in user space on this machine
//! (wall clock) and inside the VM on each kernel (QEMU icount: one virtual nanosecond per
//! guest instruction, so the VM figures are deterministic instruction counts), plus the cost
//! of an eBPF → Wasm call and how loading scales with the instance count. Prints Markdown
//! tables and writes them, with an SVG chart, to `target/bench/`.

use crate::vm::{self, BootOptions};
use crate::{payload, Prepared};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Workload sizes: `full` for the figures, `smoke` to check that everything still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// The sizes of the performance issue (minutes).
    Full,
    /// Tiny sizes (the test suite's run).
    Smoke,
}

impl Scale {
    fn name(self) -> &'static str {
        match self {
            Scale::Full => "full",
            Scale::Smoke => "smoke",
        }
    }
}

/// The benchmark guest (`make build-bench-guest`), relative to the project root.
pub const GUEST: &str = "bench/guest/target/wasm32-unknown-unknown/release/bench_guest.wasm";

/// Engines in table order, with their column titles.
const ENGINES: [(&str, &str); 7] = [
    ("native", "native"),
    ("wasm.ko", "wasm.ko"),
    ("wasm.ko-native", "wasm.ko native tier"),
    ("kernel-build", "kernel build, user"),
    ("user-build", "engine, user build"),
    ("wasm3", "wasm3, user"),
    ("wasmtime", "wasmtime, user"),
];

/// Workloads in table order.
const WORKLOADS: [&str; 7] = ["fib", "int_loop", "sha256", "nbody", "json", "add", "load"];

/// What the original C module (wasm3) took inside Debian 6.1 under the same icount conditions,
/// as recorded in the performance issue: virtual nanoseconds.
const ORIGINAL: [(&str, u64); 3] = [
    ("fib", 427_000_000),
    ("sha256", 4_085_000_000),
    ("load", 9_200_000),
];

/// Medians by engine and workload, in nanoseconds.
#[derive(Debug, Default)]
pub struct Figures {
    /// `(engine, workload)` → median ns.
    pub median: BTreeMap<(String, String), u64>,
    /// `(engine, workload)` → (min, max) ns over the rounds.
    pub spread: BTreeMap<(String, String), (u64, u64)>,
    /// `(instances, load ns, bytes held, of which linear memory)`.
    pub scaling: Vec<(u32, u64, u64, u64)>,
    /// eBPF programs → ns per run.
    pub ebpf: BTreeMap<String, f64>,
    /// Possible CPUs, if fewer than the largest instance count asked for.
    pub possible_cpus: Option<u32>,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Reads the `BENCH`, `SCALING` and `wasm-bpf bench` lines of a run.
pub fn parse(output: &str) -> Figures {
    let mut f = Figures::default();
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("BENCH ") {
            if let (Some(e), Some(w), Some(ns)) = (
                field(line, "engine"),
                field(line, "workload"),
                field(line, "median_ns").and_then(|v| v.parse().ok()),
            ) {
                f.median.insert((e.to_string(), w.to_string()), ns);
                if let (Some(min), Some(max)) = (
                    field(line, "min_ns").and_then(|v| v.parse().ok()),
                    field(line, "max_ns").and_then(|v| v.parse().ok()),
                ) {
                    f.spread.insert((e.to_string(), w.to_string()), (min, max));
                }
            }
        } else if line.starts_with("SCALING ") {
            if let (Some(n), Some(ns), Some(bytes), Some(linear)) = (
                field(line, "instances").and_then(|v| v.parse().ok()),
                field(line, "load_ns").and_then(|v| v.parse().ok()),
                field(line, "bytes").and_then(|v| v.parse().ok()),
                field(line, "linear_memory").and_then(|v| v.parse().ok()),
            ) {
                f.scaling.push((n, ns, bytes, linear));
            }
        } else if line.starts_with("SCALING-LIMIT ") {
            f.possible_cpus = field(line, "possible_cpus").and_then(|v| v.parse().ok());
        } else if line.starts_with("xdp_") {
            let mut words = line.split_whitespace();
            if let (Some(p), Some(ns)) = (words.next(), words.next().and_then(|v| v.parse().ok())) {
                f.ebpf.insert(p.to_string(), ns);
            }
        }
    }
    f
}

/// A duration in the unit that suits it.
fn human(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{ns} ns"),
        10_000..=9_999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.1} ms", ns as f64 / 1e6),
    }
}

fn ratio(a: Option<u64>, b: Option<u64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0 => format!("{:.2}", a as f64 / b as f64),
        _ => "–".to_string(),
    }
}

/// The Markdown table of one run: a row per workload, a column per engine, then ratios.
pub fn table(f: &Figures, engines: &[&str]) -> String {
    let get = |e: &str, w: &str| f.median.get(&(e.to_string(), w.to_string())).copied();
    let mut out = String::from("| workload |");
    let mut rule = String::from("|---|");
    for (_, title) in ENGINES.iter().filter(|(k, _)| engines.contains(k)) {
        let _ = write!(out, " {title} |");
        rule.push_str("---:|");
    }
    let kernel = engines.contains(&"wasm.ko");
    let main = if kernel { "wasm.ko" } else { "kernel-build" };
    let _ = write!(out, " {main} × native | wasm3 ÷ {main} |");
    rule.push_str("---:|---:|");
    if kernel {
        out.push_str(" wasm.ko ÷ kernel build |");
        rule.push_str("---:|");
    }
    let tier = engines.contains(&"wasm.ko-native");
    if tier {
        out.push_str(" native tier × native | wasm.ko ÷ native tier |");
        rule.push_str("---:|---:|");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for w in WORKLOADS {
        let _ = write!(out, "| {w} |");
        for (key, _) in ENGINES.iter().filter(|(k, _)| engines.contains(k)) {
            let cell = get(key, w).map_or("–".to_string(), |ns| {
                // The spread of the rounds, where there was any: ±half the range.
                match f.spread.get(&(key.to_string(), w.to_string())) {
                    Some((min, max)) if max > min && ns > 0 => format!(
                        "{} ±{:.0}%",
                        human(ns),
                        (max - min) as f64 * 50.0 / ns as f64
                    ),
                    _ => human(ns),
                }
            });
            let _ = write!(out, " {cell} |");
        }
        let native = if w == "load" { None } else { get("native", w) };
        let _ = write!(
            out,
            " {} | {} |",
            ratio(get(main, w), native),
            ratio(get("wasm3", w), get(main, w))
        );
        if kernel {
            let _ = write!(
                out,
                " {} |",
                ratio(get("wasm.ko", w), get("kernel-build", w))
            );
        }
        if tier {
            let _ = write!(
                out,
                " {} | {} |",
                ratio(get("wasm.ko-native", w), native),
                ratio(get("wasm.ko", w), get("wasm.ko-native", w))
            );
        }
        out.push('\n');
    }
    out
}

/// wasm.ko against the original module's recorded figures (6.1, same icount conditions).
fn original_table(f: &Figures) -> String {
    let mut out = String::from(
        "| workload | original (wasm3 module) | wasm.ko | speed-up |\n|---|---:|---:|---:|\n",
    );
    for (w, ns) in ORIGINAL {
        let ours = f
            .median
            .get(&("wasm.ko".to_string(), w.to_string()))
            .copied();
        let _ = writeln!(
            out,
            "| {w} | {} | {} | {} |",
            human(ns),
            ours.map_or("–".to_string(), human),
            ratio(Some(ns), ours)
        );
    }
    out
}

fn ebpf_table(f: &Figures) -> String {
    let get = |p: &str| f.ebpf.get(p).copied();
    let (empty, kfunc, call) = (
        get("xdp_empty"),
        get("xdp_kfunc_only"),
        get("xdp_wasm_call"),
    );
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    let times = match (call, kfunc) {
        (Some(c), Some(k)) if k > 0.0 => format!("{:.2}", c / k),
        _ => "–".to_string(),
    };
    format!(
        "| no call | kfunc returning at once | call of `probe.inc` | call ÷ kfunc |\n|---:|---:|---:|---:|\n| {} | {} | {} | {times} |\n",
        fmt(empty),
        fmt(kfunc),
        fmt(call)
    )
}

fn scaling_table(f: &Figures) -> String {
    let mut out = String::from(
        "| instances | load (probe guest) | memory held | of which linear memory | the rest |\n|---:|---:|---:|---:|---:|\n",
    );
    for (n, ns, bytes, linear) in &f.scaling {
        let _ = writeln!(
            out,
            "| {n} | {} | {} KiB | {} KiB | {} KiB |",
            human(*ns),
            bytes / 1024,
            linear / 1024,
            bytes.saturating_sub(*linear) / 1024
        );
    }
    if let Some(n) = f.possible_cpus {
        let _ = writeln!(
            out,
            "\n(This kernel sees {n} possible CPU(s) in this VM: no more instances than that.)"
        );
    }
    out
}

/// An SVG bar chart of "× native" per workload and engine (log scale).
pub fn chart(f: &Figures, title: &str) -> String {
    let engines: Vec<&str> = ENGINES
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| *k != "native")
        .collect();
    let colours = [
        "#d62728", "#8c564b", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd",
    ];
    let workloads: Vec<&str> = WORKLOADS
        .iter()
        .copied()
        .filter(|w| *w != "load" && *w != "add")
        .collect();
    let value = |e: &str, w: &str| -> Option<f64> {
        let v = f.median.get(&(e.to_string(), w.to_string()))?;
        let n = f.median.get(&("native".to_string(), w.to_string()))?;
        (*n > 0).then(|| *v as f64 / *n as f64)
    };
    let max = workloads
        .iter()
        .flat_map(|w| engines.iter().filter_map(move |e| value(e, w)))
        .fold(10.0f64, f64::max);
    let decades = max.log10().ceil().max(1.0);
    let (left, width, bar, gap) = (90.0, 560.0, 12.0, 14.0);
    let group = bar * engines.len() as f64 + gap;
    let height = 60.0 + group * workloads.len() as f64 + 24.0 * 2.0;
    let x = |v: f64| left + width * (v.max(1.0).log10() / decades);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"20\" font-size=\"14\">{title}</text>\n",
        left + width + 40.0
    );
    for d in 0..=decades as u32 {
        let v = 10f64.powi(d as i32);
        let _ = writeln!(
            s,
            "<line x1=\"{0}\" y1=\"34\" x2=\"{0}\" y2=\"{1}\" stroke=\"#ccc\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{3}×</text>",
            x(v),
            height - 40.0,
            height - 26.0,
            v
        );
    }
    for (i, w) in workloads.iter().enumerate() {
        let top = 40.0 + group * i as f64;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{w}</text>",
            left - 8.0,
            top + bar * engines.len() as f64 / 2.0 + 4.0
        );
        for (j, e) in engines.iter().enumerate() {
            if let Some(v) = value(e, w) {
                let _ = writeln!(
                    s,
                    "<rect x=\"{left}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"><title>{e}: {v:.2}× native</title></rect>",
                    top + bar * j as f64,
                    (x(v) - left).max(1.0),
                    bar - 2.0,
                    colours[j % colours.len()]
                );
            }
        }
    }
    let legend_y = height - 10.0;
    for (j, e) in engines.iter().enumerate() {
        let lx = left + 110.0 * j as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{legend_y}\">{e}</text>",
            legend_y - 9.0,
            colours[j % colours.len()],
            lx + 14.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The guest's sizes and the eBPF benchmark's repeats, as shell variables for the scenario.
fn scenario(scale: Scale) -> String {
    let (repeat, rounds) = match scale {
        Scale::Full => (20_000, 5),
        Scale::Smoke => (100, 1),
    };
    format!(
        "SCALE={}\nEBPF_REPEAT={repeat}\nEBPF_ROUNDS={rounds}\n{}",
        scale.name(),
        crate::BENCH
    )
}

/// Runs the benchmark and returns the report.
pub fn run(
    root: &Path,
    userland: &crate::build::Userland,
    prepared: &[Prepared],
    scale: Scale,
    runner: &Path,
) -> Result<String> {
    let guest = root.join(GUEST);
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let mut report = format!("# Benchmark ({} scale)\n\n", scale.name());
    let host_rounds = if scale == Scale::Full { "5" } else { "1" };
    eprintln!("xtask: user-space engines on this machine (wall clock)");
    let out = Command::new(runner)
        .args([
            "suite",
            "--scale",
            scale.name(),
            "--rounds",
            host_rounds,
            "--guest",
        ])
        .arg(&guest)
        .output()
        .context("cannot run wasm-bench")?;
    if !out.status.success() {
        bail!(
            "wasm-bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let host = parse(&String::from_utf8_lossy(&out.stdout));
    let user: Vec<&str> = ENGINES
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !k.starts_with("wasm.ko"))
        .collect();
    let _ = write!(
        report,
        "## User space on this machine (wall clock, median of {host_rounds})\n\n{}\n",
        table(&host, &user)
    );
    let all: Vec<&str> = ENGINES.iter().map(|(k, _)| *k).collect();
    for p in prepared {
        let initrd = p.dir.join("initramfs-bench.cpio");
        let mut load = payload(userland, p, scenario(scale));
        load.executables.push(runner.to_path_buf());
        load.guest_files.push(root.join(GUEST));
        vm::initramfs(&load, &initrd)?;
        eprintln!(
            "xtask: booting {} under QEMU (icount: one virtual ns per instruction)",
            p.kernel.release
        );
        let console = vm::boot_with(
            &p.kernel.image,
            &initrd,
            Duration::from_secs(if scale == Scale::Full { 3600 } else { 600 }),
            &BootOptions {
                cpus: 1,
                max_cpus: 64,
                qemu: &["-icount", "shift=0,sleep=off"],
                ..BootOptions::default()
            },
        )?;
        std::fs::write(p.dir.join("console-bench.log"), &console)?;
        let bad = vm::bad_lines(&console);
        if !bad.is_empty() {
            bail!("kernel log: {}", bad.join("\n"));
        }
        if let Some(l) = console.lines().find(|l| l.contains("BENCH-ERROR")) {
            bail!("{} : {l}", p.kernel.release);
        }
        let f = parse(&console);
        for (e, _) in ENGINES {
            for w in WORKLOADS {
                if !f.median.contains_key(&(e.to_string(), w.to_string())) {
                    bail!(
                        "no figure for {w} on {e} in the VM ({}); see {}",
                        p.kernel.release,
                        p.dir.join("console-bench.log").display()
                    );
                }
            }
        }
        if f.ebpf.len() != 3 || f.scaling.is_empty() {
            bail!(
                "the eBPF or scaling figures are missing ({})",
                p.kernel.release
            );
        }
        let _ = write!(
            report,
            "## Debian {} in QEMU (icount: 1 ns = 1 instruction, 1 CPU online of 64 possible)\n\n{}\n",
            p.kernel.release,
            table(&f, &all)
        );
        if p.kernel.release.starts_with("6.1.") {
            let _ = write!(
                report,
                "Against the original C module (wasm3), as measured in the performance issue:\n\n{}\n",
                original_table(&f)
            );
        }
        let _ = write!(
            report,
            "eBPF → Wasm, instructions per XDP test run:\n\n{}\nLoad time and memory by instance count:\n\n{}\n",
            ebpf_table(&f),
            scaling_table(&f)
        );
        std::fs::write(
            out_dir.join(format!("bench-{}.svg", p.kernel.release)),
            chart(
                &f,
                &format!("× native, Debian {} in QEMU (icount)", p.kernel.release),
            ),
        )?;
    }
    std::fs::write(out_dir.join("report.md"), &report)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_figures_and_tables() {
        let out = "BENCH engine=native workload=fib median_ns=100 min_ns=90 max_ns=110 rounds=3 result=832040\n\
                   BENCH engine=wasm.ko workload=fib median_ns=2500 min_ns=2500 max_ns=2500 rounds=1 result=832040\n\
                   BENCH engine=wasm3 workload=fib median_ns=5000 min_ns=5000 max_ns=5000 rounds=1 result=832040\n\
                   SCALING instances=8 load_ns=12000000 bytes=4096 linear_memory=0\n\
                   \x20 xdp_empty                60.0         1.00         0.31\n";
        let f = parse(out);
        assert_eq!(f.spread[&("native".into(), "fib".into())], (90, 110));
        assert_eq!(f.median[&("wasm.ko".into(), "fib".into())], 2500);
        assert_eq!(f.scaling, vec![(8, 12_000_000, 4096, 0)]);
        assert_eq!(f.ebpf["xdp_empty"], 60.0);
        let t = table(&f, &["native", "wasm.ko", "wasm3"]);
        let fib = t.lines().find(|l| l.starts_with("| fib")).unwrap();
        assert!(fib.contains("| 25.00 | 2.00 |"), "{fib}");
        assert!(
            fib.contains("| 100 ns ±10% |"),
            "native's rounds spread: {fib}"
        );
        assert!(chart(&f, "t").contains("<title>wasm.ko: 25.00× native</title>"));
    }
}
