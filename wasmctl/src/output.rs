//! Human and JSON output.

use serde_json::{json, Value as Json};
use std::time::Duration;
use wasm_proto::{CallStats, FuncSig, Kfuncs, ModuleInfo, Stats, Tier, Value};

/// Median, minimum and maximum of request durations, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Number of requests.
    pub count: usize,
    /// The median (the lower middle one for an even count).
    pub median_ns: u128,
    /// The fastest.
    pub min_ns: u128,
    /// The slowest.
    pub max_ns: u128,
}

impl Timing {
    /// Summarises `took`; `None` if it is empty.
    pub fn of(took: &[Duration]) -> Option<Timing> {
        let mut ns: Vec<u128> = took.iter().map(Duration::as_nanos).collect();
        ns.sort_unstable();
        Some(Timing {
            count: ns.len(),
            median_ns: *ns.get((ns.len().checked_sub(1)?) / 2)?,
            min_ns: *ns.first()?,
            max_ns: *ns.last()?,
        })
    }

    fn text(&self) -> String {
        format!(
            "time: {} request(s), median {} ns, min {} ns, max {} ns",
            self.count, self.median_ns, self.min_ns, self.max_ns
        )
    }

    fn json(&self) -> Json {
        json!({
            "count": self.count,
            "median_ns": self.median_ns as u64,
            "min_ns": self.min_ns as u64,
            "max_ns": self.max_ns as u64,
        })
    }
}

/// What a load answered.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// Instances created.
    pub instances: u32,
    /// The entrypoint's result.
    pub entry_result: Option<i32>,
    /// The module's version (above 1 after a replace).
    pub version: u32,
}

/// Where and how results are printed.
pub struct Output {
    /// JSON instead of text.
    pub json: bool,
}

fn value_json(v: &Value) -> Json {
    let n = match *v {
        Value::I32(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(b) => json!(f32::from_bits(b).to_string()),
        Value::F64(b) => json!(f64::from_bits(b).to_string()),
    };
    json!({ "type": v.ty().to_string(), "value": n })
}

/// Lower-case hexadecimal, as `sha256sum` prints digests.
pub use wasm_engine::hex;

fn sig_text(s: &FuncSig) -> String {
    let p: Vec<String> = s.params.iter().map(ToString::to_string).collect();
    let r: Vec<String> = s.results.iter().map(ToString::to_string).collect();
    format!("{}({}) -> ({})", s.name, p.join(", "), r.join(", "))
}

fn calls_json(c: &CallStats) -> Json {
    json!({
        "calls": c.calls, "traps": c.traps, "out_of_fuel": c.out_of_fuel,
        "fuel_used": c.fuel_used, "time_ns": c.time_ns, "latency_log2_ns": c.latency.to_vec(),
    })
}

fn sig_json(s: &FuncSig) -> Json {
    let p: Vec<String> = s.params.iter().map(ToString::to_string).collect();
    let r: Vec<String> = s.results.iter().map(ToString::to_string).collect();
    json!({ "name": s.name, "params": p, "results": r })
}

impl Output {
    fn print_json(&self, v: Json) {
        println!("{v}");
    }

    /// After `load`.
    pub fn loaded(&self, name: &str, loaded: Loaded, took: Option<&[Duration]>) {
        let Loaded {
            instances,
            entry_result,
            version,
        } = loaded;
        let timing = took.and_then(Timing::of);
        if self.json {
            let mut v = json!({
                "loaded": name, "instances": instances, "entry_result": entry_result,
                "version": version,
            });
            if let Some(t) = timing {
                v["time"] = t.json();
            }
            self.print_json(v);
            return;
        }
        let what = if version > 1 {
            format!("replaced {name} (version {version})")
        } else {
            format!("loaded {name}")
        };
        match entry_result {
            Some(r) => println!("{what}: {instances} instances, entrypoint returned {r}"),
            None => println!("{what}: {instances} instances"),
        }
        if let Some(t) = timing {
            println!("{}", t.text());
        }
    }

    /// After `unload`.
    pub fn unloaded(&self, name: &str) {
        if self.json {
            self.print_json(json!({ "unloaded": name }));
        } else {
            println!("unloaded {name}");
        }
    }

    /// Results of `call` or `run --invoke`.
    pub fn called(
        &self,
        results: &[Value],
        fuel_used: u64,
        cpu: u32,
        exit: Option<i32>,
        took: Option<&[Duration]>,
    ) {
        let timing = took.and_then(Timing::of);
        if self.json {
            let r: Vec<Json> = results.iter().map(value_json).collect();
            let mut v = json!({ "results": r, "fuel_used": fuel_used, "cpu": cpu, "exit": exit });
            if let Some(t) = timing {
                v["time"] = t.json();
            }
            self.print_json(v);
            return;
        }
        if let Some(code) = exit {
            println!("exited with {code}");
        } else {
            let r: Vec<String> = results.iter().map(ToString::to_string).collect();
            println!("{}", r.join(" "));
        }
        if let Some(t) = timing {
            println!("{}", t.text());
        }
    }

    /// `list`.
    pub fn list(&self, modules: &[ModuleInfo]) {
        if self.json {
            let m: Vec<Json> = modules
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "tier": tier(m.tier),
                        "wasm_size": m.wasm_size,
                        "sha256": m.digest.map(|d| hex(&d)),
                        "entrypoint": m.entrypoint,
                        "fuel_per_call": m.limits.fuel,
                        "bpf_fuel_per_call": m.limits.bpf_fuel,
                        "memory_limit": m.limits.memory,
                        "version": m.version,
                        "grants": m.grants,
                        "signer": m.signer,
                        "maps": m.maps.iter().map(|b| json!({
                            "id": b.id, "type": b.kind, "key_size": b.key_size,
                            "value_size": b.value_size,
                        })).collect::<Vec<_>>(),
                        "exports": m.exports.iter().map(sig_json).collect::<Vec<_>>(),
                        "imports": m.imports.iter().map(sig_json).collect::<Vec<_>>(),
                        "instances": m.instances.iter().map(|i| json!({
                            "cpu": i.cpu, "calls": i.calls(), "traps": i.traps(),
                            "fuel_used": i.fuel_used(), "memory": i.memory,
                            "user": calls_json(&i.user), "bpf": calls_json(&i.bpf),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            self.print_json(json!({ "modules": m }));
            return;
        }
        if modules.is_empty() {
            println!("no modules loaded");
        }
        for m in modules {
            println!(
                "{}  ({}, {} bytes, entrypoint {}, fuel/call {}, eBPF fuel/call {}, memory limit {} bytes)",
                m.name,
                tier(m.tier),
                m.wasm_size,
                if m.entrypoint.is_empty() {
                    "-"
                } else {
                    &m.entrypoint
                },
                m.limits.fuel,
                m.limits.bpf_fuel,
                m.limits.memory
            );
            if let Some(d) = &m.digest {
                println!("  sha256   {}", hex(d));
            }
            println!(
                "  version  {}, granted {}{}",
                m.version,
                if m.grants.is_empty() {
                    "nothing".to_string()
                } else {
                    m.grants.join(",")
                },
                m.signer
                    .as_ref()
                    .map_or(String::new(), |k| format!(", signed by {k}"))
            );
            for (i, b) in m.maps.iter().enumerate() {
                println!(
                    "  map {i}    id {} {} key {} value {}",
                    b.id, b.kind, b.key_size, b.value_size
                );
            }
            for i in &m.imports {
                println!("  import   {}", sig_text(i));
            }
            for e in &m.exports {
                println!("  export   {}", sig_text(e));
            }
            for i in &m.instances {
                println!(
                    "  cpu {:<3} calls {:<8} traps {:<6} fuel {:<12} memory {:<10} user {}/{} bpf {}/{}",
                    i.cpu,
                    i.calls(),
                    i.traps(),
                    i.fuel_used(),
                    i.memory,
                    i.user.calls,
                    i.user.traps,
                    i.bpf.calls,
                    i.bpf.traps
                );
            }
        }
    }

    /// `stats`.
    pub fn stats(&self, s: &Stats) {
        if self.json {
            let stack: serde_json::Map<String, Json> = s
                .stack
                .iter()
                .map(|p| (p.op.clone(), json!({ "task": p.task, "work": p.work })))
                .collect();
            self.print_json(json!({
                "modules": s.modules, "cpus": s.cpus,
                "live_allocations": s.live_allocations, "live_bytes": s.live_bytes,
                "memory_used": s.memory_used, "memory_cap": s.memory_cap,
                "stack_size": s.stack_size, "work_stack_size": s.work_stack_size, "stack_peak": stack,
                "abandoned": s.abandoned, "abandoned_freed": s.abandoned_freed,
            }));
            return;
        }
        println!("modules           {}", s.modules);
        println!("cpus              {}", s.cpus);
        println!(
            "linear memory     {} of {} bytes",
            s.memory_used, s.memory_cap
        );
        println!(
            "live allocations  {} ({} bytes)",
            s.live_allocations, s.live_bytes
        );
        println!(
            "abandoned         {} requests ({} allocations given back)",
            s.abandoned, s.abandoned_freed
        );
        println!(
            "stack size        task {}, work {}",
            s.stack_size, s.work_stack_size
        );
        for p in &s.stack {
            println!("stack peak {:<8} task {:<6} work {}", p.op, p.task, p.work);
        }
    }

    /// A kernel module written by `wasmctl compile`.
    pub fn compiled(
        &self,
        ko: &std::path::Path,
        size: u64,
        compiled: &wasm_aot::compile::Compiled,
        took: std::time::Duration,
    ) -> anyhow::Result<()> {
        let fpu = if compiled.fpu {
            "floating point"
        } else {
            "integer only"
        };
        if self.json {
            self.print_json(json!({
                "ko": ko, "bytes": size, "c_bytes": compiled.c_bytes, "fpu": compiled.fpu,
                "fixed_memory": compiled.fixed_memory, "signed": compiled.signed,
                "seconds": took.as_secs_f64(),
            }));
        } else {
            println!(
                "compiled {}: {size} bytes ({} bytes of C, {fpu}{}{}) in {:.1} s",
                ko.display(),
                compiled.c_bytes,
                compiled.fixed_memory.map_or(String::new(), |bytes| format!(
                    ", memory fixed at {} KiB",
                    bytes / 1024
                )),
                if compiled.signed { ", signed" } else { "" },
                took.as_secs_f64()
            );
        }
        Ok(())
    }

    /// `apply`.
    pub fn applied(&self, report: &crate::apply::Report, check: bool) {
        if self.json {
            let modules: Vec<Json> = report
                .lines
                .iter()
                .map(|(name, what)| json!({ "name": name, "outcome": what }))
                .collect();
            self.print_json(json!({
                "modules": modules, "check": check, "changed": report.changed,
                "unchanged": report.unchanged, "failed": report.failed,
            }));
            return;
        }
        for (name, what) in &report.lines {
            println!("{name}: {what}");
        }
        println!(
            "apply: {} {}, {} unchanged, {} failed",
            report.changed,
            if check { "to change" } else { "changed" },
            report.unchanged,
            report.failed
        );
    }

    /// `version`.
    pub fn version(&self, protocol: u16, module: &str, kfuncs: Kfuncs) {
        if self.json {
            self.print_json(json!({
                "wasmctl": env!("CARGO_PKG_VERSION"), "module": module, "protocol": protocol,
                "ebpf": { "available": kfuncs.available(), "status": kfuncs.to_string() },
            }));
        } else {
            println!("wasmctl {}", env!("CARGO_PKG_VERSION"));
            println!("wasm.ko {module}, protocol v{protocol}");
            println!("eBPF calls {kfuncs}");
        }
    }
}

/// How `list` names a tier.
fn tier(tier: Tier) -> &'static str {
    match tier {
        Tier::Interpreted => "interpreted",
        Tier::Native => "native",
    }
}

#[cfg(test)]
mod tests {
    use super::Timing;
    use std::time::Duration;

    #[test]
    fn timing_takes_median_min_and_max() {
        let took = [30, 10, 20, 40].map(Duration::from_nanos);
        let t = Timing::of(&took).unwrap();
        assert_eq!((t.count, t.median_ns, t.min_ns, t.max_ns), (4, 20, 10, 40));
        assert_eq!(Timing::of(&[]), None);
    }
}
