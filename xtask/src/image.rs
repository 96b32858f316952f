//! The container image for fleets: an OCI image layout (and its `oci-archive` tarball)
//! written without a container engine: one reproducible layer with a static `wasmctl`,
//! busybox, the guests, a default configuration and `deploy/image/wasm-node-agent`.
//! Checked by unpacking it with `umoci` and running the unpacked `wasmctl`; the Kubernetes
//! manifests of `deploy/kubernetes` are checked against Kubernetes' schemas.

use crate::build::run;
use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image's name and tag.
pub const NAME: &str = "wasm-kernel-module";
const TAG: &str = env!("CARGO_PKG_VERSION");

/// Busybox applets the agent uses.
const APPLETS: [&str; 6] = ["sh", "sleep", "find", "head", "unxz", "insmod"];

/// The Kubernetes version whose schemas the manifests are checked against.
const KUBERNETES: &str = "1.32.0";

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stores `data` as a blob of the layout in `dir` and returns its descriptor fields.
fn blob(dir: &Path, media_type: &str, data: &[u8]) -> Result<serde_json::Value> {
    let digest = sha256(data);
    let path = dir.join("blobs/sha256").join(&digest);
    std::fs::create_dir_all(path.parent().context("blob path")?)?;
    std::fs::write(&path, data)?;
    Ok(json!({ "mediaType": media_type, "digest": format!("sha256:{digest}"), "size": data.len() }))
}

fn put(stage: &Path, path: &str, data: &[u8], mode: u32) -> Result<()> {
    let dest = stage.join(path);
    std::fs::create_dir_all(dest.parent().context("path")?)?;
    std::fs::write(&dest, data)?;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Builds the image into `target/oci/wasm-kernel-module` (a layout, tag = the version) and
/// `target/oci/wasm-kernel-module-VERSION.tar` (the same as an `oci-archive`), checks both
/// and the manifests, and returns the layout's path.
pub fn build(root: &Path) -> Result<PathBuf> {
    let wasmctl = crate::build::static_wasmctl(root)?;
    run(Command::new("make")
        .arg("-C")
        .arg(root)
        .args(["--no-print-directory", "build-hello-world-rust-wasm"]))?;
    let out = root.join("target/oci");
    let stage = out.join("rootfs");
    let layout = out.join(NAME);
    for dir in [&stage, &layout] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
    }
    std::fs::create_dir_all(&layout)?;

    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    put(&stage, "usr/bin/wasmctl", &read(&wasmctl)?, 0o755)?;
    put(
        &stage,
        "usr/bin/wasm-node-agent",
        &read(&root.join("deploy/image/wasm-node-agent"))?,
        0o755,
    )?;
    put(
        &stage,
        "bin/busybox",
        &read(Path::new("/bin/busybox")).context("install busybox-static")?,
        0o755,
    )?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", stage.join("bin").join(applet))?;
    }
    put(
        &stage,
        "usr/share/wasm-kernel-module/guests/hello_world_rust.wasm",
        &read(&root.join("samples/target/wasm32-unknown-unknown/release/hello_world_rust.wasm"))?,
        0o644,
    )?;
    put(
        &stage,
        "etc/wasm.d/hello-world.toml",
        b"path = \"/usr/share/wasm-kernel-module/guests/hello_world_rust.wasm\"\nname = \"hello-world\"\n",
        0o644,
    )?;
    std::fs::create_dir_all(stage.join("host/dev"))?;
    std::fs::create_dir_all(stage.join("lib/modules"))?;

    // One layer, reproducible: sorted names, root-owned, time zero.
    let tar = out.join("layer.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mtime=@0",
            "--format=posix",
            "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
            "-cf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&stage)
        .arg("."))?;
    let layer_tar = std::fs::read(&tar)?;
    let gz = Command::new("gzip")
        .args(["-9n", "-c"])
        .arg(&tar)
        .output()
        .context("cannot run gzip")?;
    if !gz.status.success() {
        bail!("gzip failed");
    }
    std::fs::remove_file(&tar)?;
    let layer = blob(
        &layout,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &gz.stdout,
    )?;
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/usr/bin/wasm-node-agent"],
            "Env": ["PATH=/usr/bin:/bin:/usr/sbin:/sbin"],
            "Labels": {
                "org.opencontainers.image.title": NAME,
                "org.opencontainers.image.version": TAG,
                "org.opencontainers.image.licenses": "GPL-2.0-only",
                "org.opencontainers.image.description":
                    "wasmctl and the node agent that keeps wasm.ko's modules loaded",
            },
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha256(&layer_tar))] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": "cargo xtask image" }],
    });
    let config = blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config)?,
    )?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut manifest = blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest)?,
    )?;
    manifest["annotations"] = json!({ "org.opencontainers.image.ref.name": TAG });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest],
    });
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let archive = out.join(format!("{NAME}-{TAG}.tar"));
    run(Command::new("tar")
        .args(["--sort=name", "--owner=0", "--group=0", "--mtime=@0", "-cf"])
        .arg(&archive)
        .arg("-C")
        .arg(&layout)
        .arg("."))?;
    std::fs::remove_dir_all(&stage)?;
    check(&out, &layout)?;
    check_manifests(root)?;
    Ok(layout)
}

/// Unpacks the image with umoci (which verifies every digest and size) and runs the unpacked
/// `wasmctl`, and checks the entrypoint in the runtime configuration umoci derives.
fn check(out: &Path, layout: &Path) -> Result<()> {
    let bundle = out.join("bundle");
    if bundle.exists() {
        std::fs::remove_dir_all(&bundle)?;
    }
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{TAG}", layout.display()))
        .arg(&bundle))?;
    let version = Command::new(bundle.join("rootfs/usr/bin/wasmctl"))
        .arg("--version")
        .output()?;
    let version = String::from_utf8_lossy(&version.stdout);
    if version.trim() != format!("wasmctl {TAG}") {
        bail!("the image's wasmctl says '{}'", version.trim());
    }
    let runtime = std::fs::read_to_string(bundle.join("config.json"))?;
    if !runtime.contains("/usr/bin/wasm-node-agent") {
        bail!("the image's entrypoint is not the node agent");
    }
    std::fs::remove_dir_all(&bundle)?;
    Ok(())
}

/// Validates `deploy/kubernetes/*.yaml` against the schemas of [`KUBERNETES`].
fn check_manifests(root: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("deploy/kubernetes"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    run(Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--kubernetes-version",
            KUBERNETES,
        ])
        .args(&files))
    .context("the Kubernetes manifests do not validate (pip install kubernetes-validate)")
}
