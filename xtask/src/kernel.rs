//! Debian kernel packages: resolve the newest of a series, download and unpack them.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A kernel series the VM tests cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Series {
    /// Debian 12's own kernel (bookworm).
    #[value(name = "6.1")]
    V6_1,
    /// The 6.12 series built for Debian 12 (bookworm-backports, bookworm-security).
    #[value(name = "6.12")]
    V6_12,
}

impl Series {
    /// All series, oldest first.
    pub const ALL: [Series; 2] = [Series::V6_1, Series::V6_12];

    /// Short name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Series::V6_1 => "6.1",
            Series::V6_12 => "6.12",
        }
    }

    /// `apt-cache search` pattern of the unsigned image packages of this series.
    fn image_pattern(self) -> &'static str {
        match self {
            Series::V6_1 => r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$",
            Series::V6_12 => r"^linux-image-6\.12\.[0-9]+\+deb12(\.[0-9]+)?-amd64-unsigned$",
        }
    }
}

/// An unpacked kernel: its image and a Kbuild tree for out-of-tree modules.
pub struct Kernel {
    /// Release string, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// `vmlinuz`.
    pub image: PathBuf,
    /// The headers directory to pass as `KDIR`.
    pub kdir: PathBuf,
    /// `resolve_btfids` for headers that lack it (6.1), as `make module` takes it.
    pub resolve_btfids: Option<PathBuf>,
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Orders package names by the numbers in them (6.12.117 after 6.12.95).
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The newest image package of `series` that apt knows.
fn newest_image(series: Series) -> Result<String> {
    let list =
        output(Command::new("apt-cache").args(["search", "--names-only", series.image_pattern()]))?;
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .max_by_key(|n| version_key(n))
        .with_context(|| {
            format!("no {} kernel image found by apt: run scripts/install-deps.sh (it adds bookworm-backports and runs apt-get update)", series.name())
        })
}

/// The header packages (`linux-headers-*`, `linux-kbuild-*`) that `headers` needs.
pub fn header_packages(headers: &str) -> Result<Vec<String>> {
    let deps = output(Command::new("apt-cache").args(["depends", headers]))?;
    let mut pkgs = vec![headers.to_string()];
    for line in deps.lines() {
        let line = line.trim();
        if let Some(dep) = line.strip_prefix("Depends: ") {
            if dep.starts_with("linux-headers-") || dep.starts_with("linux-kbuild-") {
                pkgs.push(dep.to_string());
            }
        }
    }
    Ok(pkgs)
}

/// Resolves, downloads and unpacks the newest kernel of `series` under `cache`. Unpacked
/// kernels are reused.
pub fn fetch(series: Series, cache: &Path) -> Result<Kernel> {
    let image_pkg = newest_image(series)?;
    let release = image_pkg
        .strip_prefix("linux-image-")
        .and_then(|r| r.strip_suffix("-unsigned"))
        .context("unexpected image package name")?
        .to_string();
    let dir = cache.join(&release);
    let root = dir.join("root");
    let stamp = dir.join("unpacked");
    if !stamp.exists() {
        eprintln!("xtask: fetching kernel {release}");
        let debs = dir.join("debs");
        std::fs::create_dir_all(&debs)?;
        let mut pkgs = header_packages(&format!("linux-headers-{release}"))?;
        pkgs.push(image_pkg.clone());
        output(
            Command::new("apt-get")
                .arg("download")
                .args(&pkgs)
                .current_dir(&debs),
        )?;
        for deb in std::fs::read_dir(&debs)? {
            let deb = deb?.path();
            output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        }
        std::fs::remove_dir_all(&debs)?;
        // The headers' Makefile includes the common tree by absolute path: point it here.
        let kdir = root.join(format!("usr/src/linux-headers-{release}"));
        let makefile = kdir.join("Makefile");
        let text = std::fs::read_to_string(&makefile)?;
        let fixed = text.replace(
            "include /usr/src/",
            &format!("include {}/usr/src/", root.display()),
        );
        std::fs::write(&makefile, fixed)?;
        std::fs::write(&stamp, &image_pkg)?;
    }
    let kernel = Kernel {
        image: root.join(format!("boot/vmlinuz-{release}")),
        kdir: root.join(format!("usr/src/linux-headers-{release}")),
        release,
        resolve_btfids: None,
    };
    if !kernel.image.exists() || !kernel.kdir.join("Makefile").exists() {
        bail!(
            "kernel {} is incomplete under {}: remove it and retry",
            kernel.release,
            dir.display()
        );
    }
    Ok(kernel)
}

/// Parts of the 6.1 kernel source tree (from Debian's `linux-source-6.1`) that the build
/// needs: checkpatch, and what builds `resolve_btfids` (6.1's headers package lacks it, and
/// without it a module's kfuncs are invisible).
const SOURCE_MEMBERS: [&str; 10] = [
    "scripts/checkpatch.pl",
    "scripts/spelling.txt",
    "scripts/const_structs.checkpatch",
    "scripts/bpf_doc.py",
    "tools/bpf",
    "tools/lib",
    "tools/include",
    "tools/build",
    "tools/scripts",
    "tools/arch/x86",
];

/// Unpacks [`SOURCE_MEMBERS`] of Debian's `linux-source-6.1` under `cache` (once) and returns
/// the tree's root.
pub fn source_tree(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("linux-source-6.1-v2");
    let tree = dir.join("linux-source-6.1");
    let stamp = dir.join("unpacked");
    if stamp.exists() {
        return Ok(tree);
    }
    eprintln!("xtask: fetching linux-source-6.1 for the kernel's scripts");
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs)?;
    output(
        Command::new("apt-get")
            .args(["download", "linux-source-6.1"])
            .current_dir(&debs),
    )?;
    let deb = std::fs::read_dir(&debs)?
        .next()
        .context("apt-get download left no package")??
        .path();
    output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&debs))?;
    let members: Vec<String> = SOURCE_MEMBERS
        .iter()
        .map(|m| format!("linux-source-6.1/{m}"))
        .collect();
    output(
        Command::new("tar")
            .arg("-xJf")
            .arg(debs.join("usr/src/linux-source-6.1.tar.xz"))
            .arg("-C")
            .arg(&dir)
            .args(&members),
    )?;
    std::fs::remove_dir_all(&debs)?;
    std::fs::write(&stamp, "")?;
    Ok(tree)
}

/// The debug kernel's configuration fragment (on top of `allnoconfig`).
const DEBUG_CONFIG: &str = include_str!("../debug-kernel/debug.config");

/// Builds (once) a debug kernel from Debian's full `linux-source-6.1`: `allnoconfig` plus
/// [`DEBUG_CONFIG`] (KASAN, lockdep, atomic-sleep checks, kmemleak, failslab). Its source
/// tree is also the `KDIR` modules build against.
pub fn debug_kernel(cache: &Path) -> Result<Kernel> {
    let dir = cache.join("debug-6.1");
    let tree = dir.join("linux-source-6.1");
    let config_stamp = dir.join("config-fragment");
    if !tree.join("Makefile").exists() {
        eprintln!("xtask: fetching linux-source-6.1 for the debug kernel");
        let debs = dir.join("debs");
        std::fs::create_dir_all(&debs)?;
        output(
            Command::new("apt-get")
                .args(["download", "linux-source-6.1"])
                .current_dir(&debs),
        )?;
        let deb = std::fs::read_dir(&debs)?
            .next()
            .context("apt-get download left no package")??
            .path();
        output(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&debs))?;
        output(
            Command::new("tar")
                .arg("-xJf")
                .arg(debs.join("usr/src/linux-source-6.1.tar.xz"))
                .arg("-C")
                .arg(&dir),
        )?;
        std::fs::remove_dir_all(&debs)?;
    }
    let make = |args: &[&str]| -> Result<()> {
        crate::build::run(Command::new("make").arg("-C").arg(&tree).args(args))
    };
    if std::fs::read_to_string(&config_stamp).ok().as_deref() != Some(DEBUG_CONFIG) {
        let fragment = dir.join("debug.config");
        std::fs::write(&fragment, DEBUG_CONFIG)?;
        make(&["-s", "allnoconfig"])?;
        crate::build::run(
            Command::new(tree.join("scripts/kconfig/merge_config.sh"))
                .args(["-m", ".config"])
                .arg(&fragment)
                .current_dir(&tree),
        )?;
        make(&["-s", "olddefconfig"])?;
        let config = std::fs::read_to_string(tree.join(".config"))?;
        for line in DEBUG_CONFIG.lines().filter(|l| l.ends_with("=y")) {
            if !config.lines().any(|c| c == line) {
                bail!("the debug kernel's configuration lacks {line} (a missing dependency?)");
            }
        }
        std::fs::write(&config_stamp, DEBUG_CONFIG)?;
    }
    let jobs = format!(
        "-j{}",
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
    make(&[&jobs, "bzImage", "modules_prepare", "modules"])?;
    let release = output(
        Command::new("make")
            .arg("-C")
            .arg(&tree)
            .args(["-s", "kernelrelease"]),
    )?
    .trim()
    .to_string();
    Ok(Kernel {
        release,
        image: tree.join("arch/x86/boot/bzImage"),
        kdir: tree,
        resolve_btfids: None,
    })
}

/// Builds (once) `resolve_btfids` from the source tree: 6.1's headers lack it, and
/// `scripts/module-btf.sh` needs it to give wasm.ko its module BTF, as on a host.
pub fn resolve_btfids(source: &Path) -> Result<PathBuf> {
    let tool = source.join("tools/bpf/resolve_btfids/resolve_btfids");
    if !tool.exists() {
        output(
            Command::new("make")
                .arg("-C")
                .arg(source.join("tools/bpf/resolve_btfids"))
                .arg("-s"),
        )?;
    }
    Ok(tool)
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn versions_order_numerically() {
        let mut names = [
            "linux-image-6.12.95+deb12-amd64",
            "linux-image-6.12.117+deb12-amd64",
            "linux-image-6.12.90+deb12.1-amd64",
        ];
        names.sort_by_key(|n| version_key(n));
        assert_eq!(names[2], "linux-image-6.12.117+deb12-amd64");
    }
}
