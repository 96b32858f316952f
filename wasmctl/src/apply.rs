//! `wasmctl apply`: makes the loaded modules match the files of a configuration directory
//! (`/etc/wasm.d/*.toml`, one module per file), and reports what differed.
//!
//! ```toml
//! # /etc/wasm.d/packet-filter.toml
//! path = "/usr/share/wasm-kernel-module/guests/packet_filter.wasm"
//! name = "packet-filter"      # default: the file's stem
//! entrypoint = "main"         # default: main, else _start; "" runs nothing
//! fuel = 100000000            # the limits default as for `wasmctl load`
//! bpf_fuel = 1000000
//! memory = "64M"
//! instances = 0               # 0: one per possible CPU
//! args = ["--verbose"]        # WASI arguments and environment
//! env = ["MODE=strict"]
//! allow = ["debug", "bpf-maps"] # capabilities, as `wasmctl load --allow` (default: default)
//! signature = "packet_filter.wasm.sig" # default: PATH.sig, if it exists
//! maps = ["/sys/fs/bpf/blocked"] # BPF maps for bpf.map_*, by pinned path or id
//! ```
//!
//! Applying is idempotent: a module whose binary (SHA-256), limits, instance count,
//! entrypoint and grants match its file is left alone; one that differs has drifted and is
//! replaced in place (`load --replace`: eBPF handles stay valid), or unloaded and loaded
//! again if its exports changed; one that is not loaded is loaded. WASI arguments and environment are not reported by the
//! kernel, so a change of only those is not seen: `--reload NAME` forces it.

use crate::device::Device;
use crate::output::hex;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wasm_proto::{Limits, ModuleInfo, Request, Response, Tier};

/// One module's file, as written.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Spec {
    path: PathBuf,
    name: Option<String>,
    entrypoint: Option<String>,
    fuel: Option<u64>,
    bpf_fuel: Option<u64>,
    memory: Option<Size>,
    instances: Option<u32>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    allow: Option<Vec<String>>,
    signature: Option<PathBuf>,
    #[serde(default)]
    maps: Vec<String>,
}

/// A size in bytes: a number, or a string such as `"64M"`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Size {
    Bytes(u64),
    Text(String),
}

/// A module as configured, its binary read.
#[derive(Debug)]
pub struct Desired {
    /// Registry name.
    pub name: String,
    /// The configuration file it comes from.
    pub file: PathBuf,
    /// The module's binary.
    pub wasm: Vec<u8>,
    /// SHA-256 of `wasm`.
    pub digest: [u8; 32],
    /// Entrypoint asked for, if any.
    pub entrypoint: Option<String>,
    /// Limits asked for (zero: the default).
    pub limits: Limits,
    /// WASI arguments.
    pub args: Vec<String>,
    /// WASI environment.
    pub env: Vec<String>,
    /// Capabilities asked for (`None`: the defaults).
    pub allow: Option<Vec<String>>,
    /// The grants those make, by name.
    pub grants: Vec<String>,
    /// The binary's signature, if it has one.
    pub signature: Option<Vec<u8>>,
    /// BPF maps, as ids or pinned paths (opened when loading).
    pub maps: Vec<String>,
}

/// Reads every `*.toml` of `dir`, in name order. Any bad file fails the whole read, so that
/// nothing is applied from a half-valid configuration.
pub fn read_dir(dir: &Path) -> Result<Vec<Desired>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the configuration directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut desired: Vec<Desired> = Vec::with_capacity(files.len());
    for file in files {
        let d = read_file(&file).with_context(|| format!("in {}", file.display()))?;
        if let Some(other) = desired.iter().find(|o| o.name == d.name) {
            bail!(
                "{} and {} both configure a module named '{}'",
                other.file.display(),
                file.display(),
                d.name
            );
        }
        desired.push(d);
    }
    Ok(desired)
}

fn read_file(file: &Path) -> Result<Desired> {
    let text = std::fs::read_to_string(file).context("cannot read it")?;
    let spec: Spec = toml::from_str(&text)?;
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .context("the file name is not valid UTF-8: set name")?;
    let name = spec.name.clone().unwrap_or_else(|| stem.to_string());
    let path = match file.parent() {
        Some(dir) if spec.path.is_relative() => dir.join(&spec.path),
        _ => spec.path.clone(),
    };
    let wasm = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let grants = match &spec.allow {
        Some(names) => wasm_engine::Grants::parse(names.iter().map(String::as_str))
            .map_err(anyhow::Error::msg)?,
        None => wasm_engine::Grants::DEFAULT,
    };
    let signature = match (&spec.signature, file.parent()) {
        (Some(sig), Some(dir)) if sig.is_relative() => Some(dir.join(sig)),
        (sig, _) => sig.clone(),
    };
    let signature = crate::sign::read(&path, signature.as_deref())?;
    let memory = match &spec.memory {
        None => 0,
        Some(Size::Bytes(n)) => *n,
        Some(Size::Text(s)) => crate::args::parse_size(s).map_err(anyhow::Error::msg)?,
    };
    Ok(Desired {
        name,
        file: file.to_path_buf(),
        digest: Sha256::digest(&wasm).into(),
        wasm,
        entrypoint: spec.entrypoint,
        limits: Limits {
            fuel: spec.fuel.unwrap_or(0),
            bpf_fuel: spec.bpf_fuel.unwrap_or(0),
            memory,
            instances: spec.instances.unwrap_or(0),
        },
        args: spec.args,
        env: spec.env,
        allow: spec.allow,
        grants: grants.names(),
        signature,
        maps: spec.maps,
    })
}

/// What applying does to one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Configured and loaded as configured.
    Unchanged(String),
    /// Configured, not loaded: load it.
    Load(String),
    /// Loaded but differing from its file: load it again. The strings say what differs.
    Reload(String, Vec<String>),
    /// Loaded, not configured: left alone, or unloaded with `--prune`.
    Unmanaged(String, Tier),
}

/// Compares the configuration with what is loaded. `cpus` is the instance count of a module
/// loaded with the default (one per possible CPU); names in `reload` are reloaded whatever.
pub fn plan(
    desired: &[Desired],
    loaded: &[ModuleInfo],
    cpus: u32,
    reload: &[String],
) -> Result<Vec<Action>> {
    let loaded: BTreeMap<&str, &ModuleInfo> = loaded.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut actions = Vec::new();
    for d in desired {
        let Some(m) = loaded.get(d.name.as_str()) else {
            actions.push(Action::Load(d.name.clone()));
            continue;
        };
        if m.tier == Tier::Native {
            bail!(
                "'{}' is a native module (insmod'ed): it cannot be configured in {}",
                d.name,
                d.file.display()
            );
        }
        let mut diff = differences(d, m, cpus)?;
        if diff.is_empty() && reload.contains(&d.name) {
            diff.push("reload asked for".to_string());
        }
        actions.push(if diff.is_empty() {
            Action::Unchanged(d.name.clone())
        } else {
            Action::Reload(d.name.clone(), diff)
        });
    }
    for (name, m) in loaded {
        if !desired.iter().any(|d| d.name == name) {
            actions.push(Action::Unmanaged(name.to_string(), m.tier));
        }
    }
    Ok(actions)
}

fn differences(d: &Desired, m: &ModuleInfo, cpus: u32) -> Result<Vec<String>> {
    let want = wasm_engine::resolve_limits(&d.limits)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("in {}", d.file.display()))?;
    let mut diff = Vec::new();
    if m.digest != Some(d.digest) {
        let now = m
            .digest
            .map_or("none".to_string(), |x| hex(&x)[..12].to_string());
        diff.push(format!("sha256 {now}… → {}…", &hex(&d.digest)[..12]));
    }
    for (what, now, then) in [
        ("fuel", m.limits.fuel, want.fuel),
        ("bpf_fuel", m.limits.bpf_fuel, want.bpf_fuel),
        ("memory", m.limits.memory, want.memory),
    ] {
        if now != then {
            diff.push(format!("{what} {now} → {then}"));
        }
    }
    let instances = if want.instances == 0 {
        cpus
    } else {
        want.instances.min(cpus)
    };
    if m.instances.len() as u32 != instances {
        diff.push(format!("instances {} → {instances}", m.instances.len()));
    }
    if let Some(e) = &d.entrypoint {
        if *e != m.entrypoint {
            diff.push(format!("entrypoint '{}' → '{e}'", m.entrypoint));
        }
    }
    if d.grants != m.grants {
        diff.push(format!(
            "grants {} → {}",
            m.grants.join(","),
            d.grants.join(",")
        ));
    }
    Ok(diff)
}

/// What [`apply`] did, for the report.
#[derive(Debug, Default)]
pub struct Report {
    /// `(module, what happened)`, in order.
    pub lines: Vec<(String, String)>,
    /// Modules loaded, reloaded, unloaded.
    pub changed: usize,
    /// Modules that were left alone.
    pub unchanged: usize,
    /// Modules whose change failed.
    pub failed: usize,
}

/// Options of `wasmctl apply`.
pub struct Options<'a> {
    /// Only report what would change.
    pub check: bool,
    /// Unload interpreted modules that no file configures.
    pub prune: bool,
    /// Modules to load again even if nothing differs.
    pub reload: &'a [String],
}

/// Applies `desired` through `dev`. A module whose change fails is reported and the others
/// are still applied.
pub fn apply(dev: &mut Device, desired: &[Desired], opts: &Options<'_>) -> Result<Report> {
    let Response::List(loaded) = dev.request(&Request::List)? else {
        bail!("unexpected answer to list");
    };
    let Response::Stats(stats) = dev.request(&Request::Stats)? else {
        bail!("unexpected answer to stats");
    };
    let actions = plan(desired, &loaded, stats.cpus, opts.reload)?;
    let mut report = Report::default();
    let by_name = |name: &str| desired.iter().find(|d| d.name == name);
    for action in actions {
        let (name, outcome) = match action {
            Action::Unchanged(name) => {
                report.unchanged += 1;
                (name, "unchanged".to_string())
            }
            Action::Unmanaged(name, tier) if !opts.prune || tier == Tier::Native => {
                report.unchanged += 1;
                (name, "not configured (left loaded)".to_string())
            }
            Action::Unmanaged(name, _) if opts.check => {
                report.changed += 1;
                (name, "not configured: would unload".to_string())
            }
            Action::Unmanaged(name, _) => {
                let r = dev.request(&Request::Unload { name: &name });
                let text = outcome(&mut report, r.map(drop), "unloaded (not configured)");
                (name, text)
            }
            Action::Load(name) if opts.check => {
                report.changed += 1;
                (name, "not loaded: would load".to_string())
            }
            Action::Load(name) => {
                let d = by_name(&name).context("planned module")?;
                let r = load(dev, d, false);
                (name, outcome(&mut report, r, "loaded"))
            }
            Action::Reload(name, diff) if opts.check => {
                report.changed += 1;
                (name, format!("drift: {}: would reload", diff.join(", ")))
            }
            Action::Reload(name, diff) => {
                let d = by_name(&name).context("planned module")?;
                let (r, how) = match load(dev, d, true) {
                    Err(e) if format!("{e:#}").contains("cannot replace the module") => {
                        let r = dev
                            .request(&Request::Unload { name: &name })
                            .and_then(|_| load(dev, d, false));
                        (
                            r,
                            "reloaded, exports changed: eBPF programs must look them up again",
                        )
                    }
                    r => (r, "replaced"),
                };
                let done = format!("{how} (drift: {})", diff.join(", "));
                (name, outcome(&mut report, r, &done))
            }
        };
        report.lines.push((name, outcome));
    }
    Ok(report)
}

/// Unloads the configured modules that are loaded (`wasmctl apply --remove`: what a node
/// agent does when it is removed), leaving every other module alone.
pub fn remove(dev: &mut Device, desired: &[Desired]) -> Result<Report> {
    let Response::List(loaded) = dev.request(&Request::List)? else {
        bail!("unexpected answer to list");
    };
    let mut report = Report::default();
    for d in desired {
        let what = match loaded.iter().find(|m| m.name == d.name) {
            Some(m) if m.tier == Tier::Interpreted => {
                let r = dev.request(&Request::Unload { name: &d.name });
                outcome(&mut report, r.map(drop), "unloaded")
            }
            Some(_) => {
                report.unchanged += 1;
                "a native module: left loaded (rmmod it)".to_string()
            }
            None => {
                report.unchanged += 1;
                "not loaded".to_string()
            }
        };
        report.lines.push((d.name.clone(), what));
    }
    Ok(report)
}

fn outcome(report: &mut Report, r: Result<()>, done: &str) -> String {
    match r {
        Ok(()) => {
            report.changed += 1;
            done.to_string()
        }
        Err(e) => {
            report.failed += 1;
            format!("failed: {e:#}")
        }
    }
}

/// Loads `d`, or with `replace` replaces the loaded module of its name.
fn load(dev: &mut Device, d: &Desired, replace: bool) -> Result<()> {
    let maps = d
        .maps
        .iter()
        .map(|m| crate::bpfmap::open(m))
        .collect::<Result<Vec<_>>>()?;
    let req = Request::Load {
        name: &d.name,
        wasm: &d.wasm,
        entrypoint: d.entrypoint.as_deref(),
        limits: d.limits,
        args: d.args.iter().map(String::as_str).collect(),
        env: d.env.iter().map(String::as_str).collect(),
        replace,
        allow: d
            .allow
            .as_ref()
            .map(|a| a.iter().map(String::as_str).collect()),
        signature: d.signature.as_deref(),
        maps: maps.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect(),
    };
    match dev.request(&req)? {
        Response::Loaded { .. } => Ok(()),
        other => bail!("unexpected answer to load: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_proto::InstanceInfo;

    fn desired(dir: &Path, name: &str, text: &str) -> Desired {
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
        read_file(&dir.join(format!("{name}.toml"))).unwrap()
    }

    fn loaded(d: &Desired, limits: Limits, instances: usize) -> ModuleInfo {
        ModuleInfo {
            name: d.name.clone(),
            tier: Tier::Interpreted,
            wasm_size: d.wasm.len() as u64,
            digest: Some(d.digest),
            entrypoint: "main".into(),
            limits,
            version: 1,
            grants: wasm_engine::Grants::DEFAULT.names(),
            signer: None,
            maps: vec![],
            exports: vec![],
            imports: vec![],
            instances: (0..instances)
                .map(|cpu| InstanceInfo {
                    cpu: cpu as u32,
                    ..InstanceInfo::default()
                })
                .collect(),
        }
    }

    fn tmp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasmctl-apply-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.wasm"), b"\0asm\x01\0\0\0").unwrap();
        dir
    }

    #[test]
    fn files_parse_with_defaults_and_relative_paths() {
        let dir = tmp("parse");
        let d = desired(
            &dir,
            "policy",
            "path = \"m.wasm\"\nmemory = \"1M\"\nargs = [\"-v\"]\n",
        );
        assert_eq!(d.name, "policy");
        assert_eq!(d.wasm, b"\0asm\x01\0\0\0");
        assert_eq!(d.limits.memory, 1 << 20);
        assert_eq!(d.limits.fuel, 0);
        assert_eq!(d.args, ["-v"]);
        std::fs::write(dir.join("bad.toml"), "path = \"m.wasm\"\nfule = 5\n").unwrap();
        let err = read_dir(&dir).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `fule`"),
            "{err:#}"
        );
        std::fs::write(
            dir.join("bad.toml"),
            "path = \"m.wasm\"\nname = \"policy\"\n",
        )
        .unwrap();
        let err = read_dir(&dir).unwrap_err();
        assert!(format!("{err:#}").contains("both configure a module named 'policy'"));
        std::fs::remove_file(dir.join("bad.toml")).unwrap();
        std::fs::write(dir.join("gone.toml"), "path = \"missing.wasm\"\n").unwrap();
        assert!(format!("{:#}", read_dir(&dir).unwrap_err()).contains("cannot read"));
    }

    #[test]
    fn plan_loads_keeps_and_reloads() {
        let dir = tmp("plan");
        let a = desired(&dir, "a", "path = \"m.wasm\"\n");
        let b = desired(&dir, "b", "path = \"m.wasm\"\nfuel = 5\n");
        let c = desired(&dir, "c", "path = \"m.wasm\"\n");
        let defaults = wasm_engine::resolve_limits(&Limits::default()).unwrap();
        let mut stale = loaded(&c, defaults, 2);
        stale.digest = Some([7; 32]);
        let extra = ModuleInfo {
            name: "x".into(),
            ..loaded(&a, defaults, 2)
        };
        let now = [
            loaded(&a, defaults, 2),
            loaded(&b, defaults, 2),
            stale,
            extra,
        ];
        let actions = plan(&[a, b, c], &now, 2, &[]).unwrap();
        assert_eq!(actions[0], Action::Unchanged("a".into()));
        assert!(
            matches!(&actions[1], Action::Reload(n, d) if n == "b" && d == &["fuel 100000000 → 5"])
        );
        assert!(
            matches!(&actions[2], Action::Reload(n, d) if n == "c" && d[0].starts_with("sha256 070707070707… → "))
        );
        assert_eq!(actions[3], Action::Unmanaged("x".into(), Tier::Interpreted));
        let actions = plan(&[], &now[..1], 2, &[]).unwrap();
        assert_eq!(actions, [Action::Unmanaged("a".into(), Tier::Interpreted)]);
    }

    #[test]
    fn plan_counts_instances_and_honours_reload() {
        let dir = tmp("instances");
        let one = desired(&dir, "one", "path = \"m.wasm\"\ninstances = 1\n");
        let defaults = wasm_engine::resolve_limits(&Limits::default()).unwrap();
        let now = [loaded(&one, defaults, 4)];
        let actions = plan(&[one], &now, 4, &[]).unwrap();
        assert!(matches!(&actions[0], Action::Reload(_, d) if d == &["instances 4 → 1"]));
        let all = desired(&dir, "all", "path = \"m.wasm\"\n");
        let now = [loaded(&all, defaults, 4)];
        assert_eq!(
            plan(&[all], &now, 4, &[]).unwrap(),
            [Action::Unchanged("all".into())]
        );
        let all = desired(&dir, "all", "path = \"m.wasm\"\n");
        let actions = plan(&[all], &now, 4, &["all".to_string()]).unwrap();
        assert!(matches!(&actions[0], Action::Reload(_, d) if d == &["reload asked for"]));
    }

    #[test]
    fn grants_and_signatures_come_from_the_file() {
        let dir = tmp("grants");
        std::fs::write(dir.join("m.wasm.sig"), [3u8; 64]).unwrap();
        let d = desired(&dir, "g", "path = \"m.wasm\"\nallow = [\"debug\"]\n");
        assert_eq!(d.grants, ["debug"]);
        assert_eq!(d.signature.as_deref(), Some(&[3u8; 64][..]));
        let defaults = wasm_engine::resolve_limits(&Limits::default()).unwrap();
        let now = [loaded(&d, defaults, 2)];
        let actions = plan(&[d], &now, 2, &[]).unwrap();
        assert!(
            matches!(&actions[0], Action::Reload(_, diff) if diff[0].starts_with("grants debug,env,") && diff[0].ends_with(" → debug")),
            "{actions:?}"
        );
        std::fs::write(
            dir.join("bad.toml"),
            "path = \"m.wasm\"\nallow = [\"net\"]\n",
        )
        .unwrap();
        let e = read_file(&dir.join("bad.toml")).unwrap_err();
        assert!(
            format!("{e:#}").contains("unknown capability 'net'"),
            "{e:#}"
        );
    }
}
