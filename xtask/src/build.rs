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
    /// `wasm-bpf`, dynamically linked (its libraries go into the initramfs).
    pub bpf_loader: PathBuf,
    /// Directory of the compiled eBPF samples.
    pub bpf_objects: PathBuf,
    /// Directory of the guests in other languages, with `expected.txt`.
    pub languages: PathBuf,
}

/// Builds the kernel-independent parts: the Rust kernel library, the guests, `wasmctl`.
pub fn userland(root: &Path) -> Result<Userland> {
    run(Command::new("make").arg("-C").arg(root).args([
        "--no-print-directory",
        "rust-kmod",
        "build-samples",
        "build-bench-guest",
        "build-bpf",
        "build-languages",
    ]))?;
    Ok(Userland {
        wasmctl: static_wasmctl(root)?,
        guests: root.join("samples/target/wasm32-unknown-unknown/release"),
        bpf_loader: root.join("target/release/wasm-bpf"),
        bpf_objects: root.join("target/bpf"),
        languages: root.join("target/languages"),
    })
}

/// Builds `wasmctl` statically linked (for the VM's initramfs and the container image).
pub fn static_wasmctl(root: &Path) -> Result<PathBuf> {
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
    Ok(root.join("target/x86_64-unknown-linux-gnu/release/wasmctl"))
}

/// Builds `wasm-frame-fuzz` (fuzz/vm), statically linked, for the hardening suite.
pub fn frame_fuzzer(root: &Path) -> Result<PathBuf> {
    let triple = "x86_64-unknown-linux-gnu";
    run(Command::new("cargo")
        .current_dir(root.join("fuzz"))
        .args([
            "build",
            "--release",
            "-p",
            "wasm-frame-fuzz",
            "--target",
            triple,
        ])
        .env("RUSTFLAGS", "-Ctarget-feature=+crt-static"))?;
    Ok(root
        .join("fuzz/target")
        .join(triple)
        .join("release/wasm-frame-fuzz"))
}

/// Builds `wasm-bench` (bench/runner), statically linked so it runs in the VM too.
pub fn bench_runner(root: &Path) -> Result<PathBuf> {
    run(Command::new("make")
        .arg("-C")
        .arg(root)
        .args(["--no-print-directory", "build-bench"]))?;
    Ok(root.join("bench/runner/target/x86_64-unknown-linux-gnu/release/wasm-bench"))
}

/// The C shim's files: `kmod/Kbuild`, `kmod/*.c`, `kmod/*.h` (and `kmod/*.awk` with
/// `build_files`, the Kbuild helpers).
pub fn shim_sources(root: &Path, build_files: bool) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("kmod"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "Kbuild"
            || name.ends_with(".c")
            || name.ends_with(".h")
            || (build_files && name.ends_with(".awk"))
        {
            files.push(path);
        }
    }
    Ok(files)
}

/// Builds `wasm.ko` for `kernel` in its own directory (so kernels can build side by side).
pub fn module(root: &Path, kernel: &Kernel, out: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    for src in shim_sources(root, true)? {
        let dst = out.join(src.file_name().context("source name")?);
        // Copy only what changed, so Kbuild rebuilds only what it must.
        if std::fs::read(&src)? != std::fs::read(&dst).unwrap_or_default() {
            std::fs::copy(&src, &dst)?;
        }
    }
    // As on a host: module BTF from the image when the headers lack vmlinux (6.1).
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(root)
        .arg("--no-print-directory")
        .arg("module")
        .arg(format!("KDIR={}", kernel.kdir.display()))
        .arg(format!("KMOD_DIR={}", out.display()))
        .arg(format!("VMLINUZ={}", kernel.image.display()));
    if let Some(tool) = &kernel.resolve_btfids {
        make.arg(format!("RESOLVE_BTFIDS={}", tool.display()));
    }
    run(&mut make)?;
    let ko = out.join("wasm.ko");
    check_kfunc_btf(&ko).with_context(|| format!("{} for {}", ko.display(), kernel.release))?;
    Ok(ko)
}

/// The guests the VM tests and the benchmark also run as native modules: `(guest, relative
/// to the project root, kernel module name)`; the registry name is the module name with `-`
/// for `_`.
pub const NATIVE_GUESTS: &[(&str, &str)] = &[
    (
        "samples/target/wasm32-unknown-unknown/release/hello_world_rust.wasm",
        "hello_native",
    ),
    (
        "samples/target/wasm32-unknown-unknown/release/probe.wasm",
        "probe_native",
    ),
    (
        "samples/target/wasm32-unknown-unknown/release/probe.wasm",
        "forever_native",
    ),
    (
        "samples/target/wasm32-unknown-unknown/release/bounds.wasm",
        "bounds_native",
    ),
    (crate::bench::GUEST, "bench_native"),
    // WASI programs: C (floats), Rust's std, Zig (which ends in proc_exit and imports
    // functions outside the subset).
    ("target/languages/c-primes.wasm", "c_primes_native"),
    ("target/languages/rust-primes.wasm", "rust_primes_native"),
    ("target/languages/zig-hello.wasm", "zig_hello_native"),
];

/// Compiles the [`NATIVE_GUESTS`] into native modules for `kernel` with `wasmctl compile`,
/// against the `wasm.ko` built in `kmod` (its `Module.symvers`), into `out`.
pub fn native_modules(
    root: &Path,
    userland: &Userland,
    kernel: &Kernel,
    kmod: &Path,
    out: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let (key, cert) = signing_key(root)?;
    let mut built = Vec::new();
    for (guest, module) in NATIVE_GUESTS {
        let ko = out.join(format!("{module}.ko"));
        let mut compile = Command::new(&userland.wasmctl);
        compile
            .arg("compile")
            .arg(root.join(guest))
            .arg("-o")
            .arg(&ko)
            .arg("--name")
            .arg(module.replace('_', "-"))
            .arg("--kdir")
            .arg(&kernel.kdir)
            .arg("--symvers")
            .arg(kmod.join("Module.symvers"))
            .arg("--build-dir")
            .arg(out.join(format!("{module}.build")));
        // One module goes through the kernel's module signing, as on a Secure Boot host
        // (where the kernel has it: the debug kernel is built without module signing).
        if *module == "hello_native" && kernel.kdir.join("scripts/sign-file").exists() {
            compile
                .arg("--sign-key")
                .arg(&key)
                .arg("--sign-cert")
                .arg(&cert);
        }
        run(&mut compile)?;
        built.push(ko);
    }
    built.push(abi_mismatch(
        kernel,
        kmod,
        &out.join("hello_native.build"),
        &out.join("abi_native.build"),
    )?);
    Ok(built)
}

/// `abi_native.ko`: the native hello world rebuilt from its generated sources (in `hello`)
/// with an ABI version one above wasm.ko's, for the VM check that wasm.ko refuses it.
fn abi_mismatch(kernel: &Kernel, kmod: &Path, hello: &Path, dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir.join("include"))?;
    for entry in std::fs::read_dir(hello)? {
        let path = entry?.path();
        let name = path.file_name().context("file name")?;
        let source = ["c", "h"]
            .iter()
            .any(|e| path.extension() == Some(e.as_ref()));
        if source || name == "Kbuild" {
            std::fs::copy(&path, dir.join(name))?;
        }
    }
    for entry in std::fs::read_dir(hello.join("include"))? {
        let path = entry?.path();
        std::fs::copy(
            &path,
            dir.join("include")
                .join(path.file_name().context("file name")?),
        )?;
    }
    let edit = |file: &str, from: &str, to: &str| -> Result<()> {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)?;
        if !text.contains(from) {
            bail!("{} has no `{from}`", path.display());
        }
        std::fs::write(&path, text.replace(from, to))?;
        Ok(())
    };
    edit("Kbuild", "hello_native", "abi_native")?;
    edit(
        "wasm_native_code.c",
        ".abi = WASM_NATIVE_ABI,",
        ".abi = WASM_NATIVE_ABI + 1,",
    )?;
    edit("wasm_native_code.c", "\"hello-native\"", "\"abi-native\"")?;
    run(Command::new("make")
        .arg("-C")
        .arg(&kernel.kdir)
        .arg(format!("M={}", std::fs::canonicalize(dir)?.display()))
        .arg(format!(
            "KBUILD_EXTRA_SYMBOLS={}",
            std::fs::canonicalize(kmod.join("Module.symvers"))?.display()
        ))
        .arg("modules"))?;
    let ko = dir.join("abi_native.ko");
    let out = dir
        .parent()
        .context("build directory")?
        .join("abi_native.ko");
    std::fs::copy(&ko, &out)?;
    Ok(out)
}

/// A throwaway key and certificate for signing modules in the tests (made once, under
/// `target/vm/signing`).
fn signing_key(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = root.join("target/vm/signing");
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    if !key.exists() || !cert.exists() {
        std::fs::create_dir_all(&dir)?;
        run(Command::new("openssl")
            .args([
                "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            ])
            .args(["-subj", "/CN=wasm-kernel-module test signing key/"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert))?;
    }
    Ok((key, cert))
}

/// Copies of `wasm.ko` as builds without module BTF would make them, for the VM scenarios
/// that check how wasm.ko reports eBPF calls unavailable: `wasm-nobtf.ko` (no `.BTF`, as
/// Kbuild leaves it without vmlinux) and `wasm-unresolved.ko` (BTF but an empty kfunc set,
/// as without resolve_btfids); and `wasm.ko.xz`, compressed as DKMS installs it on 6.12.
pub fn kfunc_variants(ko: &Path) -> Result<Vec<PathBuf>> {
    let dir = ko.parent().context("module path")?;
    let (no_btf, unresolved) = (dir.join("wasm-nobtf.ko"), dir.join("wasm-unresolved.ko"));
    run(Command::new("objcopy")
        .arg("--remove-section=.BTF")
        .arg(ko)
        .arg(&no_btf))?;
    let ids = dir.join("wasm.btf_ids.empty");
    run(Command::new("objcopy")
        .args(["-O", "binary", "--only-section=.BTF_ids"])
        .arg(ko)
        .arg(&ids))?;
    let mut data = std::fs::read(&ids)?;
    data.get_mut(..4).context(".BTF_ids is empty")?.fill(0);
    std::fs::write(&ids, data)?;
    run(Command::new("objcopy")
        .arg(format!("--update-section=.BTF_ids={}", ids.display()))
        .arg(ko)
        .arg(&unresolved))?;
    std::fs::remove_file(&ids)?;
    // As DKMS installs it on kernels whose modules are xz-compressed (6.12).
    let xz = dir.join("wasm.ko.xz");
    let packed = Command::new("xz")
        .args(["-c", "--check=crc32"])
        .arg(ko)
        .output()
        .context("cannot run xz")?;
    if !packed.status.success() {
        bail!("xz failed");
    }
    std::fs::write(&xz, packed.stdout)?;
    Ok(vec![no_btf, unresolved, xz])
}

/// Number of kfuncs `wasm_kfuncs.c` registers on every kernel (6.12 has one more).
const KFUNCS: u32 = 3;

/// Fails unless the module carries BTF and its kfunc set has resolved BTF ids: without them
/// `register_btf_kfunc_id_set()` succeeds but no program can see the kfuncs.
fn check_kfunc_btf(ko: &Path) -> Result<()> {
    let ids = ko.with_extension("btf_ids");
    let sections = Command::new("readelf").arg("-S").arg(ko).output()?;
    let sections = String::from_utf8_lossy(&sections.stdout);
    if !sections.contains(" .BTF ") {
        bail!("no .BTF section: kfuncs would be invisible (is vmlinux in the headers tree?)");
    }
    run(Command::new("objcopy")
        .args(["-O", "binary", "--only-section=.BTF_ids"])
        .arg(ko)
        .arg(&ids))?;
    let data = std::fs::read(&ids)?;
    std::fs::remove_file(&ids)?;
    let word = |i: usize| {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    // A BTF set8: count, flags, then (id, flags) pairs.
    let count = word(0).context(".BTF_ids is empty")?;
    if count < KFUNCS {
        bail!(".BTF_ids holds {count} kfuncs, expected at least {KFUNCS}");
    }
    for i in 0..count as usize {
        if word(2 + 2 * i).unwrap_or(0) == 0 {
            bail!("kfunc {i} has no resolved BTF id: resolve_btfids did not run");
        }
    }
    Ok(())
}
