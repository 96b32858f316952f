//! One open file of `/dev/wasm`: request handling and the pending response.

use crate::alloc_kernel::try_box;
use crate::bpf;
use crate::ffi::{self, NativeDesc, RegistryLock, UserPtr};
use crate::guard::{self, Failure};
use crate::host::{log_fmt, try_format, KernelHost};
use crate::maps::MapRefs;
use crate::module::Module;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use wasm_engine::{
    Error, FuncSig, Grants, LoadSpec, LoadedModule, MemoryBudget, Registry, Replaced, TryLock,
};
use wasm_proto::{
    errno, FrameError, Request, Response, StackPeak, Stats, ValType, MAX_REQUEST_LEN,
};

/// The loaded modules.
///
/// # Invariants
///
/// The registry is only touched while the shim's registry mutex is held ([`with_registry`]).
struct Global(UnsafeCell<Registry<Module>>);

// SAFETY: every access goes through `with_registry`, which holds the kernel mutex.
unsafe impl Sync for Global {}

static REGISTRY: Global = Global(UnsafeCell::new(Registry::new()));

fn with_registry<R>(f: impl FnOnce(&mut Registry<Module>) -> R) -> R {
    let _lock = RegistryLock::lock();
    // SAFETY: the mutex is held for the lifetime of this borrow (the invariant of `Global`).
    f(unsafe { &mut *REGISTRY.0.get() })
}

/// Sets the linear memory all modules may hold together.
pub fn set_memory_cap(bytes: u64) {
    with_registry(|r| r.budget().set_cap(bytes));
}

/// Frees every module (module exit). Returns how many there were.
pub fn unload_all() -> usize {
    with_registry(|r| {
        let n = r.len();
        bpf::unpublish_all();
        r.clear();
        n
    })
}

/// Bytes reserved for the response before a request runs: enough for every response of a
/// request that changes something (load, unload, call), so that answering cannot fail.
const RESPONSE_RESERVE: usize = 512;

/// Request kinds, for the stack statistics.
const OPS: [&str; 6] = ["version", "load", "unload", "list", "call", "stats"];
/// Deepest task stack use per request kind.
static TASK_PEAK: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];
/// Deepest dedicated (work) stack use per request kind.
static WORK_PEAK: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

fn op_index(req: &Request<'_>) -> usize {
    match req {
        Request::Version => 0,
        Request::Load { .. } => 1,
        Request::Unload { .. } => 2,
        Request::List => 3,
        Request::Call { .. } => 4,
        Request::Stats => 5,
    }
}

/// The response waiting to be read, and how much of it was read.
#[derive(Default)]
struct Pending {
    frame: Vec<u8>,
    read: usize,
}

/// An open `/dev/wasm` file. Requests on one file are serialised: a second concurrent
/// `read`/`write` on the same file gets `-EBUSY`. Different files never wait for each other.
pub struct Session {
    pending: TryLock<Pending>,
}

/// An error response; its message is allocated fallibly (empty when out of memory).
fn error_response(errno: i32, message: core::fmt::Arguments<'_>) -> Response {
    Response::Error {
        errno,
        message: try_format(message).unwrap_or_default(),
    }
}

impl Session {
    /// A new session, or `None` when out of memory.
    pub fn new_boxed() -> Option<Box<Session>> {
        try_box(Session {
            pending: TryLock::new(Pending::default()),
        })
    }

    /// Gives the session to the shim.
    pub fn into_raw(self: Box<Self>) -> *mut c_void {
        Box::into_raw(self).cast()
    }

    /// Takes the session back from the shim.
    ///
    /// # Safety
    ///
    /// `ptr` comes from [`Session::into_raw`] and is not used afterwards.
    pub unsafe fn from_raw(ptr: *mut c_void) -> Box<Session> {
        // SAFETY: guaranteed by the caller.
        unsafe { Box::from_raw(ptr.cast()) }
    }

    /// Borrows the session during a file operation.
    ///
    /// # Safety
    ///
    /// `ptr` comes from [`Session::into_raw`] and stays live for `'a` (the VFS keeps the file
    /// open during `read`/`write`).
    pub unsafe fn borrow<'a>(ptr: *mut c_void) -> &'a Session {
        // SAFETY: guaranteed by the caller.
        unsafe { &*ptr.cast::<Session>() }
    }

    /// Handles one request frame written by user space.
    pub fn write(&self, buf: UserPtr, len: usize) -> isize {
        let Some(mut pending) = self.pending.try_lock() else {
            return -(errno::EBUSY as isize);
        };
        *pending = Pending::default();
        ffi::stack_paint();
        let (frame, errno) = match guard::run(|| Self::handle_frame(buf, len)) {
            Ok(((frame, errno, op), work_peak)) => {
                if let Some(op) = op {
                    TASK_PEAK[op].fetch_max(ffi::stack_peak(), Relaxed);
                    WORK_PEAK[op].fetch_max(work_peak, Relaxed);
                }
                (frame, errno)
            }
            // No response to read: `read(2)` then fails with ENODATA.
            Err(Failure::Busy) => (Vec::new(), errno::EBUSY),
            Err(Failure::NoStack | Failure::Abandoned) => (Vec::new(), errno::ENOMEM),
        };
        pending.frame = frame;
        match errno {
            0 => len as isize,
            e => -(e as isize),
        }
    }

    /// Copies the next part of the pending response to user space.
    pub fn read(&self, buf: UserPtr, len: usize) -> isize {
        let Some(mut pending) = self.pending.try_lock() else {
            return -(errno::EBUSY as isize);
        };
        let rest = &pending.frame[pending.read..];
        if rest.is_empty() {
            return -(errno::ENODATA as isize);
        }
        let n = rest.len().min(len);
        if !ffi::copy_to_user(buf, &rest[..n]) {
            return -(errno::EFAULT as isize);
        }
        pending.read += n;
        if pending.read == pending.frame.len() {
            *pending = Pending::default();
        }
        n as isize
    }

    /// Copies, decodes and runs a frame (on the dedicated stack, under a guard). Returns the
    /// encoded response, the errno for `write(2)` (0 on success) and the request kind, if the
    /// frame could be decoded. Once the request has changed something, it allocates only
    /// fallibly, so it cannot be abandoned after that.
    fn handle_frame(buf: UserPtr, len: usize) -> (Vec<u8>, i32, Option<usize>) {
        // Room for any response but a list or an error, before the request changes anything.
        let mut out = Vec::new();
        if out.try_reserve_exact(RESPONSE_RESERVE).is_err() {
            return (out, errno::ENOMEM, None);
        }
        let (response, op) = match Self::decode_and_run(buf, len) {
            Ok((response, op)) => (response, Some(op)),
            Err(response) => (response, None),
        };
        let errno = match &response {
            Response::Error { errno, .. } => *errno,
            _ => 0,
        };
        match wasm_proto::encode_into(&response, out) {
            Ok(frame) => (frame, errno, op),
            Err(e) => (Vec::new(), if errno != 0 { errno } else { e.errno() }, op),
        }
    }

    fn decode_and_run(buf: UserPtr, len: usize) -> Result<(Response, usize), Response> {
        if len > MAX_REQUEST_LEN {
            let e = FrameError::TooLarge;
            return Err(error_response(
                e.errno(),
                format_args!("request of {len} bytes: {e}"),
            ));
        }
        let mut frame = Vec::new();
        frame
            .try_reserve_exact(len)
            .map_err(|_| error_response(errno::ENOMEM, format_args!("out of memory")))?;
        frame.resize(len, 0);
        if !ffi::copy_from_user(&mut frame, buf) {
            return Err(error_response(
                errno::EFAULT,
                format_args!("bad request buffer"),
            ));
        }
        let req = wasm_proto::decode::<Request<'_>>(&frame)
            .map_err(|e| error_response(e.errno(), format_args!("{e}")))?;
        let op = op_index(&req);
        Ok((handle(req), op))
    }
}

fn engine_error(e: Error) -> Response {
    error_response(e.errno(), format_args!("{e}"))
}

/// A signature as the original module logged it: `name(params) -> results`.
struct Arity<'a>(&'a FuncSig);

impl core::fmt::Display for Arity<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let params = self.0.params.len();
        let results = self
            .0
            .results
            .iter()
            .filter(|t| **t != ValType::Other)
            .count();
        write!(f, "{}({params}) -> {results}", self.0.name)
    }
}

/// Logs what was loaded, as the original module did. Does not allocate (it runs after the
/// module was published).
fn log_module(module: &Module) {
    log_fmt(format_args!(
        "wasm: vm for cpu = 0..{}",
        module.instances() - 1
    ));
    log_fmt(format_args!("wasm:   module = {}", module.name()));
    for import in module.imports() {
        log_fmt(format_args!("wasm:     import -> {}", Arity(import)));
    }
    for export in module.exports() {
        log_fmt(format_args!("wasm:     function -> {}", Arity(export)));
    }
}

/// Fails early if `name` is malformed or taken; returns the budget modules draw from.
pub fn check_free(name: &str) -> Result<&'static MemoryBudget, Error> {
    with_registry(|r| r.check_free(name).map(|()| r.budget()))
}

/// Adds a module to the registry and publishes it to eBPF, then logs it; nothing changes
/// if that fails.
pub fn install(module: Arc<Module>) -> Result<(), Error> {
    let entry = bpf::Entry::new(module.clone()).ok_or(Error::OutOfMemory)?;
    with_registry(|r| {
        r.insert(module.clone())?;
        // Reachable by others once the mutex is released or the module is published: the
        // request keeps what it allocated (nothing here allocates any more).
        guard::commit();
        if bpf::publish(entry).is_err() {
            r.remove(module.name())?;
            return Err(Error::Full(bpf::TABLE_SIZE));
        }
        Ok(())
    })?;
    log_module(&module);
    Ok(())
}

/// Whether the native module `desc` is in the registry.
pub fn native_registered(desc: &NativeDesc) -> bool {
    with_registry(|r| {
        r.get(&String::from_utf8_lossy(desc.name()))
            .is_ok_and(|m| matches!(&*m, Module::Native(n) if n.describes(desc)))
    })
}

fn load(spec: LoadSpec<'_>, maps: &MapRefs) -> Result<Response, Error> {
    log_fmt(format_args!("wasm: loading module: {}", spec.name));
    let budget = check_free(spec.name)?;
    let mut module = LoadedModule::<KernelHost>::load(&spec, budget)?;
    maps.hand_over();
    if !module.entrypoint().is_empty() {
        log_fmt(format_args!(
            "wasm: calling module entrypoint: {}",
            module.entrypoint()
        ));
    }
    let entry_result = module.run_entrypoint()?;
    let instances = module.instances() as u32;
    install(Arc::new(Module::Interpreted(module)))?;
    ffi::trace_load(spec.name, 1, instances);
    Ok(Response::Loaded {
        instances,
        entry_result,
        version: 1,
    })
}

/// Replaces the loaded module of `spec.name`: the new module is compiled, instantiated and
/// initialised while the old one keeps serving calls, then both the registry and the eBPF
/// table switch to it in one step each; the old module is freed when its last call ends.
/// Nothing changes if any step before the switch fails.
fn replace(spec: LoadSpec<'_>, maps: &MapRefs) -> Result<Response, Error> {
    log_fmt(format_args!("wasm: replacing module: {}", spec.name));
    let (old, budget) = with_registry(|r| r.get(spec.name).map(|m| (m, r.budget())))?;
    let Module::Interpreted(current) = &*old else {
        return Err(Error::Unsupported(
            try_format(format_args!(
                "'{}' is a native module: rmmod its kernel module and insmod the new one",
                spec.name
            ))
            .unwrap_or_default(),
        ));
    };
    let spec = LoadSpec {
        replaces: Some(Replaced {
            exports: current.exports(),
            version: current.version(),
        }),
        ..spec
    };
    let mut module = LoadedModule::<KernelHost>::load(&spec, budget)?;
    maps.hand_over();
    let entry_result = module.run_entrypoint()?;
    let (instances, version) = (module.instances() as u32, module.version());
    let module = Arc::new(Module::Interpreted(module));
    let entry = bpf::Entry::new(module.clone()).ok_or(Error::OutOfMemory)?;
    with_registry(|r| {
        r.replace(&old, module.clone())?;
        // Reachable by others from here: the request keeps what it allocated.
        guard::commit();
        if let Err(entry) = bpf::republish(entry) {
            // Not published (cannot happen: every interpreted module is): publish it anew.
            if bpf::publish(entry).is_err() {
                log_fmt(format_args!(
                    "wasm: replaced module {} is not callable from eBPF: table full",
                    spec.name
                ));
            }
        }
        Ok::<(), Error>(())
    })?;
    log_fmt(format_args!(
        "wasm: replaced module: {} (version {version})",
        spec.name
    ));
    ffi::trace_load(spec.name, version, instances);
    Ok(Response::Loaded {
        instances,
        entry_result,
        version,
    })
}

/// The grants and the signer of a load: the capabilities asked for (or the defaults), and
/// the key that signed the binary, checked before anything is compiled.
fn load_spec(
    wasm: &[u8],
    allow: Option<&[&str]>,
    signature: Option<&[u8]>,
) -> Result<(Grants, Option<[u8; 8]>), Error> {
    let grants = match allow {
        None => Grants::DEFAULT,
        Some(names) => Grants::parse(names.iter().copied()).map_err(Error::Arguments)?,
    };
    Ok((grants, crate::trust::check(wasm, signature)?))
}

fn handle(req: Request<'_>) -> Response {
    let result = match req {
        Request::Version => Ok(Response::Version {
            protocol: wasm_proto::PROTOCOL_VERSION,
            module: env!("CARGO_PKG_VERSION").to_string(),
            kfuncs: crate::bpf::kfuncs(),
        }),
        Request::Load {
            name,
            wasm,
            entrypoint,
            limits,
            args,
            env,
            replace: replacing,
            allow,
            signature,
            maps,
        } => {
            log_fmt(format_args!("wasm: command load"));
            let result =
                load_spec(wasm, allow.as_deref(), signature).and_then(|(grants, signer)| {
                    let maps = MapRefs::take(&maps)?;
                    let spec = LoadSpec {
                        name,
                        wasm,
                        entrypoint,
                        limits,
                        args: &args,
                        env: &env,
                        grants,
                        replaces: None,
                        signer,
                        maps: maps.refs(),
                    };
                    if replacing {
                        replace(spec, &maps)
                    } else {
                        load(spec, &maps)
                    }
                });
            if let Err(e) = &result {
                log_fmt(format_args!(
                    "wasm: load of '{}' failed: {e}",
                    name.escape_debug()
                ));
            }
            result
        }
        Request::Unload { name } => {
            let removed = with_registry(|r| {
                let module = r.remove(name)?;
                bpf::unpublish(name);
                Ok(module)
            });
            removed.map(|m| {
                log_fmt(format_args!("wasm: unloading module: {}", m.name()));
                ffi::trace_unload(m.name());
                drop(m);
                Response::Unloaded
            })
        }
        Request::List => Ok(Response::List(with_registry(|r| r.list()))),
        Request::Call {
            module,
            function,
            args,
        } => with_registry(|r| r.get(module))
            .and_then(|m| guard::holding(m, |m| m.call(ffi::this_cpu(), function, &args)))
            .map(|o| Response::Called {
                results: o.results,
                fuel_used: o.fuel_used,
                cpu: o.cpu,
                exit: o.exit,
            }),
        Request::Stats => {
            let (live_allocations, live_bytes) = crate::alloc_kernel::live();
            let (modules, budget) = with_registry(|r| (r.len(), r.budget()));
            Ok(Response::Stats(Stats {
                modules: modules as u32,
                cpus: ffi::possible_cpus() as u32,
                live_allocations,
                live_bytes,
                stack: OPS
                    .iter()
                    .enumerate()
                    .map(|(i, op)| StackPeak {
                        op: op.to_string(),
                        task: TASK_PEAK[i].load(Relaxed) as u64,
                        work: WORK_PEAK[i].load(Relaxed) as u64,
                    })
                    .collect(),
                stack_size: ffi::stack_size() as u64,
                memory_used: budget.used(),
                memory_cap: budget.cap(),
                work_stack_size: ffi::work_stack_size() as u64,
                abandoned: guard::abandoned() as u64,
                abandoned_freed: guard::freed() as u64,
            }))
        }
    };
    result.unwrap_or_else(engine_error)
}
