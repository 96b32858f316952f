//! `wasmctl`: load, call and inspect WebAssembly modules in `wasm.ko` through `/dev/wasm`, or
//! run a module in user space on the same engine (`wasmctl run`).

mod apply;
mod args;
mod bpfmap;
mod device;
mod metrics;
mod output;
mod run;
mod sign;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use device::Device;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Instant;
use wasm_proto::{Limits, Request, Response};

#[derive(Parser)]
#[command(
    name = "wasmctl",
    version,
    about = "Control WebAssembly modules running in the kernel (wasm.ko)"
)]
struct Cli {
    /// The wasm.ko device.
    #[arg(long, global = true, default_value = "/dev/wasm")]
    device: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// WASI arguments and environment of a module's instances.
#[derive(clap::Args, Clone)]
struct WasiArgs {
    /// A WASI argument (after argv[0], the module's name); repeatable.
    #[arg(long = "arg", allow_hyphen_values = true)]
    wasi_args: Vec<String>,
    /// A WASI environment variable, KEY=value; repeatable.
    #[arg(long = "env")]
    wasi_env: Vec<String>,
}

impl WasiArgs {
    fn args(&self) -> Vec<&str> {
        self.wasi_args.iter().map(String::as_str).collect()
    }

    fn env(&self) -> Vec<&str> {
        self.wasi_env.iter().map(String::as_str).collect()
    }
}

/// The capabilities of a module.
#[derive(clap::Args, Clone)]
struct GrantArgs {
    /// Host function groups the module may import, comma-separated: debug, env, wasi:io,
    /// wasi:args, wasi:clocks, wasi:random, wasi:proc, bpf-maps; `default` stands for all
    /// but bpf-maps, `all` for all [default: default].
    #[arg(long, value_delimiter = ',')]
    allow: Option<Vec<String>>,
}

impl GrantArgs {
    /// The groups as the protocol sends them, checked.
    fn allow(&self) -> Result<Option<Vec<&str>>> {
        let Some(names) = &self.allow else {
            return Ok(None);
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        wasm_engine::Grants::parse(names.iter().copied()).map_err(anyhow::Error::msg)?;
        Ok(Some(names))
    }

    fn grants(&self) -> Result<wasm_engine::Grants> {
        Ok(match self.allow()? {
            Some(names) => wasm_engine::Grants::parse(names).map_err(anyhow::Error::msg)?,
            None => wasm_engine::Grants::DEFAULT,
        })
    }
}

#[derive(clap::Args, Clone, Copy)]
struct LimitArgs {
    /// Fuel (about one unit per executed instruction) allowed to each call [default: 100000000].
    #[arg(long)]
    fuel: Option<u64>,
    /// Fuel allowed to each call from an eBPF program, which runs in one piece [default: 1000000].
    #[arg(long)]
    bpf_fuel: Option<u64>,
    /// Largest linear memory of each instance, in bytes; suffixes K, M, G [default: 64M].
    #[arg(long, value_parser = args::parse_size)]
    memory: Option<u64>,
    /// Instances to create [default: one per possible CPU]; fewer save memory for big guests
    /// called from user space (calls from CPU n use instance n mod N).
    #[arg(long)]
    instances: Option<u32>,
}

impl LimitArgs {
    fn limits(self) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(0),
            bpf_fuel: self.bpf_fuel.unwrap_or(0),
            memory: self.memory.unwrap_or(0),
            instances: self.instances.unwrap_or(0),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Load a module into the kernel: one instance per CPU, entrypoint run on each.
    Load {
        /// The .wasm file.
        file: PathBuf,
        /// Registry name [default: the file's stem].
        #[arg(long)]
        name: Option<String>,
        /// Function to run at load [default: main, else _start, if exported]; "" runs nothing.
        #[arg(long)]
        entrypoint: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        wasi: WasiArgs,
        #[command(flatten)]
        grants: GrantArgs,
        /// Replace the loaded module of this name atomically: the new code is compiled and
        /// initialised first, then takes over every new call (eBPF handles stay valid); each
        /// export must keep its signature.
        #[arg(long)]
        replace: bool,
        /// The module's detached signature [default: FILE.sig, if it exists].
        #[arg(long)]
        signature: Option<PathBuf>,
        /// A BPF map for the guest's bpf.map_* functions (needs --allow ...,bpf-maps): a map
        /// id or a pinned path; repeatable, the first is map 0.
        #[arg(long = "map", value_name = "ID|PATH")]
        maps: Vec<String>,
        /// Print how long the load took (parse, validate, compile, instantiate, entrypoint).
        #[arg(long)]
        time: bool,
    },
    /// Create an ed25519 key pair for signing guests: KEY (secret, mode 0600) and KEY.pub
    /// (for `insmod wasm.ko trusted_keys=...`).
    Keygen {
        /// The secret key file to create.
        key: PathBuf,
    },
    /// Sign a module with a secret key: writes the detached signature that `load` sends.
    Sign {
        /// The .wasm file.
        file: PathBuf,
        /// The secret key file (from `wasmctl keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The signature file [default: FILE.sig].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Show what each module costs, refreshed like top: calls per second from user space
    /// and from eBPF, traps, fuel, latency quantiles (from the kernel's histograms), memory.
    Top {
        /// Seconds between two screens.
        #[arg(short = 'd', long, default_value_t = 1.0)]
        interval: f64,
        /// Screens to show, then exit [default: no end].
        #[arg(short = 'n', long, default_value_t = 0)]
        iterations: u64,
        /// Print successive reports without clearing the screen.
        #[arg(short, long)]
        batch: bool,
    },
    /// Unload a module and free its instances.
    Unload {
        /// The module's name.
        name: String,
    },
    /// List loaded modules with their exports and per-CPU counters.
    List,
    /// Call an exported function; arguments are parsed by the function's parameter types.
    Call {
        /// The module's name.
        module: String,
        /// The exported function.
        function: String,
        /// Arguments (integers in decimal or 0x hex, floats like 1.5, nan, inf).
        #[arg(allow_negative_numbers = true)]
        args: Vec<String>,
        /// Call it this many times; the results shown are the last call's.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Print how long the calls took: median, minimum and maximum of each request's round
        /// trip through the device (CLOCK_MONOTONIC).
        #[arg(long)]
        time: bool,
    },
    /// Show the kernel module's counters (live allocations, stack peaks).
    Stats {
        /// Print every counter in the Prometheus text exposition format instead (for a node
        /// exporter's textfile collector or a sidecar).
        #[arg(long)]
        prometheus: bool,
    },
    /// Make the loaded modules match a configuration directory (one TOML file per module):
    /// load what is missing, reload what drifted (binary, limits, instances, entrypoint),
    /// report the rest. Idempotent; run at boot by wasm-apply.service.
    Apply {
        /// The configuration directory.
        #[arg(long, default_value = "/etc/wasm.d")]
        config_dir: PathBuf,
        /// Only report what would change; exit with status 1 if anything would.
        #[arg(long)]
        check: bool,
        /// Also unload interpreted modules that no file configures.
        #[arg(long)]
        prune: bool,
        /// Load this module again even if nothing differs (for changed WASI arguments or
        /// environment, which the kernel does not report); repeatable.
        #[arg(long, value_name = "NAME")]
        reload: Vec<String>,
        /// Unload the configured modules instead (what a node agent does when removed).
        #[arg(long, conflicts_with_all = ["check", "prune", "reload"])]
        remove: bool,
    },
    /// Show the protocol and module versions.
    Version,
    /// Compile a module ahead of time into a kernel module for the native tier (wasm2c and
    /// Kbuild); `insmod` it after wasm.ko and it appears in `list` like a loaded module.
    Compile {
        /// The .wasm file.
        file: PathBuf,
        /// The kernel module to write; its file stem is the kernel module's name
        /// [default: the registry name, `-` and `.` made `_`, in the current directory].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Registry name the module registers under [default: the file's stem].
        #[arg(long)]
        name: Option<String>,
        /// The kernel build tree [default: /lib/modules/$(uname -r)/build].
        #[arg(long)]
        kdir: Option<PathBuf>,
        /// wasm.ko's Module.symvers [default: Module.symvers beside wasm.ko in kmod/].
        #[arg(long, default_value = "kmod/Module.symvers")]
        symvers: PathBuf,
        /// Directory for the generated C and the build [default: a directory beside the output
        /// named after it with `.build`].
        #[arg(long)]
        build_dir: Option<PathBuf>,
        /// The wasm2c to run (wabt 1.0.32).
        #[arg(long, default_value = "wasm2c")]
        wasm2c: PathBuf,
        /// Sign the module with this private key (PEM), as `scripts/sign-file` does: for hosts
        /// that enforce module signatures (Secure Boot), with a key the kernel trusts (a MOK).
        #[arg(long, requires = "sign_cert")]
        sign_key: Option<PathBuf>,
        /// The X.509 certificate (DER or PEM) of --sign-key.
        #[arg(long, requires = "sign_key")]
        sign_cert: Option<PathBuf>,
        /// Keep the debug information in the module (it is stripped by default).
        #[arg(long)]
        keep_debug: bool,
    },
    /// Run a module in user space on the same engine: `_debug` prints to stdout.
    Run {
        /// The .wasm file.
        file: PathBuf,
        /// Function to run at load [default: main, else _start, if exported]; "" runs nothing.
        #[arg(long)]
        entrypoint: Option<String>,
        /// After the entrypoint, call this export with ARGS and print its results.
        #[arg(long)]
        invoke: Option<String>,
        /// Arguments for --invoke.
        #[arg(allow_negative_numbers = true, requires = "invoke")]
        args: Vec<String>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        wasi: WasiArgs,
        #[command(flatten)]
        grants: GrantArgs,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = execute(&cli) {
        eprintln!("wasmctl: error: {e:#}");
        std::process::exit(1);
    }
}

fn execute(cli: &Cli) -> Result<()> {
    let out = output::Output { json: cli.json };
    match &cli.command {
        Command::Run {
            file,
            entrypoint,
            invoke,
            args,
            limits,
            wasi,
            grants,
        } => {
            let (wasm, name) = read_module(file, None)?;
            let spec = wasm_engine::LoadSpec {
                name: &name,
                wasm: &wasm,
                entrypoint: entrypoint.as_deref(),
                limits: limits.limits(),
                args: &wasi.args(),
                env: &wasi.env(),
                grants: grants.grants()?,
                ..Default::default()
            };
            return run::run(&out, &spec, invoke.as_deref(), args);
        }
        Command::Compile {
            file,
            output,
            name,
            kdir,
            symvers,
            build_dir,
            wasm2c,
            sign_key,
            sign_cert,
            keep_debug,
        } => {
            let (wasm, name) = read_module(file, name.as_deref())?;
            let ko = output
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.ko", name.replace(['-', '.'], "_"))));
            let module = ko
                .file_stem()
                .and_then(|s| s.to_str())
                .context("the output must be a file name ending in .ko")?
                .to_string();
            let kdir = match kdir {
                Some(k) => k.clone(),
                None => PathBuf::from(format!("/lib/modules/{}/build", kernel_release()?)),
            };
            let build_dir = build_dir
                .clone()
                .unwrap_or_else(|| ko.with_extension("build"));
            let opts = wasm_aot::compile::Options {
                wasm,
                name,
                module,
                kdir,
                symvers: symvers.clone(),
                build_dir,
                wasm2c: wasm2c.clone(),
                sign: sign_key.clone().zip(sign_cert.clone()),
                keep_debug: *keep_debug,
            };
            let started = Instant::now();
            let compiled = wasm_aot::compile::compile(&opts)?;
            std::fs::copy(&compiled.ko, &ko)
                .with_context(|| format!("cannot write {}", ko.display()))?;
            let size = std::fs::metadata(&ko).map(|m| m.len()).unwrap_or(0);
            return out.compiled(&ko, size, &compiled, started.elapsed());
        }
        Command::Load {
            file,
            name,
            entrypoint,
            limits,
            wasi,
            grants,
            replace,
            signature,
            maps,
            time,
        } => {
            let (wasm, name) = read_module(file, name.as_deref())?;
            let signature = sign::read(file, signature.as_deref())?;
            let maps = maps
                .iter()
                .map(|m| bpfmap::open(m))
                .collect::<Result<Vec<_>>>()?;
            let mut dev = Device::open(&cli.device)?;
            let req = Request::Load {
                name: &name,
                wasm: &wasm,
                entrypoint: entrypoint.as_deref(),
                limits: limits.limits(),
                args: wasi.args(),
                env: wasi.env(),
                replace: *replace,
                allow: grants.allow()?,
                signature: signature.as_deref(),
                maps: maps.iter().map(|m| m.as_raw_fd()).collect(),
            };
            let started = Instant::now();
            let resp = dev.request(&req)?;
            let took = [started.elapsed()];
            match resp {
                Response::Loaded {
                    instances,
                    entry_result,
                    version,
                } => out.loaded(
                    &name,
                    output::Loaded {
                        instances,
                        entry_result,
                        version,
                    },
                    time.then_some(&took[..]),
                ),
                other => unexpected(other),
            }
        }
        Command::Keygen { key } => {
            let public = sign::keygen(key)?;
            println!("secret key {} (keep it private)", key.display());
            println!("public key {public}");
            println!("trust it: insmod wasm.ko trusted_keys={public} [require_signature=1]");
        }
        Command::Sign { file, key, output } => {
            let wasm =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let sig = sign::sign(key, &wasm)?;
            let path = output.clone().unwrap_or_else(|| sign::default_path(file));
            std::fs::write(&path, sig)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("signed {}: {}", file.display(), path.display());
        }
        Command::Top {
            interval,
            iterations,
            batch,
        } => {
            if !interval.is_finite() || *interval <= 0.0 {
                bail!("the interval must be a positive number of seconds");
            }
            let opts = metrics::TopOptions {
                interval: std::time::Duration::from_secs_f64(*interval),
                iterations: *iterations,
                batch: *batch,
            };
            metrics::top(&mut Device::open(&cli.device)?, &opts)?;
        }
        Command::Unload { name } => {
            match Device::open(&cli.device)?.request(&Request::Unload { name })? {
                Response::Unloaded => out.unloaded(name),
                other => unexpected(other),
            }
        }
        Command::List => match Device::open(&cli.device)?.request(&Request::List)? {
            Response::List(modules) => out.list(&modules),
            other => unexpected(other),
        },
        Command::Call {
            module,
            function,
            args,
            repeat,
            time,
        } => {
            let mut dev = Device::open(&cli.device)?;
            let Response::List(modules) = dev.request(&Request::List)? else {
                bail!("unexpected answer to list");
            };
            let m = modules
                .iter()
                .find(|m| &m.name == module)
                .with_context(|| {
                    format!("no module named '{module}' is loaded (see wasmctl list)")
                })?;
            let sig = m
                .exports
                .iter()
                .find(|e| &e.name == function)
                .with_context(|| format!("module '{module}' exports no function '{function}'"))?;
            let req = Request::Call {
                module,
                function,
                args: args::parse_values(sig, args)?,
            };
            let mut took = Vec::with_capacity(*repeat as usize);
            let mut last = None;
            for _ in 0..*repeat {
                let started = Instant::now();
                last = Some(dev.request(&req)?);
                took.push(started.elapsed());
            }
            match last {
                Some(Response::Called {
                    results,
                    fuel_used,
                    cpu,
                    exit,
                }) => out.called(&results, fuel_used, cpu, exit, time.then_some(&took[..])),
                Some(other) => unexpected(other),
                None => bail!("no call was made"),
            }
        }
        Command::Apply {
            config_dir,
            check,
            prune,
            reload,
            remove,
        } => {
            let desired = apply::read_dir(config_dir)?;
            let mut dev = Device::open(&cli.device)?;
            let opts = apply::Options {
                check: *check,
                prune: *prune,
                reload,
            };
            let report = if *remove {
                apply::remove(&mut dev, &desired)?
            } else {
                apply::apply(&mut dev, &desired, &opts)?
            };
            out.applied(&report, *check);
            if report.failed > 0 {
                bail!("{} module(s) could not be applied", report.failed);
            }
            if *check && report.changed > 0 {
                std::process::exit(1);
            }
        }
        Command::Stats { prometheus } => {
            let mut dev = Device::open(&cli.device)?;
            let stats = match dev.request(&Request::Stats)? {
                Response::Stats(stats) => stats,
                other => unexpected(other),
            };
            if *prometheus {
                let Response::List(modules) = dev.request(&Request::List)? else {
                    bail!("unexpected answer to list");
                };
                print!("{}", metrics::prometheus(&stats, &modules));
            } else {
                out.stats(&stats);
            }
        }
        Command::Version => match Device::open(&cli.device)?.request(&Request::Version)? {
            Response::Version {
                protocol,
                module,
                kfuncs,
            } => out.version(protocol, &module, kfuncs),
            other => unexpected(other),
        },
    }
    Ok(())
}

/// The module's binary, and `name` or else the file's stem made into a valid module name.
fn read_module(file: &std::path::Path, name: Option<&str>) -> Result<(Vec<u8>, String)> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok((wasm, module_name(file, name)?))
}

/// `name`, or the file's stem made into a valid module name.
fn module_name(file: &std::path::Path, name: Option<&str>) -> Result<String> {
    if let Some(n) = name {
        return Ok(n.to_string());
    }
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .context("cannot derive a module name from the file name: pass --name")?;
    Ok(stem
        .chars()
        .take(wasm_proto::MAX_NAME_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect())
}

/// The running kernel's release (`uname -r`).
fn kernel_release() -> Result<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .context("cannot read the kernel release: pass --kdir")?;
    Ok(release.trim().to_string())
}

fn unexpected(resp: Response) -> ! {
    eprintln!("wasmctl: error: unexpected answer from the kernel: {resp:?}");
    std::process::exit(1)
}
