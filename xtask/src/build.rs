//! Builds the artefacts the VM needs: the Rust kernel library, `wasm.ko` per kernel, a static
//! `wasmctl` and the sample guests. Compilation itself is the top-level Makefile's job.

use crate::kernel::Kernel;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd`, streaming its output, and fails if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Paths of the built guests and client.
pub struct Userland {
    /// Statically linked `wasmctl`.
    pub wasmctl: PathBuf,
    /// Directory of the sample `.wasm` files.
    pub guests: PathBuf,
}

/// Builds the kernel-independent parts: the Rust kernel library, the guests, `wasmctl`.
pub fn userland(root: &Path) -> Result<Userland> {
    run(Command::new("make").arg("-C").arg(root).args([
        "--no-print-directory",
        "rust-kmod",
        "build-samples",
    ]))?;
    run(Command::new("cargo")
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "wasmctl",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .env("RUSTFLAGS", "-Ctarget-feature=+crt-static"))?;
    Ok(Userland {
        wasmctl: root.join("target/x86_64-unknown-linux-gnu/release/wasmctl"),
        guests: root.join("samples/target/wasm32-unknown-unknown/release"),
    })
}

/// Builds `wasm.ko` for `kernel` in its own directory (so kernels can build side by side).
pub fn module(root: &Path, kernel: &Kernel, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    for entry in std::fs::read_dir(root.join("kmod"))? {
        let src = entry?.path();
        let name = src.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let is_source = name == "Kbuild" || name.ends_with(".c") || name.ends_with(".h");
        let dst = out.join(name);
        // Copy only what changed, so Kbuild rebuilds only what it must.
        if is_source && std::fs::read(&src)? != std::fs::read(&dst).unwrap_or_default() {
            std::fs::copy(&src, &dst)?;
        }
    }
    run(Command::new("make")
        .arg("-C")
        .arg(root)
        .arg("--no-print-directory")
        .arg("module")
        .arg(format!("KDIR={}", kernel.kdir.display()))
        .arg(format!("KMOD_DIR={}", out.display())))?;
    Ok(out.join("wasm.ko"))
}
