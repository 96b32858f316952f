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
    /// `wasm.ko`.
    pub module: PathBuf,
    /// Static `wasmctl`.
    pub wasmctl: PathBuf,
    /// `.wasm` files to put under `/guests`.
    pub guests: Vec<PathBuf>,
    /// The scenario script, run by `/init` as `/scenario.sh`.
    pub scenario: &'static str,
}

const INIT: &str = include_str!("../guest/init.sh");

/// Writes the initramfs for `payload` to `out`.
pub fn initramfs(payload: &Payload, out: &Path) -> Result<()> {
    let busybox = std::fs::read("/bin/busybox")
        .context("cannot read /bin/busybox: install busybox-static")?;
    let module = std::fs::read(&payload.module)
        .with_context(|| format!("cannot read {}", payload.module.display()))?;
    let wasmctl = std::fs::read(&payload.wasmctl)
        .with_context(|| format!("cannot read {}", payload.wasmctl.display()))?;
    let mut guests = Vec::new();
    for g in &payload.guests {
        let name = format!(
            "guests/{}",
            g.file_name()
                .and_then(|n| n.to_str())
                .context("guest name")?
        );
        guests.push((
            name,
            std::fs::read(g).with_context(|| format!("cannot read {}", g.display()))?,
        ));
    }
    let mut entries = vec![
        Entry::Dir("bin"),
        Entry::Dir("dev"),
        Entry::Dir("proc"),
        Entry::Dir("sys"),
        Entry::Dir("tmp"),
        Entry::Dir("lib"),
        Entry::Dir("guests"),
        Entry::File("bin/busybox", &busybox, 0o755),
        Entry::Symlink("bin/sh", "busybox"),
        Entry::File("init", INIT.as_bytes(), 0o755),
        Entry::File("scenario.sh", payload.scenario.as_bytes(), 0o755),
        Entry::File("lib/wasm.ko", &module, 0o644),
        Entry::File("bin/wasmctl", &wasmctl, 0o755),
    ];
    entries.extend(guests.iter().map(|(n, d)| Entry::File(n, d, 0o644)));
    std::fs::write(out, cpio::archive(&entries))?;
    Ok(())
}

/// Boots `image` with `initrd` and returns everything the serial console printed.
/// Fails if QEMU does not power off within `timeout`.
pub fn boot(image: &Path, initrd: &Path, timeout: Duration) -> Result<String> {
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-m",
            "512",
            "-smp",
            "2",
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
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
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
