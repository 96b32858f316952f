//! The engine's error type.

use alloc::string::String;
use core::fmt;
use wasm_proto::errno;

/// Why a request failed. Every variant maps to an errno and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No module of that name is loaded.
    NoModule(String),
    /// The module exports no function of that name.
    NoFunction(String),
    /// A module with that name is already loaded.
    Exists(String),
    /// The name is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    BadName(String),
    /// The binary is not valid WebAssembly.
    Invalid(String),
    /// The module imports something the host does not provide.
    Link(String),
    /// Arguments do not match the function's signature.
    Arguments(String),
    /// The guest trapped.
    Trap(String),
    /// The call used up its fuel budget.
    OutOfFuel(u64),
    /// The host asked the call to stop (fatal signal).
    Interrupted,
    /// Every instance of the module is running a call.
    Busy,
    /// A memory or table limit was hit, or an allocation failed.
    Memory(String),
    /// As many modules as allowed are loaded.
    Full(usize),
    /// The host could not allocate memory.
    OutOfMemory,
    /// The module imports a host function of a group its load did not grant.
    NotGranted {
        /// The import, `module.name`.
        import: String,
        /// The group it belongs to.
        group: &'static str,
    },
    /// A replace would remove or change an export of the module it replaces.
    Replace(String),
    /// Not supported for this module.
    Unsupported(String),
    /// The module's signature is missing, malformed or not from a trusted key.
    Signature(String),
}

impl Error {
    /// The positive errno reported to user space.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NoModule(_) | Error::NoFunction(_) => errno::ENOENT,
            Error::Exists(_) => errno::EEXIST,
            Error::BadName(_) | Error::Arguments(_) => errno::EINVAL,
            Error::Invalid(_) => errno::ENOEXEC,
            Error::Link(_) => errno::ENOLINK,
            Error::Trap(_) => errno::EFAULT,
            Error::OutOfFuel(_) => errno::ETIME,
            Error::Interrupted => errno::EINTR,
            Error::Busy => errno::EBUSY,
            Error::Memory(_) | Error::OutOfMemory => errno::ENOMEM,
            Error::Full(_) => errno::ENOSPC,
            Error::NotGranted { .. } => errno::EACCES,
            Error::Replace(_) => errno::EINVAL,
            Error::Unsupported(_) => errno::EOPNOTSUPP,
            Error::Signature(_) => errno::EKEYREJECTED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoModule(n) => write!(f, "no module named '{n}' is loaded"),
            Error::NoFunction(n) => write!(f, "the module exports no function '{n}'"),
            Error::Exists(n) => write!(f, "a module named '{n}' is already loaded"),
            Error::BadName(n) => write!(
                f,
                "invalid module name '{n}': use 1 to {} characters of A-Z a-z 0-9 _ . -",
                wasm_proto::MAX_NAME_LEN
            ),
            Error::Invalid(m) => write!(f, "invalid WebAssembly module: {m}"),
            Error::Link(m) => write!(f, "cannot link the module: {m}"),
            Error::Arguments(m) => write!(f, "bad arguments: {m}"),
            Error::Trap(m) => write!(f, "the guest trapped: {m}"),
            Error::OutOfFuel(n) => write!(f, "the call ran out of fuel (budget {n})"),
            Error::Interrupted => write!(f, "the call was interrupted by a fatal signal"),
            Error::Busy => write!(f, "every instance of the module is busy"),
            Error::Memory(m) => write!(f, "memory limit: {m}"),
            Error::Full(n) => write!(f, "{n} modules are loaded, the most allowed: unload one"),
            Error::OutOfMemory => write!(f, "out of memory"),
            Error::NotGranted { import, group } => write!(
                f,
                "the module imports {import}, which needs the capability '{group}': not granted \
                 (load it with --allow including {group})"
            ),
            Error::Replace(m) => write!(f, "cannot replace the module: {m}"),
            Error::Unsupported(m) => write!(f, "not supported: {m}"),
            Error::Signature(m) => write!(f, "signature rejected: {m}"),
        }
    }
}
