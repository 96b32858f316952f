//! `wasmctl stats --prometheus` and `wasmctl top`: the kernel's per-instance counters as a
//! Prometheus text exposition, and as a refreshing view of what each module costs.

use crate::device::Device;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use wasm_proto::{bucket_upper_ns, CallStats, ModuleInfo, Request, Response, Stats, Tier};
use wasm_proto::{InstanceInfo, LATENCY_BUCKETS};

/// Quotes a label value as the exposition format wants it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The two kinds of caller, with their label values.
fn callers(i: &InstanceInfo) -> [(&'static str, &CallStats); 2] {
    [("user", &i.user), ("bpf", &i.bpf)]
}

/// Calls of a module by caller, summed over its instances.
fn by_caller(m: &ModuleInfo) -> [(&'static str, CallStats); 2] {
    let mut user = CallStats::default();
    let mut bpf = CallStats::default();
    for i in &m.instances {
        user.add(&i.user);
        bpf.add(&i.bpf);
    }
    [("user", user), ("bpf", bpf)]
}

/// The Prometheus text exposition (format 0.0.4) of `stats` and `modules`: counters per
/// module, CPU instance and caller (`user` for `/dev/wasm`, `bpf` for eBPF programs), and one
/// latency histogram per module and caller.
pub fn prometheus(stats: &Stats, modules: &[ModuleInfo]) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "wasm_modules",
            "gauge",
            "Wasm modules loaded.",
            u64::from(stats.modules),
        ),
        (
            "wasm_linear_memory_bytes",
            "gauge",
            "Linear memory all instances hold.",
            stats.memory_used,
        ),
        (
            "wasm_linear_memory_cap_bytes",
            "gauge",
            "Linear memory all instances may hold (memory_cap_mb).",
            stats.memory_cap,
        ),
        (
            "wasm_live_allocations",
            "gauge",
            "Live heap allocations of wasm.ko's Rust code.",
            stats.live_allocations,
        ),
        (
            "wasm_live_allocation_bytes",
            "gauge",
            "Bytes in those allocations.",
            stats.live_bytes,
        ),
    ] {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        &mut out,
        "wasm_module_info",
        "gauge",
        "A loaded module: its tier, version and grants.",
    );
    for m in modules {
        let _ = writeln!(
            out,
            "wasm_module_info{{module=\"{}\",tier=\"{}\",version=\"{}\",grants=\"{}\"}} 1",
            label(&m.name),
            match m.tier {
                Tier::Interpreted => "interpreted",
                Tier::Native => "native",
            },
            m.version,
            label(&m.grants.join(","))
        );
    }
    type Field = fn(&CallStats) -> u64;
    let counters: [(&str, &str, Field); 4] = [
        ("wasm_calls_total", "Calls made.", |c| c.calls),
        (
            "wasm_traps_total",
            "Calls that trapped, ran out of fuel or were interrupted.",
            |c| c.traps,
        ),
        (
            "wasm_fuel_exhausted_total",
            "Calls that ran out of fuel.",
            |c| c.out_of_fuel,
        ),
        ("wasm_fuel_used_total", "Fuel the calls consumed.", |c| {
            c.fuel_used
        }),
    ];
    for (name, help, field) in counters {
        header(&mut out, name, "counter", help);
        for m in modules {
            for i in &m.instances {
                for (caller, c) in callers(i) {
                    let _ = writeln!(
                        out,
                        "{name}{{module=\"{}\",cpu=\"{}\",caller=\"{caller}\"}} {}",
                        label(&m.name),
                        i.cpu,
                        field(c)
                    );
                }
            }
        }
    }
    header(
        &mut out,
        "wasm_instance_memory_bytes",
        "gauge",
        "Linear memory of one instance.",
    );
    for m in modules {
        for i in &m.instances {
            let _ = writeln!(
                out,
                "wasm_instance_memory_bytes{{module=\"{}\",cpu=\"{}\"}} {}",
                label(&m.name),
                i.cpu,
                i.memory
            );
        }
    }
    let name = "wasm_call_duration_seconds";
    header(&mut out, name, "histogram", "Call latency (log2 buckets).");
    for m in modules {
        for (caller, c) in by_caller(m) {
            let labels = format!("module=\"{}\",caller=\"{caller}\"", label(&m.name));
            let mut cumulative = 0;
            for (b, n) in c.latency.iter().enumerate().take(LATENCY_BUCKETS - 1) {
                cumulative += n;
                let le = bucket_upper_ns(b) as f64 / 1e9;
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le:e}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", c.calls);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", c.time_ns as f64 / 1e9);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", c.calls);
        }
    }
    out
}

/// Options of `wasmctl top`.
pub struct TopOptions {
    /// Time between two screens.
    pub interval: Duration,
    /// Screens to print; 0 for no end.
    pub iterations: u64,
    /// Plain successive reports, no screen clearing (also when not on a terminal).
    pub batch: bool,
}

/// One module's counters at one moment.
struct Sample {
    tier: Tier,
    version: u32,
    memory: u64,
    user: CallStats,
    bpf: CallStats,
}

fn sample(dev: &mut Device) -> Result<(BTreeMap<String, Sample>, Stats)> {
    let Response::List(modules) = dev.request(&Request::List)? else {
        bail!("unexpected answer to list");
    };
    let Response::Stats(stats) = dev.request(&Request::Stats)? else {
        bail!("unexpected answer to stats");
    };
    let map = modules
        .iter()
        .map(|m| {
            let [(_, user), (_, bpf)] = by_caller(m);
            let s = Sample {
                tier: m.tier,
                version: m.version,
                memory: m.instances.iter().map(|i| i.memory).sum(),
                user,
                bpf,
            };
            (m.name.clone(), s)
        })
        .collect();
    Ok((map, stats))
}

/// `now - before`, counter by counter (a replaced module's counters start again: then `now`).
fn delta(now: &CallStats, before: Option<&CallStats>) -> CallStats {
    let Some(b) = before.filter(|b| b.calls <= now.calls) else {
        return now.clone();
    };
    CallStats {
        calls: now.calls - b.calls,
        traps: now.traps.saturating_sub(b.traps),
        out_of_fuel: now.out_of_fuel.saturating_sub(b.out_of_fuel),
        fuel_used: now.fuel_used.saturating_sub(b.fuel_used),
        time_ns: now.time_ns.saturating_sub(b.time_ns),
        latency: std::array::from_fn(|i| now.latency[i].saturating_sub(b.latency[i])),
    }
}

/// A duration in ns, µs, ms or s.
fn human_ns(ns: Option<u64>) -> String {
    match ns {
        None => "-".to_string(),
        Some(n) if n < 10_000 => format!("{n}ns"),
        Some(n) if n < 10_000_000 => format!("{}us", n / 1000),
        Some(n) if n < 10_000_000_000 => format!("{}ms", n / 1_000_000),
        Some(n) => format!("{}s", n / 1_000_000_000),
    }
}

/// One screen of `top`: the changes between two samples taken `secs` apart.
fn screen(
    before: &BTreeMap<String, Sample>,
    now: &BTreeMap<String, Sample>,
    stats: &Stats,
    secs: f64,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wasmctl top - {} modules, linear memory {} of {} MiB, live allocations {}, every {secs:.1} s",
        stats.modules,
        stats.memory_used >> 20,
        stats.memory_cap >> 20,
        stats.live_allocations
    );
    let _ = writeln!(
        out,
        "{:<24} {:<6} {:>4} {:>10} {:>10} {:>8} {:>12} {:>8} {:>8} {:>10}",
        "MODULE", "TIER", "VER", "CALLS/S", "BPF/S", "TRAPS/S", "FUEL/S", "P50", "P99", "MEMORY"
    );
    let mut rows: Vec<(&String, CallStats, CallStats, &Sample)> = now
        .iter()
        .map(|(name, s)| {
            let b = before.get(name).filter(|b| b.version == s.version);
            let user = delta(&s.user, b.map(|b| &b.user));
            let bpf = delta(&s.bpf, b.map(|b| &b.bpf));
            (name, user, bpf, s)
        })
        .collect();
    rows.sort_by_key(|(name, u, b, _)| (std::cmp::Reverse(u.calls + b.calls), (*name).clone()));
    for (name, user, bpf, s) in rows {
        let mut both = user.clone();
        both.add(&bpf);
        let rate = |n: u64| n as f64 / secs;
        let _ = writeln!(
            out,
            "{:<24} {:<6} {:>4} {:>10.0} {:>10.0} {:>8.0} {:>12.0} {:>8} {:>8} {:>10}",
            name,
            match s.tier {
                Tier::Interpreted => "interp",
                Tier::Native => "native",
            },
            s.version,
            rate(user.calls),
            rate(bpf.calls),
            rate(both.traps),
            rate(both.fuel_used),
            human_ns(both.quantile_ns(500)),
            human_ns(both.quantile_ns(990)),
            s.memory
        );
    }
    out
}

/// Prints a screen every `opts.interval`, as `top` does.
pub fn top(dev: &mut Device, opts: &TopOptions) -> Result<()> {
    let clear = !opts.batch && std::io::stdout().is_terminal();
    let (mut before, _) = sample(dev)?;
    let mut taken = Instant::now();
    let mut shown = 0;
    while opts.iterations == 0 || shown < opts.iterations {
        std::thread::sleep(opts.interval);
        let (now, stats) = sample(dev)?;
        let secs = taken.elapsed().as_secs_f64().max(1e-3);
        taken = Instant::now();
        let text = screen(&before, &now, &stats, secs);
        if clear {
            print!("\x1b[H\x1b[2J{text}");
        } else {
            println!("{text}");
        }
        before = now;
        shown += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, user_calls: u64, bpf_calls: u64) -> ModuleInfo {
        let mut user = CallStats {
            calls: user_calls,
            time_ns: 1000 * user_calls,
            ..CallStats::default()
        };
        user.latency[9] = user_calls;
        let mut bpf = CallStats {
            calls: bpf_calls,
            traps: 1,
            ..CallStats::default()
        };
        bpf.latency[3] = bpf_calls;
        ModuleInfo {
            name: name.into(),
            tier: Tier::Interpreted,
            wasm_size: 8,
            digest: None,
            entrypoint: String::new(),
            limits: Default::default(),
            version: 1,
            grants: vec!["debug".into()],
            signer: None,
            maps: vec![],
            exports: vec![],
            imports: vec![],
            instances: vec![InstanceInfo {
                cpu: 0,
                user,
                bpf,
                memory: 65536,
            }],
        }
    }

    fn stats() -> Stats {
        Stats {
            modules: 1,
            cpus: 1,
            live_allocations: 5,
            live_bytes: 100,
            stack: vec![],
            stack_size: 0,
            memory_used: 65536,
            memory_cap: 1 << 28,
            work_stack_size: 0,
            abandoned: 0,
            abandoned_freed: 0,
        }
    }

    #[test]
    fn exposition_has_counters_and_a_consistent_histogram() {
        let text = prometheus(&stats(), &[module("p\"x", 3, 7)]);
        assert!(text.contains("# TYPE wasm_calls_total counter"));
        assert!(text.contains("wasm_calls_total{module=\"p\\\"x\",cpu=\"0\",caller=\"user\"} 3"));
        assert!(text.contains("wasm_traps_total{module=\"p\\\"x\",cpu=\"0\",caller=\"bpf\"} 1"));
        assert!(text.contains(
            "wasm_call_duration_seconds_bucket{module=\"p\\\"x\",caller=\"bpf\",le=\"1.6e-8\"} 7"
        ));
        assert!(text.contains(
            "wasm_call_duration_seconds_bucket{module=\"p\\\"x\",caller=\"user\",le=\"+Inf\"} 3"
        ));
        assert!(
            text.contains("wasm_call_duration_seconds_count{module=\"p\\\"x\",caller=\"user\"} 3")
        );
        assert!(text.contains(
            "wasm_call_duration_seconds_sum{module=\"p\\\"x\",caller=\"user\"} 0.000003"
        ));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn top_shows_rates_and_quantiles_of_the_interval() {
        let sample_of = |m: &ModuleInfo| {
            let [(_, user), (_, bpf)] = by_caller(m);
            let s = Sample {
                tier: m.tier,
                version: m.version,
                memory: 65536,
                user,
                bpf,
            };
            BTreeMap::from([(m.name.clone(), s)])
        };
        let before = sample_of(&module("policy", 10, 0));
        let now = sample_of(&module("policy", 30, 200));
        let text = screen(&before, &now, &stats(), 2.0);
        let row = text.lines().find(|l| l.starts_with("policy")).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cols[..5], ["policy", "interp", "1", "10", "100"], "{row}");
        assert_eq!(cols[7], "16ns", "{row}");
        assert_eq!(cols[8], "1024ns", "{row}");
    }
}
