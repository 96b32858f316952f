//! `wasmctl keygen` and `wasmctl sign`: ed25519 keys and detached guest signatures.
//!
//! A secret key file holds the key's 32-byte seed as 64 hex digits (mode 0600); its public
//! key, the same way, goes to `KEY.pub`: the line to give wasm.ko as `trusted_keys=`. A
//! signature is the 64 raw bytes `wasmctl load` sends along, read from `FILE.wasm.sig` by
//! default.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use wasm_engine::signature::{self, SEED_LEN};
use wasm_proto::SIGNATURE_LEN;

/// Where a module's signature is looked for: `FILE.sig` (`guest.wasm.sig`).
pub fn default_path(wasm: &Path) -> PathBuf {
    let mut p = wasm.as_os_str().to_owned();
    p.push(".sig");
    PathBuf::from(p)
}

/// The signature to send with `wasm_file`: `explicit` (which must exist), else the default
/// file if it exists.
pub fn read(wasm_file: &Path, explicit: Option<&Path>) -> Result<Option<Vec<u8>>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = default_path(wasm_file);
            if !p.exists() {
                return Ok(None);
            }
            p
        }
    };
    let sig = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if sig.len() != SIGNATURE_LEN {
        bail!(
            "{} is not a signature: {} bytes, a signature has {SIGNATURE_LEN} (wasmctl sign)",
            path.display(),
            sig.len()
        );
    }
    Ok(Some(sig))
}

/// Creates a key pair: the secret seed in `key` (mode 0600, never overwritten) and the public
/// key in `key.pub`. Returns the public key in hex.
pub fn keygen(key: &Path) -> Result<String> {
    let mut seed = [0u8; SEED_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .context("cannot read /dev/urandom")?;
    let public = crate::output::hex(&signature::public_key(&seed));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key)
        .with_context(|| format!("cannot create {} (it must not exist)", key.display()))?;
    std::io::Write::write_all(
        &mut f,
        format!("{}\n", crate::output::hex(&seed)).as_bytes(),
    )
    .with_context(|| format!("cannot write {}", key.display()))?;
    let pub_path = default_pub(key);
    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("cannot write {}", pub_path.display()))?;
    Ok(public)
}

/// `KEY.pub`.
fn default_pub(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Signs `wasm` with the secret key file `key`; returns the signature.
pub fn sign(key: &Path, wasm: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
    let text = std::fs::read_to_string(key)
        .with_context(|| format!("cannot read the key {}", key.display()))?;
    let seed = signature::parse_key(&text).with_context(|| {
        format!(
            "{} is not a secret key (64 hex digits, as wasmctl keygen writes)",
            key.display()
        )
    })?;
    Ok(signature::sign(&seed, wasm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_then_sign_verifies_with_the_public_key() {
        let dir = std::env::temp_dir().join(format!("wasmctl-sign-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("guests.key");
        let public = keygen(&key).unwrap();
        assert!(
            keygen(&key).is_err(),
            "an existing key is never overwritten"
        );
        let on_disk = std::fs::read_to_string(dir.join("guests.key.pub")).unwrap();
        assert_eq!(on_disk.trim(), public);
        let wasm = b"\0asm\x01\0\0\0";
        let sig = sign(&key, wasm).unwrap();
        let keys = signature::TrustedKeys::parse(&public).unwrap();
        assert!(keys.verify(wasm, &sig).is_ok());
        let file = dir.join("m.wasm");
        assert_eq!(read(&file, None).unwrap(), None);
        std::fs::write(default_path(&file), sig).unwrap();
        assert_eq!(read(&file, None).unwrap().as_deref(), Some(&sig[..]));
        std::fs::write(default_path(&file), b"short").unwrap();
        assert!(read(&file, None).is_err());
    }
}
