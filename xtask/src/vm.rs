//! Boots a kernel under QEMU (TCG) with a generated initramfs and collects its serial console.

use crate::cpio::{self, Entry};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kernel log patterns that fail a run whatever the scenario says.
pub const BAD_PATTERNS: [&str; 8] = [
    "BUG:",
    "WARNING:",
    "Oops",
    "Call Trace",
    "soft lockup",
    "rcu_sched self-detected stall",
    "Kernel panic",
    "general protection fault",
];

/// What goes into the initramfs besides busybox.
pub struct Payload {
    /// `wasm.ko`, as `/lib/wasm.ko`.
    pub module: PathBuf,
    /// Static `wasmctl`, as `/bin/wasmctl`.
    pub wasmctl: PathBuf,
    /// `wasm-bpf`, as `/bin/wasm-bpf`, with the shared libraries `ldd` lists.
    pub bpf_loader: PathBuf,
    /// Directory whose `.wasm` files go under `/guests`.
    pub guests: PathBuf,
    /// Directory whose `.bpf.o` files go under `/bpf`.
    pub bpf_objects: PathBuf,
    /// Directory whose `.wasm` and `.txt` files go under `/languages`.
    pub languages: PathBuf,
    /// The scenario script, run by `/init` as `/scenario.sh`.
    pub scenario: String,
    /// More static executables, under `/bin`.
    pub executables: Vec<PathBuf>,
    /// More guests, under `/guests`.
    pub guest_files: Vec<PathBuf>,
    /// Native modules built for this kernel (`wasmctl compile`), under `/native`.
    pub native: Vec<PathBuf>,
    /// Variants of `wasm.ko` ([`crate::build::kfunc_variants`]), under `/lib`.
    pub module_variants: Vec<PathBuf>,
}

const INIT: &str = include_str!("../guest/init.sh");

/// Files of `dir` whose names end with `suffix`, sorted.
fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.to_str().is_some_and(|p| p.ends_with(suffix)) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The shared libraries (and loader) a dynamic executable needs, by absolute path.
fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .context("cannot run ldd")?;
    if !out.status.success() {
        bail!("ldd {} failed", exe.display());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes the initramfs for `payload` to `out`.
pub fn initramfs(payload: &Payload, out: &Path) -> Result<()> {
    let mut files: Vec<(String, Vec<u8>, u32)> = vec![
        (
            "bin/busybox".into(),
            read(Path::new("/bin/busybox")).context("install busybox-static")?,
            0o755,
        ),
        ("init".into(), INIT.as_bytes().to_vec(), 0o755),
        (
            "scenario.sh".into(),
            payload.scenario.as_bytes().to_vec(),
            0o755,
        ),
        ("lib/wasm.ko".into(), read(&payload.module)?, 0o644),
        ("bin/wasmctl".into(), read(&payload.wasmctl)?, 0o755),
        ("bin/wasm-bpf".into(), read(&payload.bpf_loader)?, 0o755),
    ];
    for (dir, extra, mode) in [
        ("bin", &payload.executables, 0o755),
        ("guests", &payload.guest_files, 0o644),
        ("native", &payload.native, 0o644),
        ("lib", &payload.module_variants, 0o644),
    ] {
        for f in extra {
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .context("file name")?;
            files.push((format!("{dir}/{name}"), read(f)?, mode));
        }
    }
    for lib in shared_libraries(&payload.bpf_loader)? {
        let dest = lib
            .to_str()
            .context("library path")?
            .trim_start_matches('/')
            .to_string();
        files.push((dest, read(&lib)?, 0o755));
    }
    for (dir, suffix, dest) in [
        (&payload.guests, ".wasm", "guests"),
        (&payload.bpf_objects, ".bpf.o", "bpf"),
        (&payload.languages, ".wasm", "languages"),
        (&payload.languages, ".txt", "languages"),
        (&payload.languages, ".script", "languages"),
    ] {
        for f in files_ending(dir, suffix)? {
            let name = f
                .file_name()
                .and_then(|n| n.to_str())
                .context("file name")?;
            files.push((format!("{dest}/{name}"), read(&f)?, 0o644));
        }
    }
    let mut dirs: Vec<String> = ["dev", "proc", "sys", "tmp", "etc"]
        .map(String::from)
        .to_vec();
    for (path, _, _) in &files {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(p.to_str().context("dir")?.to_string());
            parent = p.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut entries: Vec<Entry<'_>> = dirs.iter().map(|d| Entry::Dir(d)).collect();
    entries.push(Entry::Symlink("bin/sh", "busybox"));
    entries.extend(files.iter().map(|(n, d, m)| Entry::File(n, d, *m)));
    std::fs::write(out, cpio::archive(&entries))?;
    Ok(())
}

/// How to boot: the CPU count, extra QEMU arguments and kernel command-line parameters.
pub struct BootOptions<'a> {
    /// `-smp`: CPUs online.
    pub cpus: u32,
    /// `-smp maxcpus=`: possible CPUs (hot-pluggable ones included), at least `cpus`.
    pub max_cpus: u32,
    /// More QEMU arguments.
    pub qemu: &'a [&'a str],
    /// More kernel parameters.
    pub append: &'a str,
    /// `-m`: memory in MiB.
    pub memory_mb: u32,
}

impl Default for BootOptions<'_> {
    fn default() -> Self {
        BootOptions {
            cpus: 2,
            max_cpus: 2,
            qemu: &[],
            append: "",
            memory_mb: 512,
        }
    }
}

/// Boots `image` with `initrd` and returns everything the serial console printed.
/// Fails if QEMU does not power off within `timeout`.
pub fn boot(image: &Path, initrd: &Path, timeout: Duration) -> Result<String> {
    boot_with(image, initrd, timeout, &BootOptions::default())
}

/// [`boot`] with other options.
pub fn boot_with(
    image: &Path,
    initrd: &Path,
    timeout: Duration,
    options: &BootOptions<'_>,
) -> Result<String> {
    let cmdline = format!("console=ttyS0 panic=-1 quiet {}", options.append);
    let mut child = Command::new("qemu-system-x86_64")
        .args(options.qemu)
        .arg("-m")
        .arg(options.memory_mb.to_string())
        .arg("-smp")
        .arg(format!(
            "{},maxcpus={}",
            options.cpus,
            options.max_cpus.max(options.cpus)
        ))
        .args([
            "-nographic",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(image)
        .arg("-initrd")
        .arg(initrd)
        .arg("-append")
        .arg(cmdline.trim_end())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start qemu-system-x86_64: run scripts/install-deps.sh")?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let out = reader.join().unwrap_or_default();
            bail!(
                "the VM did not power off within {timeout:?}; console so far:\n{}",
                String::from_utf8_lossy(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        bail!("qemu exited with {status}: {err}\nconsole:\n{out}");
    }
    Ok(out)
}

/// The kernel log lines the guest dumped between its markers.
pub fn kernel_log(console: &str) -> Vec<&str> {
    console
        .lines()
        .skip_while(|l| !l.contains("VM: dmesg begin"))
        .skip(1)
        .take_while(|l| !l.contains("VM: dmesg end"))
        .collect()
}

/// Console lines that match a [`BAD_PATTERNS`] entry.
pub fn bad_lines(console: &str) -> Vec<&str> {
    console
        .lines()
        .filter(|l| BAD_PATTERNS.iter().any(|p| l.contains(p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_markers_and_bad_patterns() {
        let console =
            "boot\nVM: dmesg begin\n[1.0] wasm: x\n[2.0] WARNING: at foo\nVM: dmesg end\nbye";
        assert_eq!(
            kernel_log(console),
            vec!["[1.0] wasm: x", "[2.0] WARNING: at foo"]
        );
        assert_eq!(bad_lines(console), vec!["[2.0] WARNING: at foo"]);
    }
}
