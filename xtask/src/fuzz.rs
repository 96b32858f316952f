//! `cargo xtask fuzz`: builds the libFuzzer targets of `fuzz/` with coverage instrumentation
//! and AddressSanitizer (what `cargo fuzz build` does, without needing cargo-fuzz), runs each
//! for a given time from its corpus, and reports executions and crashes. A crash's input is
//! copied to `fuzz/regressions/TARGET/`, where `cargo test` in `fuzz/` replays it for ever.

use crate::build;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The targets, as `fuzz/fuzz_targets/NAME.rs`.
pub const TARGETS: [&str; 4] = ["frames", "load", "smith", "wasi"];

/// `cargo fuzz build`'s flags: libFuzzer's coverage counters and comparison tracing, and
/// AddressSanitizer. Without debug assertions, as the kernel builds the engine: wasmi's
/// translator asserts on `fuzz/regressions/load/wasmi-translator-ops-after-end.wasm`, a module
/// its release build rejects cleanly ("operators remaining after end of function").
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
    --cfg fuzzing -Coverflow-checks -Zsanitizer=address";
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// One target's run.
struct Run {
    target: &'static str,
    executions: u64,
    corpus: usize,
    crash: Option<String>,
}

/// Runs `targets` for `seconds` each; fails if any crashed.
pub fn run(root: &Path, targets: &[&'static str], seconds: u64) -> Result<()> {
    let dir = root.join("fuzz");
    // The fuzz targets build the kernel's patched wasmi.
    build::run(&mut Command::new(root.join("scripts/patch-wasmi.sh")))?;
    build::run(
        Command::new("cargo")
            .args(["build", "--release", "--bins", "--target", TRIPLE])
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTFLAGS", RUSTFLAGS)
            .current_dir(&dir),
    )
    .context("cannot build the fuzz targets")?;
    let out = root.join("target/fuzz");
    let mut runs = Vec::new();
    for &target in targets {
        let scratch = out.join("corpus").join(target);
        let artifacts = out.join("artifacts").join(target);
        std::fs::create_dir_all(&scratch)?;
        std::fs::create_dir_all(&artifacts)?;
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        // New inputs go to the first directory: the scratch one, not the repository's corpus.
        // The regressions run first thing, with the corpus.
        let regressions = dir.join("regressions").join(target);
        std::fs::create_dir_all(&regressions)?;
        let output = Command::new(dir.join("target").join(TRIPLE).join("release").join(target))
            .arg(&scratch)
            .arg(dir.join("corpus").join(target))
            .arg(&regressions)
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .args(["-print_final_stats=1", "-timeout=20", "-rss_limit_mb=4096"])
            .output()
            .with_context(|| format!("cannot run the {target} fuzzer"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        std::fs::write(out.join(format!("{target}.log")), log.as_bytes())?;
        let stat = |name: &str| {
            log.lines()
                .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let executions = stat("number_of_executed_units").unwrap_or(0);
        let crash = if output.status.success() {
            None
        } else {
            Some(keep_crash(&dir, target, &artifacts, &log)?)
        };
        runs.push(Run {
            target,
            executions,
            corpus: std::fs::read_dir(&scratch)?.count()
                + std::fs::read_dir(dir.join("corpus").join(target))?.count(),
            crash,
        });
    }
    let mut report = String::from(
        "| target | seconds | executions | corpus | crashes |\n|---|---|---|---|---|\n",
    );
    for r in &runs {
        writeln!(
            report,
            "| {} | {seconds} | {} | {} | {} |",
            r.target,
            r.executions,
            r.corpus,
            r.crash
                .as_deref()
                .map_or("0".to_string(), |c| format!("1: {c}"))
        )?;
    }
    std::fs::write(out.join("report.md"), &report)?;
    println!("{report}");
    if runs.iter().any(|r| r.crash.is_some()) {
        bail!("a fuzz target crashed: its input is in fuzz/regressions/ (fix it, keep the file)");
    }
    if runs.iter().any(|r| r.executions == 0) {
        bail!("a fuzz target ran no input: see target/fuzz/*.log");
    }
    Ok(())
}

/// Copies the newest artifact of a crashed run into `fuzz/regressions/TARGET/`; returns its
/// path and the first line of the crash report.
fn keep_crash(dir: &Path, target: &str, artifacts: &Path, log: &str) -> Result<String> {
    let newest = std::fs::read_dir(artifacts)?
        .filter_map(|e| e.ok())
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .context("the fuzzer failed without leaving an input: see target/fuzz/*.log")?;
    let keep = dir.join("regressions").join(target);
    std::fs::create_dir_all(&keep)?;
    let dest = keep.join(newest.file_name());
    std::fs::copy(newest.path(), &dest)?;
    let why = log
        .lines()
        .find(|l| l.contains("panicked") || l.contains("ERROR:"))
        .unwrap_or("crash");
    Ok(format!("{} ({why})", dest.display()))
}
