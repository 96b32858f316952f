//! `wasm-bpf`: loads the eBPF samples that call `wasm.ko`'s kfuncs, test-runs and attaches them.

mod packet;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use libbpf_rs::{MapCore, Object, ObjectBuilder, ProgramInput};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser)]
#[command(
    name = "wasm-bpf",
    about = "Load and run the eBPF samples of wasm-kernel-module"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Call a Wasm export through bpf_wasm_lookup + bpf_wasm_call (SYSCALL program).
    Call {
        /// kfunc_test.bpf.o
        object: PathBuf,
        /// The SYSCALL program to run (one taking `struct wasm_call_ctx`).
        #[arg(long, default_value = "call")]
        prog: String,
        #[arg(long)]
        module: String,
        #[arg(long)]
        function: String,
        /// Call this handle (from an earlier call's output) instead of looking the name up.
        #[arg(long, allow_negative_numbers = true)]
        handle: Option<i64>,
        /// Arguments as 64-bit integers.
        #[arg(allow_negative_numbers = true)]
        args: Vec<i64>,
    },
    /// Buffer call through bpf_wasm_call_buf (SYSCALL program).
    CallBuf {
        /// kfunc_test.bpf.o
        object: PathBuf,
        #[arg(long)]
        module: String,
        #[arg(long)]
        function: String,
        /// The buffer's contents.
        #[arg(long)]
        data: String,
    },
    /// Test-run an XDP program on a crafted packet and print its verdict.
    Xdp(PacketRun),
    /// Test-run a TC (SCHED_CLS) program on a crafted packet and print its verdict.
    Tc(PacketRun),
    /// Load and attach the named programs, run COMMAND, detach; exits with COMMAND's status.
    Attach {
        object: PathBuf,
        /// Programs to load and attach (the object's others are not loaded).
        #[arg(long, required = true)]
        prog: Vec<String>,
        /// The command to run while attached.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Calls getpgid(0) N times (a tracing target).
    Getpgid { count: u32 },
    /// Per-run cost of an XDP program calling a trivial Wasm function, next to an empty
    /// program and one that only enters the kfunc (BPF_PROG_TEST_RUN with repeat).
    Bench {
        /// kfunc_test.bpf.o
        object: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        repeat: u32,
        /// Rounds; the median is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
}

/// A test run of a packet program.
#[derive(clap::Args)]
struct PacketRun {
    object: PathBuf,
    #[arg(long)]
    prog: String,
    /// `tcp:SRC:SPORT-DST:DPORT`, `udp:...` or `icmp:SRC-DST`.
    #[arg(long)]
    packet: String,
    /// Runs of the program in the one test run.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Test-run again and again (the object, its globals and maps stay loaded) until this
    /// file exists, for at most --for-secs seconds; then print how many runs were made.
    #[arg(long, requires = "for_secs")]
    stop_file: Option<PathBuf>,
    /// The longest time to go on with --stop-file.
    #[arg(long)]
    for_secs: Option<u64>,
    /// Print the values of this array map (u64 values) afterwards: `NAME=v0,v1,...`.
    #[arg(long)]
    dump_map: Vec<String>,
}

fn main() {
    if let Err(e) = run(Cli::parse().command) {
        eprintln!("wasm-bpf: error: {e:#}");
        std::process::exit(1);
    }
}

/// Opens `path` and loads only the programs in `keep` (all if empty).
fn load(path: &Path, keep: &[&str]) -> Result<Object> {
    let mut open = ObjectBuilder::default()
        .open_file(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        prog.set_autoload(keep.is_empty() || keep.contains(&name.as_str()));
    }
    open.load()
        .with_context(|| format!("cannot load {} (is wasm.ko loaded?)", path.display()))
}

fn find<'o>(obj: &'o Object, name: &str) -> Result<libbpf_rs::ProgramMut<'o>> {
    obj.progs_mut()
        .find(|p| p.name() == name)
        .with_context(|| format!("no program named {name}"))
}

/// The context of kfunc_test.bpf.c's programs (`struct wasm_call_ctx`).
struct CallCtx {
    bytes: Vec<u8>,
}

impl CallCtx {
    const MODULE: usize = 0;
    const FUNCTION: usize = 32;
    const ARGS: usize = 64;
    const ARGS_LEN: usize = 128;
    const BUF_LEN: usize = 132;
    const BUF: usize = 136;
    const HANDLE: usize = 264;
    const RET: usize = 272;
    const RESULTS: usize = 280;
    const BUF_RESULT: usize = 312;
    const SIZE: usize = 320;

    fn new(module: &str, function: &str) -> Result<Self> {
        let mut bytes = vec![0u8; Self::SIZE];
        for (off, s) in [(Self::MODULE, module), (Self::FUNCTION, function)] {
            if s.len() > 31 {
                bail!("'{s}' is longer than 31 bytes");
            }
            bytes[off..off + s.len()].copy_from_slice(s.as_bytes());
        }
        Ok(CallCtx { bytes })
    }

    fn put(&mut self, off: usize, v: &[u8]) {
        self.bytes[off..off + v.len()].copy_from_slice(v);
    }

    fn i64_at(&self, off: usize) -> i64 {
        i64::from_ne_bytes(self.bytes[off..off + 8].try_into().expect("8 bytes"))
    }

    fn run(&mut self, obj: &Object, prog: &str) -> Result<()> {
        let p = find(obj, prog)?;
        let input = ProgramInput {
            context_in: Some(&mut self.bytes),
            ..Default::default()
        };
        p.test_run(input)
            .with_context(|| format!("test run of {prog}"))?;
        Ok(())
    }
}

fn verdict(obj: &Object, prog: &str, packet: &[u8], repeat: u32) -> Result<u32> {
    let p = find(obj, prog)?;
    let input = ProgramInput {
        data_in: Some(packet),
        repeat,
        ..Default::default()
    };
    Ok(p.test_run(input)
        .with_context(|| format!("test run of {prog}"))?
        .return_value)
}

fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Call {
            object,
            prog,
            module,
            function,
            handle,
            args,
        } => {
            if args.len() > 8 {
                bail!("at most 8 arguments");
            }
            let obj = load(&object, &[prog.as_str(), "call_handle"])?;
            let mut ctx = CallCtx::new(&module, &function)?;
            for (i, a) in args.iter().enumerate() {
                ctx.put(CallCtx::ARGS + 8 * i, &a.to_ne_bytes());
            }
            ctx.put(CallCtx::ARGS_LEN, &((args.len() * 8) as u32).to_ne_bytes());
            match handle {
                Some(h) => {
                    ctx.put(CallCtx::HANDLE, &h.to_ne_bytes());
                    ctx.run(&obj, "call_handle")?;
                }
                None => ctx.run(&obj, &prog)?,
            }
            let ret = ctx.i64_at(CallCtx::RET);
            let results: Vec<String> = (0..ret.clamp(0, 4) as usize)
                .map(|i| ctx.i64_at(CallCtx::RESULTS + 8 * i).to_string())
                .collect();
            println!(
                "handle={} ret={ret} results={}",
                ctx.i64_at(CallCtx::HANDLE),
                results.join(",")
            );
        }
        Cmd::CallBuf {
            object,
            module,
            function,
            data,
        } => {
            if data.len() > 128 {
                bail!("at most 128 bytes of data");
            }
            let obj = load(&object, &["call_buf"])?;
            let mut ctx = CallCtx::new(&module, &function)?;
            ctx.put(CallCtx::BUF, data.as_bytes());
            ctx.put(CallCtx::BUF_LEN, &(data.len() as u32).to_ne_bytes());
            ctx.run(&obj, "call_buf")?;
            let out = &ctx.bytes[CallCtx::BUF..CallCtx::BUF + data.len()];
            println!(
                "ret={} result={} buf={}",
                ctx.i64_at(CallCtx::RET),
                ctx.i64_at(CallCtx::BUF_RESULT),
                String::from_utf8_lossy(out)
            );
        }
        Cmd::Xdp(run) | Cmd::Tc(run) => packet_run(&run)?,
        Cmd::Attach {
            object,
            prog,
            command,
        } => {
            let names: Vec<&str> = prog.iter().map(String::as_str).collect();
            let obj = load(&object, &names)?;
            let mut links = Vec::new();
            for name in &names {
                links.push(
                    find(&obj, name)?
                        .attach()
                        .with_context(|| format!("cannot attach {name}"))?,
                );
            }
            let status = Command::new(&command[0])
                .args(&command[1..])
                .status()
                .with_context(|| format!("cannot run {}", command[0]))?;
            drop(links);
            std::process::exit(status.code().unwrap_or(1));
        }
        Cmd::Getpgid { count } => {
            for _ in 0..count {
                // SAFETY: getpgid(0) has no memory-safety preconditions.
                unsafe { libc::getpgid(0) };
            }
        }
        Cmd::Bench {
            object,
            repeat,
            rounds,
        } => bench(&object, repeat, rounds)?,
    }
    Ok(())
}

/// Test-runs a packet program, once or until the stop file appears, and prints its verdict
/// and the maps asked for.
fn packet_run(r: &PacketRun) -> Result<()> {
    let obj = load(&r.object, &[r.prog.as_str()])?;
    let packet = packet::build(&r.packet)?;
    let mut v = verdict(&obj, &r.prog, &packet, r.repeat)?;
    if let (Some(stop), Some(secs)) = (&r.stop_file, r.for_secs) {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut runs = 1u64;
        while !stop.exists() && std::time::Instant::now() < end {
            v = verdict(&obj, &r.prog, &packet, r.repeat)?;
            runs += 1;
        }
        println!("runs={runs} calls={}", runs * u64::from(r.repeat));
    }
    println!("verdict={v}");
    for name in &r.dump_map {
        let map = obj
            .maps()
            .find(|m| m.name() == name.as_str())
            .with_context(|| format!("no map named {name}"))?;
        let mut values = Vec::new();
        for key in 0..map.max_entries() {
            let value = map
                .lookup(&key.to_ne_bytes(), libbpf_rs::MapFlags::ANY)
                .with_context(|| format!("cannot read {name}[{key}]"))?
                .unwrap_or_default();
            let bytes: [u8; 8] = value
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .with_context(|| format!("{name} does not hold u64 values"))?;
            values.push(u64::from_ne_bytes(bytes).to_string());
        }
        println!("{name}={}", values.join(","));
    }
    Ok(())
}

fn bench(object: &Path, repeat: u32, rounds: usize) -> Result<()> {
    let progs = ["xdp_empty", "xdp_kfunc_only", "xdp_wasm_call"];
    let obj = load(object, &progs)?;
    let packet = packet::build("udp:10.0.0.1:1000-10.0.0.2:2000")?;
    let mut medians = Vec::new();
    for name in progs {
        let p = find(&obj, name)?;
        let mut times = Vec::new();
        for _ in 0..rounds.max(1) {
            let input = ProgramInput {
                data_in: Some(&packet),
                repeat,
                ..Default::default()
            };
            let out = p.test_run(input)?;
            if out.return_value != 2 {
                bail!(
                    "{name} returned {} instead of XDP_PASS: is the probe guest loaded?",
                    out.return_value
                );
            }
            times.push(out.duration.as_nanos() as f64);
        }
        times.sort_by(f64::total_cmp);
        medians.push((name, times[times.len() / 2]));
    }
    let empty = medians[0].1.max(1.0);
    let kfunc = medians[1].1.max(1.0);
    println!(
        "{:<16} {:>12} {:>12} {:>12}",
        "program", "ns/run", "x empty", "x kfunc"
    );
    for (name, ns) in &medians {
        println!(
            "{name:<16} {ns:>12.1} {:>12.2} {:>12.2}",
            ns / empty,
            ns / kfunc
        );
    }
    println!(
        "wasm call cost: {:.1} ns over an empty kfunc call ({} runs x {} rounds, medians)",
        medians[2].1 - kfunc,
        repeat,
        rounds
    );
    Ok(())
}
