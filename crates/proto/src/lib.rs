//! The `/dev/wasm` protocol: versioned, length-prefixed requests and responses.
//!
//! One `write(2)` carries one request frame; the response frame is then read with `read(2)`
//! from the same file descriptor. Every frame starts with a fixed 16-byte [`Header`] followed by
//! a [postcard](https://docs.rs/postcard) encoded payload ([`Request`] or [`Response`]).
//!
//! ```text
//! offset  size  field
//!      0     4  magic    "WASM" (0x4d534157 little endian)
//!      4     2  version  PROTOCOL_VERSION
//!      6     2  flags    0 (reserved)
//!      8     4  length   payload length in bytes
//!     12     4  reserved 0
//!     16     …  payload
//! ```
//!
//! The crate is `no_std` (with `alloc`) so the kernel module and the user-space client share
//! one definition of the wire format.
#![no_std]
#![deny(missing_docs)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u16 = 5;

/// Frame magic: the bytes `WASM`.
pub const MAGIC: u32 = u32::from_le_bytes(*b"WASM");

/// Size of the fixed frame header.
pub const HEADER_LEN: usize = 16;

/// Largest request frame the kernel accepts (header included).
pub const MAX_REQUEST_LEN: usize = 16 << 20;

/// Longest module or function name.
pub const MAX_NAME_LEN: usize = 64;

/// Most arguments or results in one call.
pub const MAX_VALUES: usize = 16;

/// Buckets of a latency histogram: bucket *i* counts calls that took from 2^*i* to
/// 2^(*i*+1) - 1 nanoseconds (bucket 0 also counts 0 and 1 ns, the last every longer call).
pub const LATENCY_BUCKETS: usize = 32;

/// Length of an ed25519 signature ([`Request::Load`]'s `signature`).
pub const SIGNATURE_LEN: usize = 64;

/// The fixed header in front of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Protocol version of the sender.
    pub version: u16,
    /// Payload length in bytes.
    pub len: u32,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than a header.
    Short,
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// The sender speaks another protocol version.
    Version(u16),
    /// The header's length does not match the frame's.
    Length,
    /// The frame exceeds [`MAX_REQUEST_LEN`].
    TooLarge,
    /// The payload is not a valid message.
    Payload,
    /// No memory for the encoded frame.
    NoMemory,
}

impl FrameError {
    /// The errno a kernel returns for this error.
    pub fn errno(self) -> i32 {
        match self {
            FrameError::TooLarge => errno::E2BIG,
            FrameError::Version(_) => errno::EPROTO,
            FrameError::NoMemory => errno::ENOMEM,
            _ => errno::EINVAL,
        }
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::Short => write!(f, "frame shorter than its {HEADER_LEN}-byte header"),
            FrameError::BadMagic => write!(f, "frame does not start with the WASM magic"),
            FrameError::Version(v) => write!(
                f,
                "protocol version {v} is not supported (this side speaks {PROTOCOL_VERSION})"
            ),
            FrameError::Length => write!(f, "frame length does not match its header"),
            FrameError::TooLarge => write!(f, "frame larger than {MAX_REQUEST_LEN} bytes"),
            FrameError::Payload => write!(f, "malformed payload"),
            FrameError::NoMemory => write!(f, "out of memory"),
        }
    }
}

impl Header {
    /// Encodes the header.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[8..12].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Decodes and checks a header (magic and version) from the start of `frame`.
    pub fn decode(frame: &[u8]) -> Result<Header, FrameError> {
        let h: &[u8; HEADER_LEN] = frame
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(FrameError::Short)?;
        if u32::from_le_bytes([h[0], h[1], h[2], h[3]]) != MAGIC {
            return Err(FrameError::BadMagic);
        }
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::Version(version));
        }
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        Ok(Header { version, len })
    }
}

/// Largest frame [`encode`] makes: its length field is 32 bits.
const MAX_FRAME_LEN: usize = HEADER_LEN + u32::MAX as usize;

/// Encodes `msg` as a complete frame (header and payload). Allocates only fallibly: out of
/// memory is [`FrameError::NoMemory`], never a panic.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    encode_into(msg, Vec::new())
}

/// [`encode`] into `out`, whose capacity is used first: a frame that fits allocates nothing.
pub fn encode_into<T: Serialize>(msg: &T, mut out: Vec<u8>) -> Result<Vec<u8>, FrameError> {
    out.clear();
    let mut capacity = out.capacity().max(256);
    let len = loop {
        out.try_reserve_exact(capacity - out.len())
            .map_err(|_| FrameError::NoMemory)?;
        out.resize(capacity, 0);
        match postcard::to_slice(msg, &mut out[HEADER_LEN..]) {
            Ok(payload) => break payload.len(),
            Err(postcard::Error::SerializeBufferFull) if capacity < MAX_FRAME_LEN => {
                capacity = capacity.saturating_mul(2).min(MAX_FRAME_LEN);
            }
            Err(postcard::Error::SerializeBufferFull) => return Err(FrameError::TooLarge),
            Err(_) => return Err(FrameError::Payload),
        }
    };
    out.truncate(HEADER_LEN + len);
    let len = u32::try_from(len).map_err(|_| FrameError::TooLarge)?;
    out[..HEADER_LEN].copy_from_slice(
        &Header {
            version: PROTOCOL_VERSION,
            len,
        }
        .encode(),
    );
    Ok(out)
}

/// Decodes a complete frame, borrowing strings and byte arrays from it.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a [u8]) -> Result<T, FrameError> {
    if frame.len() > MAX_REQUEST_LEN {
        return Err(FrameError::TooLarge);
    }
    let header = Header::decode(frame)?;
    let payload = &frame[HEADER_LEN..];
    if payload.len() != header.len as usize {
        return Err(FrameError::Length);
    }
    let (msg, rest) = postcard::take_from_bytes(payload).map_err(|_| FrameError::Payload)?;
    if !rest.is_empty() {
        return Err(FrameError::Payload);
    }
    Ok(msg)
}

/// A typed WebAssembly value. Floats travel as their IEEE-754 bits so they cross exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A 32-bit float, as bits.
    F32(u32),
    /// A 64-bit float, as bits.
    F64(u64),
}

/// A WebAssembly value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `v128`, `funcref` or `externref`: not callable through the protocol.
    Other,
}

impl Value {
    /// The value's type.
    pub fn ty(&self) -> ValType {
        match self {
            Value::I32(_) => ValType::I32,
            Value::I64(_) => ValType::I64,
            Value::F32(_) => ValType::F32,
            Value::F64(_) => ValType::F64,
        }
    }
}

impl core::fmt::Display for ValType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::Other => "other",
        })
    }
}

impl core::fmt::Display for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Value::I32(v) => write!(f, "{v}"),
            Value::I64(v) => write!(f, "{v}"),
            Value::F32(b) => write!(f, "{:?}", f32::from_bits(b)),
            Value::F64(b) => write!(f, "{:?}", f64::from_bits(b)),
        }
    }
}

/// Per-module limits chosen at load time; zero means "the kernel's default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel (roughly, executed instructions) allowed for one call from user space.
    pub fuel: u64,
    /// Fuel allowed for one call from an eBPF program (it runs in one piece).
    pub bpf_fuel: u64,
    /// Largest linear memory of one instance, in bytes.
    pub memory: u64,
    /// Instances to create: 0 for one per possible CPU (what eBPF callers want: no CPU ever
    /// waits for another), fewer to save memory for big guests called from user space (calls
    /// from CPU *n* then use instance *n* mod *count*).
    pub instances: u32,
}

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Asks for the kernel side's versions.
    Version,
    /// Compiles `wasm`, instantiates it once per possible CPU and runs its entrypoint on each.
    Load {
        /// Registry name, unique, 1 to [`MAX_NAME_LEN`] bytes of `[A-Za-z0-9_.-]`.
        name: &'a str,
        /// The module's binary.
        wasm: &'a [u8],
        /// Function called on every instance after instantiation; `None` means `main` if the
        /// module exports it. An empty string means "call nothing".
        entrypoint: Option<&'a str>,
        /// Limits; zero fields take the defaults.
        limits: Limits,
        /// WASI arguments after argv\[0\] (the module's name).
        args: Vec<&'a str>,
        /// WASI environment, `KEY=value` each.
        env: Vec<&'a str>,
        /// Replace the loaded module of this name atomically instead of failing with
        /// `EEXIST`: the new instances are made and initialised first, then published in one
        /// step; calls running on the old ones finish there. Every export of the old module
        /// must stay, with its signature (eBPF handles stay valid).
        replace: bool,
        /// Host function groups granted to the module (`debug`, `wasi:clocks`, ...); `None`
        /// grants the defaults. An import outside the grants fails the load.
        allow: Option<Vec<&'a str>>,
        /// A detached ed25519 signature of `wasm` ([`SIGNATURE_LEN`] bytes), checked against
        /// the keys wasm.ko trusts; required when it was loaded with `require_signature=1`.
        signature: Option<&'a [u8]>,
        /// File descriptors, in the sending process, of BPF maps for the module's `bpf` host
        /// functions: map *i* of the guest is `maps[i]`.
        maps: Vec<i32>,
    },
    /// Removes a module and frees its instances.
    Unload {
        /// The module's name.
        name: &'a str,
    },
    /// Lists the loaded modules.
    List,
    /// Calls an exported function of a module, on the calling CPU's instance when it is free.
    Call {
        /// The module's name.
        module: &'a str,
        /// The exported function's name.
        function: &'a str,
        /// Arguments, matching the function's parameter types.
        args: Vec<Value>,
    },
    /// Asks for the kernel module's counters.
    Stats,
}

/// A function's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuncSig {
    /// Exported or imported name (`module.name` for imports).
    pub name: String,
    /// Parameter types.
    pub params: Vec<ValType>,
    /// Result types.
    pub results: Vec<ValType>,
}

/// Counters of the calls of one kind (from user space or from eBPF) on one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStats {
    /// Calls made (for user calls, the entrypoint's included).
    pub calls: u64,
    /// Calls that ended in a trap, fuel exhaustion or interruption.
    pub traps: u64,
    /// Those of the traps that were fuel exhaustion.
    pub out_of_fuel: u64,
    /// Fuel consumed by all the calls.
    pub fuel_used: u64,
    /// Time spent in the calls, in nanoseconds.
    pub time_ns: u64,
    /// Latency histogram: log2 buckets of nanoseconds (see [`LATENCY_BUCKETS`]).
    pub latency: [u64; LATENCY_BUCKETS],
}

impl CallStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &CallStats) {
        self.calls += other.calls;
        self.traps += other.traps;
        self.out_of_fuel += other.out_of_fuel;
        self.fuel_used += other.fuel_used;
        self.time_ns += other.time_ns;
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
    }

    /// The latency below which `permille` thousandths of the calls ended, as the upper
    /// bound of its histogram bucket in nanoseconds; `None` without calls.
    pub fn quantile_ns(&self, permille: u64) -> Option<u64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (total.saturating_mul(permille.min(1000)))
            .div_ceil(1000)
            .max(1);
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_upper_ns(i));
            }
        }
        Some(bucket_upper_ns(LATENCY_BUCKETS - 1))
    }
}

/// The upper bound (exclusive) of latency bucket `i`, in nanoseconds.
pub fn bucket_upper_ns(i: usize) -> u64 {
    1u64 << (i + 1).min(63)
}

/// The latency bucket of a call that took `ns` nanoseconds.
pub fn bucket_of(ns: u64) -> usize {
    (63 - (ns | 1).leading_zeros() as usize).min(LATENCY_BUCKETS - 1)
}

/// Counters of one per-CPU instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// The CPU this instance belongs to.
    pub cpu: u32,
    /// Calls through `/dev/wasm` (and the entrypoint).
    pub user: CallStats,
    /// Calls from eBPF programs.
    pub bpf: CallStats,
    /// Current size of its linear memory in bytes.
    pub memory: u64,
}

impl InstanceInfo {
    /// Calls of both kinds.
    pub fn calls(&self) -> u64 {
        self.user.calls + self.bpf.calls
    }

    /// Traps of both kinds.
    pub fn traps(&self) -> u64 {
        self.user.traps + self.bpf.traps
    }

    /// Fuel used by calls of both kinds.
    pub fn fuel_used(&self) -> u64 {
        self.user.fuel_used + self.bpf.fuel_used
    }
}

/// How a module's code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    /// Interpreted by the engine (loaded through `/dev/wasm`).
    Interpreted,
    /// Compiled ahead of time into a kernel module of its own (`wasmctl compile`), which
    /// registered itself with wasm.ko.
    Native,
}

/// A BPF map given to a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapInfo {
    /// The kernel's map id (`bpftool map show id N`).
    pub id: u32,
    /// Its type: `hash`, `array`, `percpu_hash`, `percpu_array`, `lru_hash`, `lru_percpu_hash`.
    pub kind: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
}

/// A loaded module as `List` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// Registry name.
    pub name: String,
    /// How its code runs.
    pub tier: Tier,
    /// Size of the module's binary.
    pub wasm_size: u64,
    /// SHA-256 of the module's binary, for interpreted modules (a native module's unit is its
    /// `.ko`, which `modinfo` describes).
    pub digest: Option<[u8; 32]>,
    /// The entrypoint run at load, empty if none.
    pub entrypoint: String,
    /// The limits in force.
    pub limits: Limits,
    /// 1 when loaded, one more for each replace.
    pub version: u32,
    /// Host function groups granted at load.
    pub grants: Vec<String>,
    /// The trusted key that signed the binary (its first 8 bytes, hex), if signed.
    pub signer: Option<String>,
    /// The BPF maps it was given, by index.
    pub maps: Vec<MapInfo>,
    /// Exported functions.
    pub exports: Vec<FuncSig>,
    /// Imported functions.
    pub imports: Vec<FuncSig>,
    /// One entry per instance.
    pub instances: Vec<InstanceInfo>,
}

/// Stack use measured on one kind of request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackPeak {
    /// The request kind (`load`, `call`, ...).
    pub op: String,
    /// Deepest use of the task's kernel stack, in bytes from its top.
    pub task: u64,
    /// Deepest use of the dedicated stack the request's work ran on.
    pub work: u64,
}

/// Module-wide counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Modules loaded now.
    pub modules: u32,
    /// Number of instances per module (possible CPUs).
    pub cpus: u32,
    /// Live heap allocations made by the Rust code.
    pub live_allocations: u64,
    /// Bytes in those allocations.
    pub live_bytes: u64,
    /// Peak kernel stack use per request kind.
    pub stack: Vec<StackPeak>,
    /// Size of a kernel task stack.
    pub stack_size: u64,
    /// Linear memory all modules' instances hold.
    pub memory_used: u64,
    /// The most they may hold together (`insmod wasm.ko memory_cap_mb=N`).
    pub memory_cap: u64,
    /// Size of the dedicated stack each request's work runs on.
    pub work_stack_size: u64,
    /// Requests abandoned because memory ran out where the engine cannot report it.
    pub abandoned: u64,
    /// Allocations those requests gave back.
    pub abandoned_freed: u64,
}

/// Whether wasm.ko's kfuncs are registered, so that eBPF programs can call Wasm functions.
///
/// Without them `/dev/wasm` still works; only eBPF calls are unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kfuncs {
    /// Registered: eBPF programs can call Wasm functions.
    Registered,
    /// wasm.ko carries no BTF (it was built against kernel headers without `vmlinux`), so the
    /// kernel refused to register its kfuncs.
    MissingBtf,
    /// wasm.ko carries BTF but its kfunc set has no resolved BTF ids (`resolve_btfids` did not
    /// run at its build): the kfuncs would be invisible to the verifier.
    UnresolvedBtfIds,
    /// Registration failed with this errno.
    Failed(i32),
}

impl Kfuncs {
    /// Whether eBPF programs can call Wasm functions.
    pub fn available(self) -> bool {
        self == Kfuncs::Registered
    }
}

impl core::fmt::Display for Kfuncs {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const REBUILD: &str = "rebuild wasm.ko with the project's `make` (or its DKMS package), \
                               which adds BTF on every kernel";
        match self {
            Kfuncs::Registered => write!(f, "available (kfuncs registered)"),
            Kfuncs::MissingBtf => write!(
                f,
                "unavailable: wasm.ko has no BTF (built against headers without vmlinux); {REBUILD}"
            ),
            Kfuncs::UnresolvedBtfIds => write!(
                f,
                "unavailable: wasm.ko's kfunc BTF ids are unresolved (resolve_btfids did not \
                 run); {REBUILD}"
            ),
            Kfuncs::Failed(errno) => {
                write!(
                    f,
                    "unavailable: registering the kfuncs failed (errno {errno})"
                )
            }
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Version`].
    Version {
        /// Protocol version.
        protocol: u16,
        /// Version of the kernel module.
        module: String,
        /// Whether eBPF programs can call Wasm functions.
        kfuncs: Kfuncs,
    },
    /// The module was loaded.
    Loaded {
        /// Instances created.
        instances: u32,
        /// The entrypoint's result on the first instance: its `i32` result, or the code it
        /// passed to WASI `proc_exit`.
        entry_result: Option<i32>,
        /// The module's version: 1 for a new module, the replaced one's plus 1 for a replace.
        version: u32,
    },
    /// The module was unloaded.
    Unloaded,
    /// Answer to [`Request::List`].
    List(Vec<ModuleInfo>),
    /// The call's results.
    Called {
        /// Results, in order.
        results: Vec<Value>,
        /// Fuel the call consumed.
        fuel_used: u64,
        /// The CPU whose instance ran it.
        cpu: u32,
        /// The code passed to WASI `proc_exit`, if the guest exited (`results` is then empty).
        exit: Option<i32>,
    },
    /// Answer to [`Request::Stats`].
    Stats(Stats),
    /// The request failed and changed nothing.
    Error {
        /// A positive errno value (`ENOENT`, `EEXIST`, ...).
        errno: i32,
        /// What went wrong, for people.
        message: String,
    },
}

/// The errno values the protocol uses (Linux numbering, x86_64).
pub mod errno {
    /// No such module or function.
    pub const ENOENT: i32 = 2;
    /// Interrupted by a fatal signal.
    pub const EINTR: i32 = 4;
    /// Request larger than allowed.
    pub const E2BIG: i32 = 7;
    /// The module's binary is not valid WebAssembly.
    pub const ENOEXEC: i32 = 8;
    /// Out of memory, or a memory limit was hit.
    pub const ENOMEM: i32 = 12;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// The guest trapped.
    pub const EFAULT: i32 = 14;
    /// All instances are busy, or the session is in use.
    pub const EBUSY: i32 = 16;
    /// A module with that name exists.
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Response buffer missing.
    pub const ENODATA: i32 = 61;
    /// The call ran out of fuel.
    pub const ETIME: i32 = 62;
    /// Too many modules are loaded.
    pub const ENOSPC: i32 = 28;
    /// Not allowed in this context (a kfunc called from NMI).
    pub const EPERM: i32 = 1;
    /// An import could not be satisfied.
    pub const ENOLINK: i32 = 67;
    /// Protocol version mismatch.
    pub const EPROTO: i32 = 71;
    /// Not supported for this module (a replace of a native module).
    pub const EOPNOTSUPP: i32 = 95;
    /// The module's signature is missing, malformed or not from a trusted key.
    pub const EKEYREJECTED: i32 = 129;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn request_round_trip_borrows_payload() {
        let wasm = [0u8, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
        let req = Request::Load {
            name: "hello",
            wasm: &wasm,
            entrypoint: Some("main"),
            limits: Limits {
                fuel: 5,
                bpf_fuel: 6,
                memory: 65536,
                instances: 1,
            },
            args: vec!["-v", "x y"],
            env: vec!["A=1"],
            replace: true,
            allow: Some(vec!["debug", "wasi:clocks"]),
            signature: Some(&[7; SIGNATURE_LEN]),
            maps: vec![3, 4],
        };
        let frame = encode(&req).unwrap();
        assert_eq!(&frame[..4], b"WASM");
        let back: Request<'_> = decode(&frame).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn encode_into_uses_the_reserved_buffer_and_grows_past_it() {
        let resp = Response::Loaded {
            instances: 2,
            entry_result: Some(0),
            version: 1,
        };
        let out = Vec::with_capacity(512);
        let at = out.as_ptr();
        let frame = encode_into(&resp, out).unwrap();
        assert_eq!(frame.as_ptr(), at);
        assert_eq!(decode::<Response>(&frame).unwrap(), resp);
        let big = Response::Error {
            errno: 1,
            message: "x".repeat(5000),
        };
        let frame = encode_into(&big, Vec::with_capacity(16)).unwrap();
        assert_eq!(decode::<Response>(&frame).unwrap(), big);
    }

    #[test]
    fn response_round_trip_keeps_float_bits() {
        let nan = f64::from_bits(0x7ff8_0000_0000_0001);
        let resp = Response::Called {
            results: vec![Value::F64(nan.to_bits()), Value::I64(-1)],
            fuel_used: 9,
            cpu: 1,
            exit: None,
        };
        let frame = encode(&resp).unwrap();
        let back: Response = decode(&frame).unwrap();
        assert_eq!(back, resp);
    }

    #[test]
    fn latency_buckets_are_log2_and_quantiles_their_bounds() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(1), 0);
        assert_eq!(bucket_of(2), 1);
        assert_eq!(bucket_of(1023), 9);
        assert_eq!(bucket_of(1024), 10);
        assert_eq!(bucket_of(u64::MAX), LATENCY_BUCKETS - 1);
        let mut s = CallStats::default();
        assert_eq!(s.quantile_ns(500), None);
        s.latency[3] = 90;
        s.latency[10] = 10;
        assert_eq!(s.quantile_ns(500), Some(16));
        assert_eq!(s.quantile_ns(900), Some(16));
        assert_eq!(s.quantile_ns(990), Some(2048));
        let mut sum = s.clone();
        sum.add(&s);
        assert_eq!(sum.latency[3], 180);
    }

    #[test]
    fn bad_frames_are_rejected() {
        let frame = encode(&Request::List).unwrap();
        assert_eq!(decode::<Request<'_>>(&frame[..3]), Err(FrameError::Short));
        let mut bad = frame.clone();
        bad[0] = b'X';
        assert_eq!(decode::<Request<'_>>(&bad), Err(FrameError::BadMagic));
        let mut bad = frame.clone();
        bad[4] = 99;
        assert_eq!(decode::<Request<'_>>(&bad), Err(FrameError::Version(99)));
        let mut bad = frame.clone();
        bad.push(0);
        assert_eq!(decode::<Request<'_>>(&bad), Err(FrameError::Length));
        let mut bad = frame.clone();
        bad[HEADER_LEN] = 200;
        assert_eq!(decode::<Request<'_>>(&bad), Err(FrameError::Payload));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let frame = encode(&Request::Call {
            module: "m",
            function: "f",
            args: vec![Value::I32(1), Value::F32(2)],
        })
        .unwrap();
        for cut in 0..frame.len() {
            let mut short = frame[..cut].to_vec();
            if short.len() >= HEADER_LEN {
                let len = (short.len() - HEADER_LEN) as u32;
                short[8..12].copy_from_slice(&len.to_le_bytes());
            }
            assert!(decode::<Request<'_>>(&short).is_err(), "cut at {cut}");
        }
    }
}
