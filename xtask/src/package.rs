//! Debian packages: `wasm-kernel-module-dkms` (the shim's sources, the prebuilt Rust
//! staticlib, DKMS's configuration, `resolve_btfids` for kernels whose headers lack it) and
//! `wasmctl` (the CLI, `wasm-bpf`, the boot-time unit and the hello world guest).

use crate::build::{run, shim_sources};
use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's version, as the packages carry it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The Debian revision of the packages.
const REVISION: &str = "1";

/// Who built the packages: `DEBFULLNAME <DEBEMAIL>` as `dch` takes them, by default a
/// placeholder lintian reports as `bogus-mail-host` (accepted: set both to sign your build).
fn maintainer() -> String {
    let name = std::env::var("DEBFULLNAME")
        .unwrap_or_else(|_| "wasm-kernel-module developers".to_string());
    let mail =
        std::env::var("DEBEMAIL").unwrap_or_else(|_| "wasm-kernel-module@localhost".to_string());
    format!("{name} <{mail}>")
}

/// The two packages built.
pub struct Packages {
    /// `wasm-kernel-module-dkms_*.deb`.
    pub dkms: PathBuf,
    /// `wasmctl_*.deb`.
    pub wasmctl: PathBuf,
}

/// A package tree being assembled.
struct Tree {
    root: PathBuf,
}

impl Tree {
    fn new(dir: &Path) -> Result<Tree> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir.join("DEBIAN"))?;
        Ok(Tree {
            root: dir.to_path_buf(),
        })
    }

    /// Writes `data` at `path` (relative to the package's root) with `mode`.
    fn put(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        let dest = self.root.join(path);
        std::fs::create_dir_all(dest.parent().context("package path")?)?;
        std::fs::write(&dest, data).with_context(|| format!("cannot write {}", dest.display()))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    /// Installs an executable without its symbols and debug information.
    fn executable(&self, from: &Path, path: &str) -> Result<()> {
        let dest = self.root.join(path);
        std::fs::create_dir_all(dest.parent().context("package path")?)?;
        run(Command::new("objcopy")
            .arg("--strip-unneeded")
            .arg(from)
            .arg(&dest))?;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    fn copy(&self, from: &Path, path: &str, mode: u32) -> Result<()> {
        let data =
            std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
        self.put(path, &data, mode)
    }

    /// `copyright` and `changelog.Debian.gz` under `/usr/share/doc/NAME`.
    fn docs(&self, root: &Path, name: &str) -> Result<()> {
        let copyright =
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
             Upstream-Name: wasm-kernel-module\n\n\
             Files: *\nCopyright: 2026 wasm-kernel-module developers\nLicense: GPL-2.0-only\n \
             On Debian systems the full text of the GNU General Public License version 2\n \
             is in /usr/share/common-licenses/GPL-2.\n";
        self.put(
            &format!("usr/share/doc/{name}/copyright"),
            copyright.as_bytes(),
            0o644,
        )?;
        let changelog = format!(
            "{name} ({VERSION}-{REVISION}) unstable; urgency=medium\n\n  \
             * Built from the wasm-kernel-module repository (see its git log).\n\n \
             -- {}  {}\n",
            maintainer(),
            changelog_date(root)?
        );
        let gz = Command::new("gzip")
            .args(["-9n", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot run gzip")
            .and_then(|mut child| {
                child
                    .stdin
                    .take()
                    .context("gzip stdin")?
                    .write_all(changelog.as_bytes())?;
                Ok(child.wait_with_output()?)
            })?;
        self.put(
            &format!("usr/share/doc/{name}/changelog.Debian.gz"),
            &gz.stdout,
            0o644,
        )
    }

    /// Writes `DEBIAN/control` (with the installed size) and builds the `.deb` into `out`.
    fn build(&self, control: &str, out: &Path) -> Result<PathBuf> {
        let size = Command::new("du")
            .args(["-sk", "--exclude=DEBIAN"])
            .arg(&self.root)
            .output()?;
        let size = String::from_utf8_lossy(&size.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .to_string();
        let control = format!("{control}Installed-Size: {size}\n");
        self.put("DEBIAN/control", control.as_bytes(), 0o644)?;
        let name = control
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .context("control without Package")?;
        let deb = out.join(format!("{name}_{VERSION}-{REVISION}_amd64.deb"));
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&self.root)
            .arg(&deb))?;
        Ok(deb)
    }
}

/// The date of the last commit, in the changelog's format (reproducible builds).
fn changelog_date(root: &Path) -> Result<String> {
    let out = Command::new("git")
        .args(["log", "-1", "--format=%cD"])
        .current_dir(root)
        .output()?;
    let date = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(if date.is_empty() {
        "Thu, 01 Jan 1970 00:00:00 +0000".to_string()
    } else {
        date
    })
}

fn control(package: &str, section: &str, depends: &str, description: &str) -> String {
    format!(
        "Package: {package}\nVersion: {VERSION}-{REVISION}\nArchitecture: amd64\n\
         Maintainer: {}\nSection: {section}\nPriority: optional\n\
         Depends: {depends}\nDescription: {description}\n",
        maintainer()
    )
}

const DKMS_POSTINST: &str = "#!/bin/sh
set -e
# Adds, builds and installs wasm.ko for the running kernel and the newest one with headers,
# as dh_dkms does; DKMS's kernel hooks rebuild it for kernels installed later.
if [ \"$1\" = configure ]; then
\t/usr/lib/dkms/common.postinst wasm-kernel-module @VERSION@ /usr/share/wasm-kernel-module-dkms \"\" \"$2\"
fi
";

const DKMS_PRERM: &str = "#!/bin/sh
set -e
if [ \"$1\" = remove ] || [ \"$1\" = upgrade ] || [ \"$1\" = deconfigure ]; then
\tdkms remove -m wasm-kernel-module -v @VERSION@ --all >/dev/null 2>&1 || true
fi
";

const WASMCTL_POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ]; then
\tdeb-systemd-helper unmask wasm-apply.service >/dev/null || true
\tdeb-systemd-helper enable wasm-apply.service >/dev/null || true
\tif [ -d /run/systemd/system ]; then
\t\tsystemctl --system daemon-reload >/dev/null || true
\tfi
fi
";

const WASMCTL_POSTRM: &str = "#!/bin/sh
set -e
if [ \"$1\" = purge ]; then
\tdeb-systemd-helper purge wasm-apply.service >/dev/null || true
fi
if [ -d /run/systemd/system ]; then
\tsystemctl --system daemon-reload >/dev/null || true
fi
";

/// An example configuration, installed under the docs (`/etc/wasm.d` starts empty).
const HELLO_CONFIG: &str =
    "# Copy to /etc/wasm.d/ to load the hello world at boot (wasm-apply.service).
path = \"/usr/share/wasm-kernel-module/guests/hello_world_rust.wasm\"
name = \"hello-world\"
";

/// Builds both packages into `target/debian`. `resolve_btfids` is the tool built from
/// Debian's 6.1 source (for 6.1 hosts, whose headers lack it).
pub fn build(root: &Path, resolve_btfids: &Path) -> Result<Packages> {
    run(Command::new("make").arg("-C").arg(root).args([
        "--no-print-directory",
        "rust-kmod",
        "build-hello-world-rust-wasm",
    ]))?;
    run(Command::new("cargo").current_dir(root).args([
        "build",
        "--release",
        "-p",
        "wasmctl",
        "-p",
        "wasm-bpf",
    ]))?;
    let out = root.join("target/debian");
    std::fs::create_dir_all(&out)?;

    let dkms = Tree::new(&out.join("wasm-kernel-module-dkms"))?;
    let src = format!("usr/src/wasm-kernel-module-{VERSION}");
    let conf = std::fs::read_to_string(root.join("packaging/dkms/dkms.conf"))?;
    dkms.put(
        &format!("{src}/dkms.conf"),
        conf.replace("@VERSION@", VERSION).as_bytes(),
        0o644,
    )?;
    dkms.copy(
        &root.join("packaging/dkms/Makefile"),
        &format!("{src}/Makefile"),
        0o644,
    )?;
    for file in shim_sources(root, true)? {
        let name = file.file_name().and_then(|n| n.to_str()).context("name")?;
        dkms.copy(&file, &format!("{src}/kmod/{name}"), 0o644)?;
    }
    dkms.copy(
        &root.join("kmod/rust/target/x86_64-unknown-none/release/libwasm_kmod.a"),
        &format!("{src}/lib/libwasm_kmod.a"),
        0o644,
    )?;
    dkms.copy(
        &root.join("scripts/module-btf.sh"),
        &format!("{src}/scripts/module-btf.sh"),
        0o755,
    )?;
    dkms.executable(resolve_btfids, "usr/lib/wasm-kernel-module/resolve_btfids")?;
    dkms.copy(
        &root.join("packaging/systemd/wasm-modules-load.conf"),
        "usr/lib/modules-load.d/wasm.conf",
        0o644,
    )?;
    dkms.docs(root, "wasm-kernel-module-dkms")?;
    dkms.put(
        "DEBIAN/postinst",
        DKMS_POSTINST.replace("@VERSION@", VERSION).as_bytes(),
        0o755,
    )?;
    dkms.put(
        "DEBIAN/prerm",
        DKMS_PRERM.replace("@VERSION@", VERSION).as_bytes(),
        0o755,
    )?;
    let dkms_deb = dkms.build(
        &control(
            "wasm-kernel-module-dkms",
            "kernel",
            "dkms (>= 3), make, gcc, binutils, dwarves, xz-utils, zstd, libc6, libelf1, zlib1g",
            "WebAssembly runtime in the Linux kernel, callable from eBPF (DKMS)\n \
             wasm.ko runs WebAssembly modules in kernel space, one instance per CPU with a\n \
             fuel budget on every call, and lets eBPF programs call their exports as\n \
             kfuncs. This package builds it with DKMS for every installed kernel; its Rust\n \
             half ships prebuilt, so no Rust toolchain is needed.",
        ),
        &out,
    )?;

    let cli = Tree::new(&out.join("wasmctl"))?;
    cli.executable(&root.join("target/release/wasmctl"), "usr/bin/wasmctl")?;
    cli.executable(&root.join("target/release/wasm-bpf"), "usr/bin/wasm-bpf")?;
    cli.copy(
        &root.join("packaging/systemd/wasm-apply.service"),
        "lib/systemd/system/wasm-apply.service",
        0o644,
    )?;
    cli.copy(
        &root.join("samples/target/wasm32-unknown-unknown/release/hello_world_rust.wasm"),
        "usr/share/wasm-kernel-module/guests/hello_world_rust.wasm",
        0o644,
    )?;
    cli.copy(
        &root.join("include/wasm_bpf.h"),
        "usr/include/wasm_bpf.h",
        0o644,
    )?;
    cli.put(
        "usr/share/doc/wasmctl/examples/hello-world.toml",
        HELLO_CONFIG.as_bytes(),
        0o644,
    )?;
    cli.copy(
        &root.join("README.md"),
        "usr/share/doc/wasmctl/README.md",
        0o644,
    )?;
    std::fs::create_dir_all(cli.root.join("etc/wasm.d"))?;
    cli.docs(root, "wasmctl")?;
    cli.put("DEBIAN/postinst", WASMCTL_POSTINST.as_bytes(), 0o755)?;
    cli.put("DEBIAN/postrm", WASMCTL_POSTRM.as_bytes(), 0o755)?;
    let cli_deb = cli.build(
        &control(
            "wasmctl",
            "admin",
            "libc6, libgcc-s1, libelf1, zlib1g, kmod",
            "control WebAssembly modules running in the kernel (wasm.ko)\n \
             wasmctl loads, calls, lists and unloads WebAssembly modules in wasm.ko through\n \
             /dev/wasm, applies the configuration in /etc/wasm.d at boot\n \
             (wasm-apply.service), and runs modules in user space on the same engine.\n \
             wasm-bpf loads and test-runs eBPF programs that call them.",
        ),
        &out,
    )?;
    Ok(Packages {
        dkms: dkms_deb,
        wasmctl: cli_deb,
    })
}

/// Runs lintian on `debs` (if installed) and returns its report.
pub fn lintian(debs: &[&Path]) -> Result<String> {
    let out = Command::new("lintian")
        .args(["--no-tag-display-limit", "--suppress-tags"])
        .arg(LINTIAN_ACCEPTED.join(","))
        .args(debs)
        .output()
        .context("cannot run lintian (apt-get install lintian)")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Tags accepted, each for a reason: the commands document themselves (`--help`) and in
/// README, not in manual pages; the default maintainer is a placeholder (see [`maintainer`]);
/// the packages are built from the repository, not uploaded to Debian.
const LINTIAN_ACCEPTED: [&str; 5] = [
    "no-manual-page",
    "bogus-mail-host",
    "bogus-mail-host-in-debian-changelog",
    "maintainer-script-calls-systemctl",
    "initial-upload-closes-no-bugs",
];
