//! Which guests wasm.ko accepts: the `require_signature` and `trusted_keys` module
//! parameters, fixed at module init.

use core::cell::UnsafeCell;
use wasm_engine::signature::TrustedKeys;
use wasm_engine::Error;

/// The signature policy.
#[derive(Clone, Copy, Default)]
struct Policy {
    require: bool,
    keys: TrustedKeys,
}

/// The policy of this module.
///
/// # Invariants
///
/// Written only by [`set`], from module init before `/dev/wasm` exists (no reader can run
/// then); only read afterwards.
struct Global(UnsafeCell<Policy>);

// SAFETY: by the invariant, the value is never written while it can be read concurrently.
unsafe impl Sync for Global {}

static POLICY: Global = Global(UnsafeCell::new(Policy {
    require: false,
    keys: TrustedKeys::EMPTY,
}));

fn policy() -> Policy {
    // SAFETY: only read after module init (the invariant of `Global`).
    unsafe { *POLICY.0.get() }
}

/// Sets the policy from the module parameters. Module init only, before `/dev/wasm` exists.
///
/// # Errors
///
/// What is wrong with `trusted_keys`.
pub fn set(require: bool, trusted_keys: &str) -> Result<(usize, bool), alloc::string::String> {
    let keys = TrustedKeys::parse(trusted_keys)?;
    // SAFETY: module init, before `/dev/wasm` exists: nothing reads the policy yet.
    unsafe { *POLICY.0.get() = Policy { require, keys } };
    Ok((keys.len(), require))
}

/// Checks a load's signature: one given must be valid and from a trusted key; none is
/// accepted unless signatures are required. Returns the signer's key id.
///
/// # Errors
///
/// [`Error::Signature`] (`EKEYREJECTED`).
pub fn check(wasm: &[u8], signature: Option<&[u8]>) -> Result<Option<[u8; 8]>, Error> {
    let p = policy();
    match signature {
        Some(sig) => p.keys.verify(wasm, sig).map(Some),
        None if p.require => Err(Error::Signature(alloc::string::String::from(
            "wasm.ko requires signed guests (require_signature=1): sign it with wasmctl sign",
        ))),
        None => Ok(None),
    }
}
