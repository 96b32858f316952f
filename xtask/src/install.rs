//! The end-to-end install test: a Debian 12 root file system (mmdebstrap, cached) booted
//! under QEMU with Debian's 6.1 kernel and systemd; the project's packages installed with
//! apt; DKMS building wasm.ko inside the VM; systemd loading it and the configured hello
//! world at boot; then a kernel upgrade to 6.12 (installed from its packages, booted with
//! kexec), with DKMS rebuilding and everything loaded again.

use crate::build::run;
use crate::kernel::Kernel;
use crate::vm::{self, BootOptions};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The scenario the VM runs at each boot, from the data disk (so that the cached root file
/// system does not depend on it).
const SCENARIO: &str = include_str!("../guest/install.sh");

/// The unit that runs [`SCENARIO`] once the system is up and the boot-time loading is done.
const UNIT: &str = "[Unit]
Description=wasm-kernel-module install test
After=wasm-apply.service systemd-modules-load.service
RequiresMountsFor=/mnt/test

[Service]
Type=oneshot
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
ExecStart=/bin/sh /mnt/test/install.sh

[Install]
WantedBy=multi-user.target
";

/// The root file system's packages besides the variant's.
const PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "kmod",
    "dkms",
    "initramfs-tools",
    "kexec-tools",
    "dwarves",
    "xz-utils",
    "zstd",
    "openssl",
    "procps",
];

/// A boot runs at most this long (apt and a DKMS build under software emulation).
const BOOT_TIMEOUT: Duration = Duration::from_secs(1500);

/// Where mmdebstrap takes its packages from: the machine's own Debian sources (bookworm, its
/// updates and security, where the current kernels are), never a host written here.
fn sources() -> Result<PathBuf> {
    [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .context("no Debian sources in /etc/apt")
}

/// The debs `apt-get download` fetches for `packages`, into `dir` (once).
fn download(dir: &Path, packages: &[String]) -> Result<Vec<PathBuf>> {
    let stamp = dir.join("downloaded");
    if !stamp.exists() {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        run(Command::new("apt-get")
            .arg("download")
            .args(packages)
            .current_dir(dir))?;
        std::fs::write(&stamp, packages.join("\n"))?;
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    debs.sort();
    Ok(debs)
}

/// The packages of `kernel` to install in the VM: its image and its headers.
fn upgrade_packages(kernel: &Kernel) -> Result<Vec<String>> {
    let mut pkgs = crate::kernel::header_packages(&format!("linux-headers-{}", kernel.release))?;
    pkgs.push(format!("linux-image-{}-unsigned", kernel.release));
    Ok(pkgs)
}

/// Builds (once) the root file system with `base` installed, and an ext4 image of it.
fn root_image(dir: &Path, base: &Kernel) -> Result<(PathBuf, PathBuf)> {
    let rootfs = dir.join("rootfs");
    let image = dir.join("rootfs.img");
    let stamp = dir.join("rootfs.stamp");
    let want = format!(
        "{}\n{}\n{UNIT}\nserial-getty masked",
        base.release,
        PACKAGES.join(",")
    );
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
        eprintln!("xtask: building the install test's Debian root file system");
        if rootfs.exists() {
            std::fs::remove_dir_all(&rootfs)?;
        }
        let include = format!(
            "{},linux-image-{r},linux-headers-{r}",
            PACKAGES.join(","),
            r = base.release
        );
        run(Command::new("mmdebstrap")
            .args(["--variant=apt", "--mode=root", "--format=directory"])
            .arg(format!("--include={include}"))
            .args(["bookworm"])
            .arg(&rootfs)
            .arg(sources()?))?;
        let put = |path: &str, text: &str, mode: u32| -> Result<()> {
            use std::os::unix::fs::PermissionsExt;
            let p = rootfs.join(path);
            std::fs::create_dir_all(p.parent().context("path")?)?;
            std::fs::write(&p, text)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
            Ok(())
        };
        put("etc/hostname", "wasm-install-test\n", 0o644)?;
        put(
            "etc/fstab",
            "/dev/vda / ext4 defaults 0 1\n/dev/vdb /mnt/test ext4 defaults 0 2\n",
            0o644,
        )?;
        put("etc/systemd/system/wasm-install-test.service", UNIT, 0o644)?;
        // The console is the test's: a getty on it would hang the test's output up.
        let getty = rootfs.join("etc/systemd/system/serial-getty@ttyS0.service");
        if !getty.exists() {
            std::os::unix::fs::symlink("/dev/null", &getty)?;
        }
        let wants = rootfs.join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants)?;
        let link = wants.join("wasm-install-test.service");
        if !link.exists() {
            std::os::unix::fs::symlink("../wasm-install-test.service", &link)?;
        }
        std::fs::create_dir_all(rootfs.join("mnt/test"))?;
        if image.exists() {
            std::fs::remove_file(&image)?;
        }
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "root", "-d"])
            .arg(&rootfs)
            .arg(&image)
            .arg("6G"))?;
        std::fs::write(&stamp, &want)?;
    }
    Ok((rootfs, image))
}

/// Runs the install test: `base` is the 6.1 kernel first booted, `upgrade` the 6.12 kernel
/// installed in the VM and booted next. `debs` are the project's packages.
pub fn run_test(root: &Path, base: &Kernel, upgrade: &Kernel, debs: &[&Path]) -> Result<String> {
    let dir = root.join("target/vm/install");
    std::fs::create_dir_all(&dir)?;
    let (rootfs, image) = root_image(&dir, base)?;
    let kernel_debs = download(
        &dir.join(format!("kernel-{}", upgrade.release)),
        &upgrade_packages(upgrade)?,
    )?;

    // The data disk: the packages to install, the kernel to upgrade to, the test's state.
    let data = dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    for sub in ["debs", "kernel", "state"] {
        std::fs::create_dir_all(data.join(sub))?;
    }
    for deb in debs {
        std::fs::copy(deb, data.join("debs").join(deb.file_name().context("deb")?))?;
    }
    for deb in &kernel_debs {
        std::fs::copy(
            deb,
            data.join("kernel").join(deb.file_name().context("deb")?),
        )?;
    }
    std::fs::write(data.join("state/upgrade"), &upgrade.release)?;
    std::fs::write(data.join("install.sh"), SCENARIO)?;
    let data_img = dir.join("data.img");
    let _ = std::fs::remove_file(&data_img);
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "test", "-d"])
        .arg(&data)
        .arg(&data_img)
        .arg("1G"))?;
    let disk = dir.join("disk.qcow2");
    let _ = std::fs::remove_file(&disk);
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&image)
        .arg(&disk))?;

    let drives = [
        format!("file={},format=qcow2,if=virtio", disk.display()),
        format!("file={},format=raw,if=virtio", data_img.display()),
    ];
    let qemu = ["-drive", &drives[0], "-drive", &drives[1], "-cpu", "max"];
    let vmlinuz = rootfs.join(format!("boot/vmlinuz-{}", base.release));
    let initrd = rootfs.join(format!("boot/initrd.img-{}", base.release));
    let mut console = String::new();
    // Boot 1 installs and reboots; boot 2 checks, upgrades and kexecs into the new kernel,
    // which checks again and powers off.
    for boot in 1..=2 {
        eprintln!("xtask: install test: boot {boot} ({})", base.release);
        let out = vm::boot_with(
            &vmlinuz,
            &initrd,
            BOOT_TIMEOUT,
            &BootOptions {
                qemu: &qemu,
                append: "root=/dev/vda rw systemd.show_status=false",
                memory_mb: 2048,
                ..BootOptions::default()
            },
        )?;
        console.push_str(&out);
        if out.lines().any(|l| l.starts_with("VMTEST SUMMARY ")) {
            break;
        }
    }
    std::fs::write(dir.join("console.log"), &console)?;
    if !console.lines().any(|l| l.starts_with("VMTEST")) {
        bail!("the install test printed nothing; console in target/vm/install/console.log");
    }
    Ok(console)
}
