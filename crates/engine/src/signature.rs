//! Signed guests: a detached ed25519 signature of a binary, checked against trusted keys.
//!
//! What is signed is not the binary itself but [`CONTEXT`] followed by the binary's SHA-256,
//! so a signature made for a guest cannot be mistaken for a signature of anything else made
//! with the same key. `wasmctl sign` makes signatures with [`sign`]; wasm.ko checks them with
//! [`TrustedKeys::verify`] before it compiles anything.

use crate::Error;
use alloc::format;
use alloc::string::String;
use ed25519_compact::{KeyPair, PublicKey, Seed, Signature};
use sha2::Digest;
use wasm_proto::SIGNATURE_LEN;

/// The domain separation prefix of every signed message.
pub const CONTEXT: &[u8; 32] = b"wasm-kernel-module guest v1\0\0\0\0\0";

/// Most keys wasm.ko trusts at once.
pub const MAX_KEYS: usize = 8;

/// Length of an ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Length of a secret key's seed.
pub const SEED_LEN: usize = 32;

/// The SHA-256 of a binary.
pub fn digest(wasm: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(wasm).into()
}

/// What is signed for a binary whose SHA-256 is `digest`.
fn message(digest: &[u8; 32]) -> [u8; 64] {
    let mut m = [0u8; 64];
    m[..32].copy_from_slice(CONTEXT);
    m[32..].copy_from_slice(digest);
    m
}

/// The public key of the secret key `seed`.
pub fn public_key(seed: &[u8; SEED_LEN]) -> [u8; PUBLIC_KEY_LEN] {
    *KeyPair::from_seed(Seed::new(*seed)).pk
}

/// Signs `wasm` with the secret key `seed` (deterministic signatures).
pub fn sign(seed: &[u8; SEED_LEN], wasm: &[u8]) -> [u8; SIGNATURE_LEN] {
    let pair = KeyPair::from_seed(Seed::new(*seed));
    *pair.sk.sign(message(&digest(wasm)), None)
}

/// Parses `bytes` hex digits into `out`.
fn parse_hex(s: &str, out: &mut [u8]) -> Option<()> {
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(s.chunks(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *o = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(())
}

/// Parses a key (public key or seed) written as 64 hex digits.
pub fn parse_key(s: &str) -> Option<[u8; 32]> {
    let mut k = [0u8; 32];
    parse_hex(s.trim(), &mut k).map(|()| k)
}

/// The public keys whose signatures a loader accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustedKeys {
    keys: [[u8; PUBLIC_KEY_LEN]; MAX_KEYS],
    len: usize,
}

impl TrustedKeys {
    /// No key.
    pub const EMPTY: TrustedKeys = TrustedKeys {
        keys: [[0; PUBLIC_KEY_LEN]; MAX_KEYS],
        len: 0,
    };

    /// Parses a comma-separated list of public keys, 64 hex digits each (the `trusted_keys`
    /// module parameter, what `wasmctl keygen` writes to the `.pub` file).
    ///
    /// # Errors
    ///
    /// A message naming the key that is not 64 hex digits, or saying there are too many.
    pub fn parse(list: &str) -> Result<TrustedKeys, String> {
        let mut t = TrustedKeys::default();
        for (i, k) in list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
        {
            if t.len == MAX_KEYS {
                return Err(format!("more than {MAX_KEYS} trusted keys"));
            }
            let key = parse_key(k)
                .filter(|k| PublicKey::from_slice(k).is_ok())
                .ok_or_else(|| format!("trusted key {} is not 64 hex digits", i + 1))?;
            t.keys[t.len] = key;
            t.len += 1;
        }
        Ok(t)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks `signature` of `wasm`; returns the key id (first 8 bytes) of the key that made it.
    ///
    /// # Errors
    ///
    /// [`Error::Signature`] if it is malformed or no trusted key made it.
    pub fn verify(&self, wasm: &[u8], signature: &[u8]) -> Result<[u8; 8], Error> {
        let sig = Signature::from_slice(signature).map_err(|_| {
            Error::Signature(format!(
                "a signature is {SIGNATURE_LEN} bytes (ed25519), this one has {}",
                signature.len()
            ))
        })?;
        if self.is_empty() {
            return Err(Error::Signature(String::from(
                "no key is trusted (load wasm.ko with trusted_keys=...)",
            )));
        }
        let m = message(&digest(wasm));
        self.keys[..self.len]
            .iter()
            .find(|k| PublicKey::new(**k).verify(m, &sig).is_ok())
            .map(|k| {
                let mut id = [0u8; 8];
                id.copy_from_slice(&k[..8]);
                id
            })
            .ok_or_else(|| {
                Error::Signature(String::from(
                    "the binary was not signed by a trusted key, or was changed after signing",
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn hex(b: &[u8]) -> String {
        crate::hex(b)
    }

    #[test]
    fn signatures_verify_only_for_their_binary_and_a_trusted_key() {
        let (seed, other) = ([1u8; 32], [2u8; 32]);
        let wasm = b"\0asm\x01\0\0\0".as_slice();
        let sig = sign(&seed, wasm);
        let keys = TrustedKeys::parse(&alloc::format!(
            "{}, {}",
            hex(&public_key(&other)),
            hex(&public_key(&seed))
        ))
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.verify(wasm, &sig).unwrap(), public_key(&seed)[..8]);
        let mut tampered = wasm.to_vec();
        tampered.push(0);
        let e = keys.verify(&tampered, &sig).unwrap_err();
        assert_eq!(e.errno(), wasm_proto::errno::EKEYREJECTED);
        let only_other = TrustedKeys::parse(&hex(&public_key(&other))).unwrap();
        assert!(only_other.verify(wasm, &sig).is_err());
        assert!(keys
            .verify(wasm, &sig[..10])
            .unwrap_err()
            .to_string()
            .contains("64 bytes"));
        assert!(TrustedKeys::default().verify(wasm, &sig).is_err());
        assert!(TrustedKeys::parse("abc").unwrap_err().contains("key 1"));
        assert!(TrustedKeys::parse("").unwrap().is_empty());
    }
}
