//! Project tasks: build `wasm.ko` against Debian's kernels and test it in QEMU.
//!
//! `cargo xtask demo` builds everything, boots Debian's 6.1 kernel with the module and the
//! hello world, and prints the kernel log. `cargo xtask vm-test` runs the scenarios of
//! `xtask/guest/tests.sh` on 6.1 and 6.12 side by side and fails on any failed check or any
//! `BUG:`/`WARNING:`/`Oops`/`Call Trace` on the console.

mod bench;
mod build;
mod cpio;
mod fuzz;
mod image;
mod install;
mod kernel;
mod package;
mod vm;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kernel::{Kernel, Series};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "xtask", about = "Build and VM-test wasm.ko")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build everything, boot a kernel with wasm.ko, load the hello world, print the kernel log.
    Demo {
        /// Kernel series to boot.
        #[arg(long, value_enum, default_value = "6.1")]
        kernel: Series,
    },
    /// Run the VM scenarios on each kernel (all by default).
    VmTest {
        /// Kernel series to test; repeatable.
        #[arg(long, value_enum)]
        kernel: Vec<Series>,
        /// Scenario suites to run, one boot each; repeatable (all by default).
        #[arg(long, value_enum)]
        suite: Vec<Suite>,
        /// A scenario script of your own instead of the suites (same output conventions).
        #[arg(long, conflicts_with = "suite")]
        scenario: Option<PathBuf>,
        /// Length of the hardening suite's stress run, and of its frame fuzzing.
        #[arg(long, default_value_t = 20)]
        stress_seconds: u32,
        /// Boot the debug kernel (KASAN, lockdep, kmemleak, failslab; built from Debian's
        /// 6.1 source on first use) instead of Debian's kernels.
        #[arg(long, conflicts_with = "kernel")]
        debug_kernel: bool,
    },
    /// Benchmark the engines: the guest workloads in user space and in the VM, the eBPF ->
    /// Wasm call cost and load scaling (deterministic virtual time in the VM).
    Bench {
        /// Kernel series; repeatable (all by default).
        #[arg(long, value_enum)]
        kernel: Vec<Series>,
        /// Workload sizes: full figures, or a quick check that everything runs.
        #[arg(long, value_enum, default_value = "full")]
        scale: bench::Scale,
    },
    /// Fuzz the engine and protocol in user space (libFuzzer): each target for `seconds`.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Targets to run; repeatable (all by default).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(fuzz::TARGETS))]
        target: Vec<String>,
    },
    /// Build the Debian packages (wasm-kernel-module-dkms, wasmctl) into target/debian and
    /// check them with lintian.
    Package,
    /// The end-to-end install test: the packages installed with apt in a Debian 12 VM with
    /// systemd, DKMS building wasm.ko, the hello world loaded at boot, then an upgrade to the
    /// 6.12 kernel with DKMS rebuilding and everything loaded again.
    InstallTest,
    /// Build the container image (OCI layout and archive in target/oci, no container engine
    /// needed), check it with umoci, and validate the Kubernetes manifests of deploy/.
    Image,
    /// Download and unpack the kernels only.
    Kernels,
    /// Check the C shim with the kernel's checkpatch.pl.
    Checkpatch,
}

const TESTS: &str = include_str!("../guest/tests.sh");
const HARDENING: &str = include_str!("../guest/hardening.sh");

/// The VM scenario suites.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Suite {
    /// `xtask/guest/tests.sh`: the module, the device, eBPF, the samples and the languages.
    Tests,
    /// `xtask/guest/hardening.sh`: memory cgroups, killed loads, allocation-failure
    /// injection, stress.
    Hardening,
}
const DEMO: &str = include_str!("../guest/demo.sh");
/// The benchmark scenario (after the variables [`bench`] puts before it).
pub(crate) const BENCH: &str = include_str!("../guest/bench.sh");
const VM_TIMEOUT: Duration = Duration::from_secs(600);
/// The debug kernel's checkers (KASAN, lockdep, kmemleak) slow everything down several times.
const DEBUG_VM_TIMEOUT: Duration = Duration::from_secs(5400);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn main() {
    if let Err(e) = execute(Cli::parse().command) {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

/// A kernel with `wasm.ko` built for it and the directory for its VM files.
pub(crate) struct Prepared {
    kernel: Kernel,
    module: PathBuf,
    /// The guests compiled into native modules for this kernel.
    native: Vec<PathBuf>,
    /// `wasm.ko` as builds without module BTF would make it.
    variants: Vec<PathBuf>,
    dir: PathBuf,
}

fn prepare(root: &Path, series: &[Series]) -> Result<(build::Userland, Vec<Prepared>)> {
    let cache = root.join("target/vm/kernels");
    let mut kernels = Vec::new();
    for s in series {
        let mut kernel = kernel::fetch(*s, &cache)?;
        if *s == Series::V6_1 {
            let source = kernel::source_tree(&cache)?;
            kernel.resolve_btfids = Some(kernel::resolve_btfids(&source)?);
        }
        kernels.push(kernel);
    }
    prepare_kernels(root, kernels)
}

/// Builds the userland and `wasm.ko` for each of `kernels`.
fn prepare_kernels(root: &Path, kernels: Vec<Kernel>) -> Result<(build::Userland, Vec<Prepared>)> {
    let userland = build::userland(root)?;
    let mut prepared = Vec::new();
    for kernel in kernels {
        let dir = root.join("target/vm").join(&kernel.release);
        let module = build::module(root, &kernel, &dir.join("kmod"))?;
        let variants = build::kfunc_variants(&module)?;
        let native = build::native_modules(
            root,
            &userland,
            &kernel,
            &dir.join("kmod"),
            &dir.join("native"),
        )?;
        prepared.push(Prepared {
            kernel,
            module,
            native,
            variants,
            dir,
        });
    }
    Ok((userland, prepared))
}

fn payload(userland: &build::Userland, p: &Prepared, scenario: String) -> vm::Payload {
    vm::Payload {
        module: p.module.clone(),
        wasmctl: userland.wasmctl.clone(),
        bpf_loader: userland.bpf_loader.clone(),
        guests: userland.guests.clone(),
        bpf_objects: userland.bpf_objects.clone(),
        languages: userland.languages.clone(),
        scenario,
        executables: Vec::new(),
        guest_files: Vec::new(),
        native: p.native.clone(),
        module_variants: p.variants.clone(),
    }
}

fn execute(task: Task) -> Result<()> {
    let root = root();
    match task {
        Task::Kernels => {
            for s in Series::ALL {
                let k = kernel::fetch(s, &root.join("target/vm/kernels"))?;
                println!("{} {} {}", s.name(), k.release, k.image.display());
            }
            Ok(())
        }
        Task::Checkpatch => checkpatch(&root),
        Task::InstallTest => {
            let cache = root.join("target/vm/kernels");
            let base = kernel::fetch(Series::V6_1, &cache)?;
            let upgrade = kernel::fetch(Series::V6_12, &cache)?;
            let debs = packages(&root)?;
            let console = install::run_test(&root, &base, &upgrade, &[&debs.dkms, &debs.wasmctl])?;
            for line in console.lines().filter(|l| l.starts_with("VMTEST")) {
                println!("[install] {line}");
            }
            let o = evaluate("install test", &console);
            for f in &o.failed {
                println!("install-test:   {f}");
            }
            println!("{} passed, {} failed", o.passed, o.failed.len());
            if !o.failed.is_empty() {
                bail!("the install test failed (console: target/vm/install/console.log)");
            }
            Ok(())
        }
        Task::Image => {
            let layout = image::build(&root)?;
            println!(
                "{}:{} (and target/oci/{}-{}.tar): checked with umoci; manifests valid",
                layout.display(),
                env!("CARGO_PKG_VERSION"),
                image::NAME,
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        Task::Package => {
            let debs = packages(&root)?;
            let report = package::lintian(&[&debs.dkms, &debs.wasmctl])?;
            println!("{}", debs.dkms.display());
            println!("{}", debs.wasmctl.display());
            if report.trim().is_empty() {
                println!("lintian: clean");
            } else {
                print!("lintian:\n{report}");
            }
            Ok(())
        }
        Task::Fuzz { seconds, target } => {
            let targets: Vec<&'static str> = fuzz::TARGETS
                .into_iter()
                .filter(|t| target.is_empty() || target.iter().any(|n| n == t))
                .collect();
            fuzz::run(&root, &targets, seconds)
        }
        Task::Bench { kernel, scale } => {
            let series = if kernel.is_empty() {
                Series::ALL.to_vec()
            } else {
                kernel
            };
            let (userland, prepared) = prepare(&root, &series)?;
            let runner = build::bench_runner(&root)?;
            let report = bench::run(&root, &userland, &prepared, scale, &runner)?;
            println!("{report}");
            println!("(written to target/bench/: report.md and a chart per kernel)");
            Ok(())
        }
        Task::Demo { kernel } => demo(&root, kernel),
        Task::VmTest {
            kernel,
            suite,
            scenario,
            stress_seconds,
            debug_kernel,
        } => {
            let series = if kernel.is_empty() {
                Series::ALL.to_vec()
            } else {
                kernel
            };
            let scenarios = match scenario {
                Some(path) => vec![(
                    "custom",
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )],
                None if suite.is_empty() => {
                    suites(&[Suite::Tests, Suite::Hardening], stress_seconds)
                }
                None => suites(&suite, stress_seconds),
            };
            let (userland, prepared) = if debug_kernel {
                let kernel = kernel::debug_kernel(&root.join("target/vm/kernels"))?;
                prepare_kernels(&root, vec![kernel])?
            } else {
                prepare(&root, &series)?
            };
            let timeout = if debug_kernel {
                DEBUG_VM_TIMEOUT
            } else {
                VM_TIMEOUT
            };
            vm_test(&root, &userland, &prepared, &scenarios, timeout)
        }
    }
}

/// Builds the Debian packages, with the `resolve_btfids` of Debian's 6.1 source.
fn packages(root: &Path) -> Result<package::Packages> {
    let source = kernel::source_tree(&root.join("target/vm/kernels"))?;
    package::build(root, &kernel::resolve_btfids(&source)?)
}

fn checkpatch(root: &Path) -> Result<()> {
    let tree = kernel::source_tree(&root.join("target/vm/kernels"))?;
    let mut files = build::shim_sources(root, false)?
        .into_iter()
        .filter_map(|p| p.strip_prefix(root).ok().map(|p| p.display().to_string()))
        .collect::<Vec<_>>();
    files.sort();
    build::run(
        std::process::Command::new("perl")
            .arg(tree.join("scripts/checkpatch.pl"))
            .args(["--no-tree", "--quiet", "-f"])
            .args(&files)
            .current_dir(root),
    )
    .context("checkpatch found style problems in the C shim")?;
    println!("checkpatch: {} clean", files.join(", "));
    Ok(())
}

/// The console lines the scenario printed (between the kernel banner and the log dump).
fn scenario_output(console: &str) -> impl Iterator<Item = &str> {
    console
        .lines()
        .skip_while(|l| !l.contains("VM: kernel"))
        .take_while(|l| !l.starts_with("VM: dmesg begin"))
        // The firmware's last words may share the first line.
        .map(|l| l.find("VM: kernel").map_or(l, |i| &l[i..]))
}

fn demo(root: &Path, series: Series) -> Result<()> {
    let (userland, prepared) = prepare(root, &[series])?;
    let p = &prepared[0];
    let initrd = p.dir.join("initramfs-demo.cpio");
    vm::initramfs(&payload(&userland, p, DEMO.to_string()), &initrd)?;
    eprintln!("xtask: booting {} under QEMU", p.kernel.release);
    let console = vm::boot(&p.kernel.image, &initrd, VM_TIMEOUT)?;
    std::fs::write(p.dir.join("console-demo.log"), &console)?;
    println!("VM console (wasmctl):");
    for line in scenario_output(&console) {
        println!("  {line}");
    }
    println!("Kernel log of Debian {} with wasm.ko:", p.kernel.release);
    for line in vm::kernel_log(&console) {
        if line.contains("wasm") || line.contains("Hello") {
            println!("{line}");
        }
    }
    let bad = vm::bad_lines(&console);
    if !console.contains("Hello, world!") || !bad.is_empty() {
        bail!(
            "the demo did not reach \"Hello, world!\" cleanly; see {}",
            p.dir.join("console-demo.log").display()
        );
    }
    Ok(())
}

/// The outcome of one kernel's scenario run.
struct Outcome {
    release: String,
    passed: usize,
    failed: Vec<String>,
}

fn evaluate(release: &str, console: &str) -> Outcome {
    let mut failed: Vec<String> = Vec::new();
    let passed = console
        .lines()
        .filter(|l| l.starts_with("VMTEST PASS "))
        .count();
    failed.extend(
        console
            .lines()
            .filter(|l| l.starts_with("VMTEST FAIL "))
            .map(str::to_string),
    );
    if !console.lines().any(|l| l.starts_with("VMTEST SUMMARY ")) {
        failed.push("the scenario script did not finish".to_string());
    }
    failed.extend(
        console
            .lines()
            .filter(|l| l.starts_with("VM: kmemleak: ") && !l.starts_with("VM: kmemleak: 0 "))
            .map(str::to_string),
    );
    failed.extend(
        vm::bad_lines(console)
            .iter()
            .map(|l| format!("kernel log: {l}")),
    );
    Outcome {
        release: release.to_string(),
        passed,
        failed,
    }
}

/// The named scenarios of `suites`.
fn suites(suites: &[Suite], stress_seconds: u32) -> Vec<(&'static str, String)> {
    suites
        .iter()
        .map(|s| match s {
            Suite::Tests => ("tests", TESTS.to_string()),
            Suite::Hardening => (
                "hardening",
                format!("STRESS_SECONDS={stress_seconds}\nFRAME_FUZZ_SECONDS={stress_seconds}\n{HARDENING}"),
            ),
        })
        .collect()
}

/// Boots each kernel once per scenario: kernels side by side, a kernel's scenarios in turn.
fn vm_test(
    root: &Path,
    userland: &build::Userland,
    prepared: &[Prepared],
    scenarios: &[(&'static str, String)],
    timeout: Duration,
) -> Result<()> {
    let frame_fuzzer = build::frame_fuzzer(root)?;
    let mut runs = Vec::new();
    for p in prepared {
        let mut boots = Vec::new();
        for (name, scenario) in scenarios {
            let initrd = p.dir.join(format!("initramfs-{name}.cpio"));
            let mut payload = payload(userland, p, scenario.clone());
            payload.executables.push(frame_fuzzer.clone());
            payload
                .executables
                .push(root.join("deploy/image/wasm-node-agent"));
            vm::initramfs(&payload, &initrd)?;
            boots.push((*name, initrd, p.dir.join(format!("console-{name}.log"))));
        }
        let image = p.kernel.image.clone();
        let release = p.kernel.release.clone();
        runs.push(std::thread::spawn(move || -> Result<Vec<Outcome>> {
            let mut outcomes = Vec::new();
            for (name, initrd, log) in boots {
                eprintln!("xtask: booting {release} under QEMU ({name})");
                let console = match vm::boot(&image, &initrd, timeout) {
                    Ok(console) => console,
                    Err(e) => {
                        std::fs::write(&log, format!("{e:#}"))?;
                        return Err(e.context(format!("{release} ({name}): {}", log.display())));
                    }
                };
                std::fs::write(&log, &console)?;
                for line in console.lines().filter(|l| l.starts_with("VMTEST")) {
                    println!("[{release} {name}] {line}");
                }
                outcomes.push(evaluate(&format!("{release} ({name})"), &console));
            }
            Ok(outcomes)
        }));
    }
    let mut total_passed = 0;
    let mut total_failed = 0;
    let mut errors = Vec::new();
    for run in runs {
        match run.join() {
            Ok(Ok(outcomes)) => {
                for o in outcomes {
                    println!(
                        "vm-test: kernel {}: {} passed, {} failed",
                        o.release,
                        o.passed,
                        o.failed.len()
                    );
                    for f in &o.failed {
                        println!("vm-test:   {f}");
                    }
                    total_passed += o.passed;
                    total_failed += o.failed.len();
                }
            }
            Ok(Err(e)) => errors.push(format!("{e:#}")),
            Err(_) => errors.push("a VM thread panicked".to_string()),
        }
    }
    for e in &errors {
        println!("vm-test: error: {e}");
    }
    total_failed += errors.len();
    println!("{total_passed} passed, {total_failed} failed");
    if total_failed > 0 {
        bail!("VM tests failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::evaluate;

    #[test]
    fn evaluation_counts_checks_and_kernel_warnings() {
        let console = "VMTEST PASS a\nVMTEST FAIL b: no\n[ 1.0] WARNING: CPU: 0 at x\nVMTEST SUMMARY passed=1 failed=1\nVM: kmemleak: 0 unreferenced objects\n";
        let o = evaluate("k", console);
        assert_eq!(o.passed, 1);
        assert_eq!(o.failed.len(), 2);
        let o = evaluate(
            "k",
            "VMTEST SUMMARY passed=0 failed=0\nVM: kmemleak: 2 unreferenced objects\n",
        );
        assert_eq!(o.failed.len(), 1);
        let o = evaluate("k", "VMTEST PASS a\n");
        assert_eq!(
            o.failed,
            vec!["the scenario script did not finish".to_string()]
        );
    }
}
